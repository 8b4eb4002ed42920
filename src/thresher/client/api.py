"""The Python API of Thresher: one method per call of the HTTP API, plus waiting and log following.

Pipeline scripts, DCC submitters and the `thresher` CLI all use this class, so each HTTP path is
spelled once, here; the transport, auth and error decoding live in `client/http.py`. Answers are
parsed into the wire models (`thresher.wire`) the server builds them from, so a field is read as
`job.state`, typed, and the shapes are the ones `/openapi.json` documents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal, TypeVar, overload
from urllib.parse import quote

from pydantic import BaseModel

from thresher.client.config import resolve
from thresher.client.http import HttpClient, ServerUnreachable
from thresher.client.owner import TokenOwner
from thresher.model.states import FINAL_JOB_STATES, JobState
from thresher.wire.common import Page
from thresher.wire.dependencies import DroppedDependencies, JobDependencies
from thresher.wire.jobs import (
    Attempt,
    AttemptCommand,
    Blocklist,
    DryRun,
    FailureSummary,
    Job,
    JobSummary,
    LogPiece,
    Released,
    Submitted,
    Task,
    TaskDetail,
)
from thresher.wire.meta import Health, Template, WhoAmI
from thresher.wire.nodes import Node
from thresher.wire.retention import JobsChanged, NodeRemoved
from thresher.wire.services import Service, ServiceDefaults
from thresher.wire.studio import Limit, Pool, PoolDetail, Project, ProjectUsage

OUTAGE_GRACE_S = 60.0
"""How long `wait` and `follow_log` keep polling through a server that cannot be reached: a server
restart must not fail every pipeline script that was waiting on it."""

SUBMIT_TIMEOUT_S = 600.0
"""How long a submit may take to answer (see `Thresher.submit`)."""

PAGE = 1000
"""Items asked for per page by the `all_*` methods, which follow the server's paging."""

Json = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def _seg(value: int | str) -> str:
    """One URL path segment; node names may hold characters that need quoting."""
    return quote(str(value), safe="")


def _every(fetch: Callable[[int, int], Page[M]], page: int = PAGE) -> list[M]:
    """Every item of a paged list: pages of `page` items until `total` are in (or a page comes back empty)."""
    items: list[M] = []
    while True:
        answer = fetch(page, len(items))
        items.extend(answer.items)
        if not answer.items or len(items) >= answer.total:
            return items


class Thresher:
    """A connection to one Thresher server as a person or tool (admin token).

    `server` and `token` default to the environment and the saved client config
    (see `thresher.client.config.resolve`); `ca_file`, for an https server on a private CA, to
    `$THRESHER_CA_FILE` and the config's `ca_file` (`thresher.client.tls`).
    """

    def __init__(self, server: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 http: HttpClient | None = None, ca_file: str | None = None) -> None:
        if http is None:
            settings = resolve(server, token)
            http = HttpClient(settings.server, settings.token, timeout=timeout, ca_file=ca_file)
        self.http = http
        self._owner = TokenOwner(self.whoami)

    @property
    def server(self) -> str:
        return self.http.server

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Thresher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- server --------------------------------------------------------------------------------

    def health(self) -> Health:
        return Health.model_validate(self.http.get("/health"))

    def whoami(self) -> WhoAmI:
        return WhoAmI.model_validate(self.http.get("/whoami"))

    def my_name(self) -> str:
        """Whose jobs this connection submits (`thresher jobs --mine`): a person's token's user; with the
        farm's admin token, the account running this program (`client/owner.py`)."""
        return self._owner.name()

    # -- jobs ----------------------------------------------------------------------------------

    @overload
    def submit(self, spec: Json, dry_run: Literal[False] = False) -> Submitted: ...
    @overload
    def submit(self, spec: Json, dry_run: Literal[True]) -> DryRun: ...
    @overload
    def submit(self, spec: Json, dry_run: bool) -> Submitted | DryRun: ...

    def submit(self, spec: Json, dry_run: bool = False) -> Submitted | DryRun:
        """Submit a job spec; the created Job with the spec's `warnings` (what a dry run of it lists), or
        with `dry_run` the validation and task preview.

        A spec without an `owner` is that person's with a person's token; with the farm's admin token
        it names the account running this program (`client/owner.py`)."""
        owner = self._owner.default_owner() if isinstance(spec, dict) and not spec.get("owner") else None
        if owner is not None and isinstance(spec, dict):
            spec = {**spec, "owner": owner}
        # The answer comes once every task is written: seconds for a million tasks, longer on a busy
        # database. A submit cut off by the usual timeout may still have created the job, and a retry
        # would create it twice, so this call waits much longer.
        answer = self.http.request("POST", "/jobs", json=spec, params={"dry_run": "true" if dry_run else None},
                                   timeout=SUBMIT_TIMEOUT_S)
        return DryRun.model_validate(answer) if dry_run else Submitted.model_validate(answer)

    def jobs(self, state: str | None = None, project: str | None = None, owner: str | None = None,
             name: str | None = None, limit: int | None = None, offset: int | None = None,
             sort: str | None = None, folder: str | None = None, archived: bool | None = None,
             sequence: str | None = None, shot: str | None = None) -> Page[JobSummary]:
        """One page of jobs, filtered and paged by the server (`folder`: jobs in folders of that name;
        `archived`: the archived jobs, which other listings leave out; `sequence`, `shot`: exactly)."""
        return Page[JobSummary].model_validate(self.http.get("/jobs", state=state, project=project, owner=owner,
                                                             name=name, limit=limit, offset=offset, sort=sort,
                                                             folder=folder, archived=archived, sequence=sequence,
                                                             shot=shot))

    def job(self, job_id: int) -> Job:
        return Job.model_validate(self.http.get(f"/jobs/{_seg(job_id)}"))

    def failures(self, job_id: int) -> FailureSummary:
        """Why a job failed: its failed attempts grouped by reason, with counts, tasks and nodes."""
        return FailureSummary.model_validate(self.http.get(f"/jobs/{_seg(job_id)}/failures"))

    def tasks(self, job_id: int, layer: str | None = None, state: str | None = None,
              limit: int | None = None, offset: int | None = None, frame: int | None = None) -> Page[Task]:
        """One page of the tasks of one job (with `frame`: those that render that frame)."""
        return Page[Task].model_validate(self.http.get(f"/jobs/{_seg(job_id)}/tasks", layer=layer, state=state,
                                                       limit=limit, offset=offset, frame=frame))

    def all_tasks(self, job_id: int, layer: str | None = None, state: str | None = None,
                  page: int = PAGE) -> list[Task]:
        """Every task of a job, following the server's paging."""
        return _every(lambda limit, offset: self.tasks(job_id, layer=layer, state=state, limit=limit, offset=offset),
                      page)

    def kill(self, job_id: int) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/kill"))

    def pause(self, job_id: int) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/pause"))

    def resume(self, job_id: int) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/resume"))

    def retry(self, job_id: int, task_ids: list[int] | None = None) -> Job:
        """Retry the given tasks, or by default every failed and killed task of the job."""
        body = {"task_ids": list(task_ids)} if task_ids else {}
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/retry", json=body))

    def steer_layer(self, job_id: int, layer: str, verb: str) -> Job:
        """pause, resume, retry (failed and killed), kill or skip one layer's tasks."""
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/layers/{_seg(layer)}/{_seg(verb)}"))

    def attempt_command(self, attempt_id: int) -> AttemptCommand:
        """The command line an attempt ran: argv, working directory, the environment it added."""
        return AttemptCommand.model_validate(self.http.get(f"/attempts/{_seg(attempt_id)}/command"))

    def set_node_tags(self, id_or_name: int | str, tags: list[str]) -> Node:
        """A node's tags, replacing its own until its agent registers again."""
        return Node.model_validate(self.http.request("PATCH", f"/nodes/{_seg(id_or_name)}", json={"tags": tags}))

    def release(self, job_id: int, layer: str | None = None) -> Released:
        """Let the tasks held behind scout frames go: one layer's, or every held layer's."""
        body = {"layer": layer} if layer else {}
        return Released.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/release", json=body))

    def set_scout(self, job_id: int, layer: str, scout: str, release: str = "auto") -> Job:
        """Pick a layer's scout frames again, before any of its tasks started."""
        return Job.model_validate(self.http.request("PUT", f"/jobs/{_seg(job_id)}/layers/{_seg(layer)}/scout",
                                                json={"scout": scout, "release": release}))

    def set_priority(self, job_id: int, priority: int) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/priority", json={"priority": priority}))

    def blocklist(self, job_id: int) -> Blocklist:
        """The nodes that failed the job's attempts, and which of them its blocklist keeps out."""
        return Blocklist.model_validate(self.http.get(f"/jobs/{_seg(job_id)}/blocklist"))

    def clear_blocklist(self, job_id: int, node: int | str | None = None) -> Blocklist:
        """Let one node (by name or id), or every node, take the job's tasks again; answers what is left."""
        path = f"/jobs/{_seg(job_id)}/blocklist" + (f"/{_seg(node)}" if node is not None else "")
        return Blocklist.model_validate(self.http.request("DELETE", path))

    def dependencies(self, job_id: int) -> JobDependencies:
        """What the job waits for, what waits for it, and what blocks it now."""
        return JobDependencies.model_validate(self.http.get(f"/jobs/{_seg(job_id)}/dependencies"))

    def add_dependency(self, job_id: int, task: int, on_task: int, on: str = "success") -> JobDependencies:
        """Make task `task` of the job wait for task `on_task` (refused when it would close a cycle)."""
        body = {"task": task, "on_task": on_task, "on": on}
        return JobDependencies.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/dependencies", json=body))

    def drop_dependencies(self, job_id: int, *, layer: str | None = None, task: int | None = None,
                          on_job: int | None = None, all: bool = False) -> DroppedDependencies:
        """Drop all of the job's dependencies, or one layer's, one task's, or those on one job."""
        params = {"layer": layer, "task": task, "on_job": on_job, "all": "true" if all else None}
        return DroppedDependencies.model_validate(
            self.http.request("DELETE", f"/jobs/{_seg(job_id)}/dependencies", params=params))

    def wait(self, job_id: int, timeout: float | None = None,
             on_update: Callable[[Job], None] | None = None, interval: float = 0.5,
             outage_grace: float = OUTAGE_GRACE_S) -> Job:
        """Poll until the job is succeeded, failed or killed, or blocked (a dependency failed: it will not
        go on until someone retries or drops it; `pending` says which); return that Job.

        `on_update` is called with every Job seen (progress bars). Raises TimeoutError after
        `timeout` seconds (the job keeps running on the farm). A server that cannot be reached is
        retried for `outage_grace` seconds before ServerUnreachable is raised.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        down_since: float | None = None
        while True:
            try:
                job = self.job(job_id)
                down_since = None
            except ServerUnreachable:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > outage_grace:
                    raise
                job = None
            if job is not None:
                if on_update is not None:
                    on_update(job)
                if job.state in FINAL_JOB_STATES or job.state == JobState.BLOCKED:
                    return job
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    state = job.state if job else "unknown (server unreachable)"
                    raise TimeoutError(f"job {job_id} still {state} after {timeout:g} s")
                time.sleep(min(interval, left))
            else:
                time.sleep(interval)

    # -- tasks and attempts --------------------------------------------------------------------

    def task(self, task_id: int) -> TaskDetail:
        """Task plus its `attempts`."""
        return TaskDetail.model_validate(self.http.get(f"/tasks/{_seg(task_id)}"))

    def attempts(self, task_id: int, limit: int | None = None, offset: int | None = None) -> Page[Attempt]:
        """One page of a task's attempts, first try first."""
        return Page[Attempt].model_validate(self.http.get(f"/tasks/{_seg(task_id)}/attempts", limit=limit,
                                                          offset=offset))

    def all_attempts(self, task_id: int, page: int = PAGE) -> list[Attempt]:
        """Every attempt of a task, following the server's paging."""
        return _every(lambda limit, offset: self.attempts(task_id, limit=limit, offset=offset), page)

    def skip_task(self, task_id: int) -> TaskDetail:
        return TaskDetail.model_validate(self.http.post(f"/tasks/{_seg(task_id)}/skip"))

    def retry_task(self, task_id: int) -> TaskDetail:
        return TaskDetail.model_validate(self.http.post(f"/tasks/{_seg(task_id)}/retry"))

    def kill_task(self, task_id: int) -> TaskDetail:
        return TaskDetail.model_validate(self.http.post(f"/tasks/{_seg(task_id)}/kill"))

    def log(self, attempt_id: int, offset: int = 0) -> LogPiece:
        """One piece of an attempt's log from byte `offset` (`complete` once it ended and all of it is in)."""
        return LogPiece.model_validate(self.http.get(f"/attempts/{_seg(attempt_id)}/log", offset=offset))

    def log_tail(self, attempt_id: int, lines: int = 20, log_size: int | None = None) -> list[str]:
        """The last `lines` lines of an attempt's log. Reads back from the end (`log_size`, or the whole log
        when not known) in growing steps, so a tail of a 1 GB log costs a few kilobytes."""
        if lines <= 0:
            return []
        if log_size is None:
            return "".join(self.log_from(attempt_id, 0)).splitlines()[-lines:]
        step = max(4096, lines * 200)
        while True:
            start = max(0, log_size - step)
            text = "".join(self.log_from(attempt_id, start))
            found = text.splitlines()
            if start == 0 or len(found) > lines:  # the first line of a read from the middle may be cut
                return found[-lines:]
            step *= 4

    def log_from(self, attempt_id: int, offset: int = 0) -> Iterator[str]:
        """The log text of an attempt from byte `offset` to what the server has now."""
        while True:
            part = self.log(attempt_id, offset=offset)
            if part.data:
                yield part.data
            if not part.data or part.next_offset <= offset:
                return
            offset = part.next_offset

    def follow_log(self, attempt_id: int, offset: int = 0, interval: float = 0.3,
                   outage_grace: float = OUTAGE_GRACE_S) -> Iterator[str]:
        """Yield an attempt's log text as it arrives, until the attempt ended and all of it is in.

        Rides through server outages shorter than `outage_grace` seconds (offsets make it exact).
        """
        down_since: float | None = None
        while True:
            try:
                piece = self.log(attempt_id, offset=offset)
                down_since = None
            except ServerUnreachable:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > outage_grace:
                    raise
                time.sleep(interval)
                continue
            if piece.data:
                yield piece.data
            offset = piece.next_offset
            if piece.complete:
                return
            if not piece.data:
                time.sleep(interval)

    # -- nodes ---------------------------------------------------------------------------------

    def nodes(self, limit: int | None = None, offset: int | None = None, state: str | None = None, name: str | None = None) -> Page[Node]:
        """One page of the farm's nodes, by name; `state` ("down", "busy", ...) and `name` as the nodes page."""
        return Page[Node].model_validate(self.http.get("/nodes", limit=limit, offset=offset, state=state, name=name))

    def all_nodes(self, page: int = PAGE, state: str | None = None, name: str | None = None) -> list[Node]:
        """Every node of the farm (or those the filters keep), following the server's paging."""
        return _every(lambda limit, offset: self.nodes(limit=limit, offset=offset, state=state, name=name), page)

    def node(self, id_or_name: int | str) -> Node:
        return Node.model_validate(self.http.get(f"/nodes/{_seg(id_or_name)}"))

    def enable_node(self, id_or_name: int | str) -> Node:
        return Node.model_validate(self.http.post(f"/nodes/{_seg(id_or_name)}/enable"))

    def disable_node(self, id_or_name: int | str) -> Node:
        return Node.model_validate(self.http.post(f"/nodes/{_seg(id_or_name)}/disable"))

    def drain_node(self, id_or_name: int | str) -> Node:
        return Node.model_validate(self.http.post(f"/nodes/{_seg(id_or_name)}/drain"))

    def remove_node(self, id_or_name: int | str) -> NodeRemoved:
        """Remove a node that is down from the farm; the attempts that ran on it keep its name."""
        return NodeRemoved.model_validate(self.http.request("DELETE", f"/nodes/{_seg(id_or_name)}"))

    def archive_jobs(self, ids: list[int] | None = None, **where: Any) -> JobsChanged:
        """Archive finished jobs, these ids or those a filter matches (`state`, `project`, `older_than_s`)."""
        return JobsChanged.model_validate(self.http.post("/jobs/archive", json=_given((), ids=ids, **where)))

    def delete_jobs(self, ids: list[int] | None = None, **where: Any) -> JobsChanged:
        """Delete finished jobs with every row they had: ids, or a filter (and `archived`)."""
        return JobsChanged.model_validate(self.http.post("/jobs/delete", json=_given((), ids=ids, **where)))

    # -- studio scheduling ---------------------------------------------------------------------
    # Projects, pools and limits are tens: each list is one page. Patches send only what is given
    # (`_given`): a cap passed as None is left as it is, `clear` names caps to remove.

    def projects(self) -> list[Project]:
        return Page[Project].model_validate(self.http.get("/projects")).items

    def project(self, name: str) -> Project:
        return Project.model_validate(self.http.get(f"/projects/{_seg(name)}"))

    def project_usage(self, name: str, since: datetime | None = None) -> ProjectUsage:
        """What a project ran over time: its counters as the server sampled them since `since` (an hour ago)."""
        return ProjectUsage.model_validate(self.http.get(f"/projects/{_seg(name)}/usage",
                                                         since=since.isoformat() if since else None))

    def add_project(self, name: str, weight: float = 1.0, max_cores: int | None = None,
                    max_gpus: int | None = None) -> Project:
        body = {"name": name, "weight": weight, "max_cores": max_cores, "max_gpus": max_gpus}
        return Project.model_validate(self.http.post("/projects", json=body))

    def set_project(self, name: str, weight: float | None = None, max_cores: int | None = None,
                    max_gpus: int | None = None, clear: tuple[str, ...] = ()) -> Project:
        body = _given(clear, weight=weight, max_cores=max_cores, max_gpus=max_gpus)
        return Project.model_validate(self.http.request("PATCH", f"/projects/{_seg(name)}", json=body))

    def add_folder(self, project: str, name: str, priority: int = 0, min_cores: int | None = None,
                   max_cores: int | None = None) -> Project:
        body = {"name": name, "priority": priority, "min_cores": min_cores, "max_cores": max_cores}
        return Project.model_validate(self.http.post(f"/projects/{_seg(project)}/folders", json=body))

    def set_folder(self, project: str, name: str, priority: int | None = None, min_cores: int | None = None,
                   max_cores: int | None = None, clear: tuple[str, ...] = ()) -> Project:
        body = _given(clear, priority=priority, min_cores=min_cores, max_cores=max_cores)
        return Project.model_validate(self.http.request("PATCH", f"/projects/{_seg(project)}/folders/{_seg(name)}",
                                                        json=body))

    def set_stake(self, project: str, pool: str, guaranteed_cores: int = 0, max_cores: int | None = None,
                  guaranteed_gpus: int = 0, max_gpus: int | None = None) -> Project:
        body = {"guaranteed_cores": guaranteed_cores, "max_cores": max_cores, "guaranteed_gpus": guaranteed_gpus,
                "max_gpus": max_gpus}
        return Project.model_validate(self.http.request("PUT", f"/projects/{_seg(project)}/pools/{_seg(pool)}",
                                                        json=body))

    def pools(self) -> list[Pool]:
        return Page[Pool].model_validate(self.http.get("/pools")).items

    def pool(self, name: str) -> PoolDetail:
        return PoolDetail.model_validate(self.http.get(f"/pools/{_seg(name)}"))

    def set_node_pool(self, id_or_name: int | str, pool: str) -> Node:
        return Node.model_validate(self.http.post(f"/nodes/{_seg(id_or_name)}/pool", json={"pool": pool}))

    def limits(self) -> list[Limit]:
        return Page[Limit].model_validate(self.http.get("/limits")).items

    def add_limit(self, name: str, max_total: int, max_per_node: int | None = None) -> Limit:
        body = {"name": name, "max_total": max_total, "max_per_node": max_per_node}
        return Limit.model_validate(self.http.post("/limits", json=body))

    def set_limit(self, name: str, max_total: int | None = None, max_per_node: int | None = None,
                  clear: tuple[str, ...] = ()) -> Limit:
        body = _given(clear, max_total=max_total, max_per_node=max_per_node)
        return Limit.model_validate(self.http.request("PATCH", f"/limits/{_seg(name)}", json=body))

    def remove_limit(self, name: str) -> Limit:
        return Limit.model_validate(self.http.request("DELETE", f"/limits/{_seg(name)}"))

    # Services: `defaults` is a dict of layer fields ({"resources": {"cores": 4, "memory": "8G"},
    # "tags": [...], "pools": [...], "limits": {"nuke": 1}, "timeout": 3600, "retries": 3}) or a
    # ServiceDefaults; `set_service` changes only the fields given, `clear` names those to remove.

    def services(self) -> list[Service]:
        return Page[Service].model_validate(self.http.get("/services")).items

    def service(self, name: str) -> Service:
        return Service.model_validate(self.http.get(f"/services/{_seg(name)}"))

    def add_service(self, name: str, defaults: Json | ServiceDefaults | None = None) -> Service:
        body = {"name": name, "defaults": _defaults(defaults)}
        return Service.model_validate(self.http.post("/services", json=body))

    def set_service(self, name: str, defaults: Json | ServiceDefaults | None = None,
                    clear: tuple[str, ...] = ()) -> Service:
        body = {"defaults": _defaults(defaults), "clear": list(clear)}
        return Service.model_validate(self.http.request("PATCH", f"/services/{_seg(name)}", json=body))

    def remove_service(self, name: str) -> Service:
        return Service.model_validate(self.http.request("DELETE", f"/services/{_seg(name)}"))

    def set_urgent(self, job_id: int, urgent: bool = True) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/urgent", json={"urgent": urgent}))

    def move(self, job_id: int, folder: str) -> Job:
        return Job.model_validate(self.http.post(f"/jobs/{_seg(job_id)}/move", json={"folder": folder}))

    # -- templates -----------------------------------------------------------------------------

    def templates(self, limit: int | None = None, offset: int | None = None) -> Page[Template]:
        """One page of the templates the server knows (each with the JSON schema of its `args`)."""
        return Page[Template].model_validate(self.http.get("/templates", limit=limit, offset=offset))

    def all_templates(self, page: int = PAGE) -> list[Template]:
        """Every template the server knows, following the server's paging."""
        return _every(lambda limit, offset: self.templates(limit=limit, offset=offset), page)


def _given(clear: tuple[str, ...], **values: Any) -> Json:
    """A patch body: the values given, and those named in `clear` as null (removed)."""
    return {**{k: v for k, v in values.items() if v is not None}, **{k: None for k in clear}}


def _defaults(defaults: Json | ServiceDefaults | None) -> Json:
    """A service's defaults as the body carries them: only the fields given."""
    if isinstance(defaults, ServiceDefaults):
        return defaults.stored()
    return dict(defaults or {})
