"""The Python API of Thresher: one method per call of docs/protocol.md, plus waiting and log following.

Pipeline scripts, DCC submitters and the `thresher` CLI all use this class, so each HTTP path is
spelled once, here; the transport, auth and error decoding live in `client/http.py`.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from thresher.client.config import resolve
from thresher.client.http import HttpClient, ServerUnreachable

FINAL_JOB_STATES = frozenset({"succeeded", "failed", "killed"})
"""A job in one of these states changes no more unless someone acts on it (retry)."""

FINAL_ATTEMPT_STATES = frozenset({"succeeded", "failed", "killed", "lost"})

OUTAGE_GRACE_S = 60.0
"""How long `wait` and `follow_log` keep polling through a server that cannot be reached: a server
restart must not fail every pipeline script that was waiting on it."""

SUBMIT_TIMEOUT_S = 600.0
"""How long a submit may take to answer (see `Thresher.submit`)."""

Json = dict[str, Any]


def _seg(value: int | str) -> str:
    """One URL path segment; node names may hold characters that need quoting."""
    return quote(str(value), safe="")


class Thresher:
    """A connection to one Thresher server as a person or tool (admin token).

    `server` and `token` default to the environment and the saved client config
    (see `thresher.client.config.resolve`).
    """

    def __init__(self, server: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 http: HttpClient | None = None) -> None:
        if http is None:
            settings = resolve(server, token)
            http = HttpClient(settings.server, settings.token, timeout=timeout)
        self.http = http

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

    def health(self) -> Json:
        return self.http.get("/health")

    def whoami(self) -> Json:
        return self.http.get("/whoami")

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, spec: Json, dry_run: bool = False) -> Json:
        """Submit a job spec; the created Job, or with `dry_run` the validation and task preview.

        A spec without an `owner` is submitted as the person running this program, which is what
        wranglers filter on; the server would otherwise only know the token's name."""
        if isinstance(spec, dict) and not spec.get("owner"):
            spec = {**spec, "owner": _local_user()}
        # The answer comes once every task is written: seconds for a million tasks, longer on a busy
        # database. A submit cut off by the usual timeout may still have created the job, and a retry
        # would create it twice, so this call waits much longer.
        return self.http.request("POST", "/jobs", json=spec, params={"dry_run": "true" if dry_run else None},
                                 timeout=SUBMIT_TIMEOUT_S)

    def jobs(self, state: str | None = None, project: str | None = None, owner: str | None = None,
             name: str | None = None, limit: int | None = None, offset: int | None = None,
             sort: str | None = None) -> Json:
        """`{"items": [JobSummary], "total": n}` filtered and paged by the server."""
        return self.http.get("/jobs", state=state, project=project, owner=owner, name=name,
                             limit=limit, offset=offset, sort=sort)

    def job(self, job_id: int) -> Json:
        return self.http.get(f"/jobs/{_seg(job_id)}")

    def tasks(self, job_id: int, layer: str | None = None, state: str | None = None,
              limit: int | None = None, offset: int | None = None) -> Json:
        """`{"items": [Task], "total": n}` of one job."""
        return self.http.get(f"/jobs/{_seg(job_id)}/tasks", layer=layer, state=state, limit=limit,
                             offset=offset)

    def all_tasks(self, job_id: int, layer: str | None = None, state: str | None = None,
                  page: int = 1000) -> list[Json]:
        """Every task of a job, following the server's paging."""
        items: list[Json] = []
        while True:
            answer = self.tasks(job_id, layer=layer, state=state, limit=page, offset=len(items))
            batch = answer.get("items", [])
            items.extend(batch)
            if not batch or len(items) >= answer.get("total", 0):
                return items

    def kill(self, job_id: int) -> Json:
        return self.http.post(f"/jobs/{_seg(job_id)}/kill")

    def pause(self, job_id: int) -> Json:
        return self.http.post(f"/jobs/{_seg(job_id)}/pause")

    def resume(self, job_id: int) -> Json:
        return self.http.post(f"/jobs/{_seg(job_id)}/resume")

    def retry(self, job_id: int, task_ids: list[int] | None = None) -> Json:
        """Retry the given tasks, or by default every failed and killed task of the job."""
        body = {"task_ids": list(task_ids)} if task_ids else {}
        return self.http.post(f"/jobs/{_seg(job_id)}/retry", json=body)

    def set_priority(self, job_id: int, priority: int) -> Json:
        return self.http.post(f"/jobs/{_seg(job_id)}/priority", json={"priority": priority})

    def wait(self, job_id: int, timeout: float | None = None,
             on_update: Callable[[Json], None] | None = None, interval: float = 0.5,
             outage_grace: float = OUTAGE_GRACE_S) -> Json:
        """Poll until the job is succeeded, failed or killed; return the final Job.

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
                if job.get("state") in FINAL_JOB_STATES:
                    return job
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    state = job.get("state") if job else "unknown (server unreachable)"
                    raise TimeoutError(f"job {job_id} still {state} after {timeout:g} s")
                time.sleep(min(interval, left))
            else:
                time.sleep(interval)

    # -- tasks and attempts --------------------------------------------------------------------

    def task(self, task_id: int) -> Json:
        """Task plus its `attempts`."""
        return self.http.get(f"/tasks/{_seg(task_id)}")

    def attempts(self, task_id: int) -> list[Json]:
        return self.http.get(f"/tasks/{_seg(task_id)}/attempts")

    def skip_task(self, task_id: int) -> Json:
        return self.http.post(f"/tasks/{_seg(task_id)}/skip")

    def retry_task(self, task_id: int) -> Json:
        return self.http.post(f"/tasks/{_seg(task_id)}/retry")

    def kill_task(self, task_id: int) -> Json:
        return self.http.post(f"/tasks/{_seg(task_id)}/kill")

    def log(self, attempt_id: int, offset: int = 0) -> Json:
        """One piece of an attempt's log from byte `offset`:
        `{"attempt_id", "offset", "data", "next_offset", "complete"}`."""
        return self.http.get(f"/attempts/{_seg(attempt_id)}/log", offset=offset)

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
            data = piece.get("data") or ""
            if data:
                yield data
            next_offset = piece.get("next_offset")
            if isinstance(next_offset, int):
                offset = next_offset
            if piece.get("complete"):
                return
            if not data:
                time.sleep(interval)

    # -- nodes ---------------------------------------------------------------------------------

    def nodes(self) -> list[Json]:
        return self.http.get("/nodes")

    def node(self, id_or_name: int | str) -> Json:
        return self.http.get(f"/nodes/{_seg(id_or_name)}")

    def enable_node(self, id_or_name: int | str) -> Json:
        return self.http.post(f"/nodes/{_seg(id_or_name)}/enable")

    def disable_node(self, id_or_name: int | str) -> Json:
        return self.http.post(f"/nodes/{_seg(id_or_name)}/disable")

    def drain_node(self, id_or_name: int | str) -> Json:
        return self.http.post(f"/nodes/{_seg(id_or_name)}/drain")

    # -- templates -----------------------------------------------------------------------------

    def templates(self) -> list[Json]:
        """`[{"name", "description", "args": JSON schema}]` of the templates the server knows."""
        return self.http.get("/templates")


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
