"""Routes for people and tools: jobs, tasks, attempts, logs, nodes, templates (each declares its
permission: `server/permits.py`)."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any, Sequence

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from thresher.model.dry_run import dry_run
from thresher.model.duplicate_keys import json_duplicate
from thresher.model.frames import MAX_FRAME_NUMBER
from thresher.model.inspection import inspect_spec
from thresher.model.node_chips import NODE_CHIPS
from thresher.model.paths import OS_NAMES, normalize_os
from thresher.model.permissions import member_refusal, on_behalf_refusal, priority_refusal
from thresher.model.problems import merge_problems
from thresher.model.spec import MAX_ID, JobSpec
from thresher.model.states import JobState, NodeAdminState, TaskState
from thresher.server import audit, dependencies, lifecycle, nodes, services, users, views
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.db.queries import views as read
from thresher.server.dispatch import forget_tag_keys
from thresher.server.errors import BadInput, Forbidden, NotFound
from thresher.server.farm_checks import farm_problems, problem_detail
from thresher.server.permits import permit
from thresher.server.submit import create_job
from thresher.templates import all_templates
from thresher.wire.common import Page, error_responses
from thresher.wire.jobs import (
    Attempt,
    DryRun,
    FailureSummary,
    Job,
    JobSummary,
    LogPiece,
    PriorityBody,
    ReleaseBody,
    Released,
    RetryBody,
    ScoutBody,
    Submitted,
    Task,
    TaskDetail,
)
from thresher.wire.meta import Template
from thresher.wire.nodes import Node

router = APIRouter()

# Every call here needs a person's token (401 without one, 403 when the role may not) and checks what it is
# given (422); calls that name a row answer 404 when there is none, changes that the row's state
# forbids answer 409.
_AUTH = (401, 403, 422)
_ONE = error_responses(*_AUTH, 404)
_CHANGE = error_responses(*_AUTH, 404, 409)

MAX_OFFSET = 2**63 - 1  # OFFSET and byte offsets are 64-bit in both databases
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- what requests may carry
# Checked before any query runs: a value the database cannot hold (an id past its integer column, a NUL in
# text) would otherwise come back from PostgreSQL as an error, and from SQLite as an overflow.

def _plain(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, tabs, line breaks)")
    return value


def _states(allowed: Sequence[str]) -> Any:
    def check(value: str | None) -> str | None:
        _plain(value)
        if value:
            unknown = [part for part in value.split(",") if part.strip() not in allowed]
            if unknown:
                raise ValueError(f"unknown state {unknown[0]!r}: use one of {', '.join(allowed)} "
                                 "(several separated by commas)")
            value = ",".join(part.strip() for part in value.split(","))
        return value
    return check


Text = Annotated[str | None, AfterValidator(_plain)]
JobStates = Annotated[str | None, AfterValidator(_states(list(JobState))),
                      Query(description=f"one or more of {', '.join(JobState)}, comma separated")]
TaskStates = Annotated[str | None, AfterValidator(_states(list(TaskState))),
                       Query(description=f"one or more of {', '.join(TaskState)}, comma separated")]
NodeIdent = Annotated[str, AfterValidator(_plain)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
FrameNumber = Annotated[int | None, Query(ge=-MAX_FRAME_NUMBER, le=MAX_FRAME_NUMBER,
                                          description="only the tasks that render this frame (one per layer, "
                                                      "or per tile or wedge value)")]


def _limit(default: int, most: int) -> Any:
    return Query(default, ge=1, le=most, description=f"items per page (at most {most:,})")


def _existing(kind: str, value: int) -> int:
    """An id no row can have (ids are 1 .. 2**31-1) names nothing: 404, as for any unknown id."""
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {kind} with id {value}")
    return value


def _job_id(job_id: int) -> int:
    return _existing("job", job_id)


def _task_id(task_id: int) -> int:
    return _existing("task", task_id)


def _attempt_id(attempt_id: int) -> int:
    return _existing("attempt", attempt_id)


JobId = Annotated[int, Depends(_job_id)]
TaskId = Annotated[int, Depends(_task_id)]
AttemptId = Annotated[int, Depends(_attempt_id)]


# The spec is read as plain JSON (so that every problem can be reported at once, with its place), and its
# schema is given to the OpenAPI document by hand: the models it refers to go under components/schemas
# (see `openapi_components`), where Swagger UI and ReDoc resolve them.
_JOB_SPEC_SCHEMA = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
_JOB_SPEC_DEFS = _JOB_SPEC_SCHEMA.pop("$defs", {})


def openapi_components() -> dict[str, Any]:
    """Schemas that the submit route's request body refers to."""
    return {"JobSpec": _JOB_SPEC_SCHEMA, **_JOB_SPEC_DEFS}


async def _keys_once(request: Request) -> None:
    """A spec body with a key given twice in one object is refused at it (JSON keeps the last unseen:
    `model/duplicate_keys.py`); a body that is no JSON is left to the body's own check. Read off the
    event loop: a spec may be megabytes."""
    twice = await run_in_threadpool(json_duplicate, await request.body())
    if twice is not None:
        raise BadInput("invalid job spec", [{"field": twice.field, "message": twice.message}])


@router.post("/jobs", status_code=201, summary="Submit a job (or check it with dry_run=true)",
             operation_id="submit_job", dependencies=[permit("job.submit")], tags=["jobs"], response_model=Submitted,
             responses={200: {"model": DryRun, "description": "Dry run: what the submit would create"},
                        **error_responses(*_AUTH, 413)},
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/JobSpec"}}}}})
def submit_job(request: Request, spec: Any = Body(...), dry: bool = Query(False, alias="dry_run"),
               target_os: str = Query("linux", alias="os", description="dry run: build commands for this OS"),
               _keys: None = Depends(_keys_once)) -> Any:
    server = ctx(request)
    if normalize_os(target_os) not in OS_NAMES:
        raise BadInput("unknown os", [{"field": "os", "message": f"use one of {', '.join(OS_NAMES)}"}])
    with server.db.read() as conn:  # applied now: a service changed later leaves this job as it was
        known = services.known_services(conn)
    checked, problems, needs = inspect_spec(spec, known)
    if problems or dry:
        # A dry run answers what the submit would: farm checks included. A refused spec is also checked
        # against the farm, so that one answer lists every problem.
        with server.db.read() as conn:
            problems = merge_problems(problems, farm_problems(
                conn, needs, create_projects=server.settings.create_unknown_projects)
                + (dependencies.problems(conn, checked) if checked is not None else []))
    if problems or checked is None:
        raise BadInput(problem_detail(problems), problems)
    caller: Caller = request.state.caller
    with server.db.read() as conn:
        members = set(users.members(conn, checked.spec.project))
    refusal = (on_behalf_refusal(caller.who, caller.name, checked.spec.owner)
               or priority_refusal(caller.who, checked.spec.priority, server.settings.artist_max_priority)
               or member_refusal(caller.who, caller.name, checked.spec.project, members))
    if refusal:
        raise Forbidden(refusal)
    if dry:  # a task without a part says nothing of it, as the answer always did
        answer = DryRun.model_validate(dry_run(checked, target_os=normalize_os(target_os)))
        return JSONResponse(answer.model_dump(mode="json", exclude_none=True), status_code=200)
    owner = checked.spec.owner or caller.name  # a job is its submitter's, or (wranglers, admins) whom they name
    with server.db.write() as conn:
        if owner != caller.name:
            users.ensure_user(conn, owner, utcnow())
        job_id = create_job(conn, checked, owner, create_projects=server.settings.create_unknown_projects,
                            submitted_by=caller.name if owner != caller.name else None)
    audit.name_target(request, job_id=job_id)
    forget_tag_keys(server.db.engine)  # a dispatch during the commit may have read the sets without a new one
    server.notifier.tasks_ready(sum(layer.task_count for layer in checked.layers))
    server.publish(jobs=[job_id], new_job=True)
    with server.db.read() as conn:  # the warnings a dry run of the spec lists, from the same check
        return Submitted(**dict(views.get_job(conn, job_id)), warnings=checked.warnings)


@router.get("/jobs", summary="List jobs with filters and paging", operation_id="list_jobs", dependencies=[permit("job.read")], tags=["jobs"],
            response_model=Page[JobSummary], responses=error_responses(*_AUTH))
def list_jobs(request: Request, state: JobStates = None, project: Text = None, owner: Text = None,
              name: Text = None, limit: int = _limit(50, 1000), offset: Offset = 0,
              sort: str = Query("-id", description=f"one of {', '.join(read.JOB_SORTS)}"),
              folder: Text = None,
              archived: bool = Query(False, description="true: the archived jobs (only they)"),
              sequence: Text = None, shot: Text = None) -> Page[JobSummary]:
    with ctx(request).db.read() as conn:
        return views.list_jobs(conn, state=state, project=project, owner=owner, name=name, limit=limit,
                               offset=offset, sort=sort, folder=folder, archived=archived, sequence=sequence,
                               shot=shot)


@router.get("/jobs/{job_id}", summary="One job with its layers", operation_id="get_job", dependencies=[permit("job.read")], tags=["jobs"],
            response_model=Job, responses=_ONE)
def get_job(request: Request, job_id: JobId) -> Job:
    with ctx(request).db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/jobs/{job_id}/failures", summary="Why a job failed: its failed attempts grouped by reason",
            operation_id="job_failures", dependencies=[permit("job.read")], tags=["jobs"], response_model=FailureSummary, responses=_ONE)
def job_failures(request: Request, job_id: JobId) -> FailureSummary:
    with ctx(request).db.read() as conn:
        return views.job_failures(conn, job_id)


@router.get("/jobs/{job_id}/tasks", summary="List a job's tasks with filters and paging", operation_id="list_tasks", dependencies=[permit("job.read")],
            tags=["tasks"], response_model=Page[Task], responses=_ONE)
def list_tasks(request: Request, job_id: JobId, layer: Text = None, state: TaskStates = None,
               frame: FrameNumber = None, limit: int = _limit(1000, 100_000), offset: Offset = 0) -> Page[Task]:
    with ctx(request).db.read() as conn:
        return views.list_tasks(conn, job_id, layer=layer, state=state, limit=limit, offset=offset, frame=frame)


def _job_action(server: ServerContext, fn: Any, job_id: int, *args: Any) -> Job:
    server.write(lambda conn: fn(conn, job_id, *args, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.post("/jobs/{job_id}/kill", summary="Kill a job: running tasks are stopped, nothing more starts",
             operation_id="kill_job", dependencies=[permit("job.kill")], tags=["jobs"],
             response_model=Job, responses=_CHANGE)
def kill_job(request: Request, job_id: JobId) -> Job:
    return _job_action(ctx(request), partial(lifecycle.kill_job, by=request.state.caller.name), job_id)


@router.post("/jobs/{job_id}/pause", summary="Pause a job: running tasks finish, no new task starts",
             operation_id="pause_job", dependencies=[permit("job.pause")], tags=["jobs"],
             response_model=Job, responses=_CHANGE)
def pause_job(request: Request, job_id: JobId) -> Job:
    return _job_action(ctx(request), lifecycle.pause_job, job_id)


@router.post("/jobs/{job_id}/resume", summary="Resume a paused job", operation_id="resume_job", dependencies=[permit("job.resume")], tags=["jobs"],
             response_model=Job, responses=_CHANGE)
def resume_job(request: Request, job_id: JobId) -> Job:
    return _job_action(ctx(request), lifecycle.resume_job, job_id)


@router.post("/jobs/{job_id}/retry", summary="Retry a job's failed and killed tasks, or the ones named",
             operation_id="retry_job", dependencies=[permit("job.retry")], tags=["jobs"], response_model=Job, responses=_CHANGE)
def retry_job(request: Request, job_id: JobId, body: RetryBody | None = None) -> Job:
    return _job_action(ctx(request), lifecycle.retry_tasks, job_id, body.task_ids if body else None)


@router.post("/jobs/{job_id}/release", summary="Let the tasks held behind scout frames go (one layer, or all)",
             operation_id="release_job", dependencies=[permit("job.release")], tags=["jobs"], response_model=Released, responses=_CHANGE)
def release_job(request: Request, job_id: JobId, body: ReleaseBody | None = None) -> Released:
    server = ctx(request)
    layer, who = body.layer if body else None, request.state.caller.name
    released, _changes = server.write(lambda conn: lifecycle.release_held(conn, job_id, layer, who, utcnow()))
    server.publish(jobs=[job_id])
    return Released(job_id=job_id, layers=released)


@router.put("/jobs/{job_id}/layers/{layer}/scout", summary="Pick a layer's scout frames again (none of its tasks "
            "started)", operation_id="set_scout", dependencies=[permit("job.scout")], tags=["jobs"], response_model=Job,
            responses=error_responses(*_AUTH, 404, 409, 422))
def set_scout(request: Request, job_id: JobId, layer: str, body: ScoutBody) -> Job:
    who = request.state.caller.name
    return _job_action(ctx(request), lambda conn, job, now: lifecycle.change_scout(
        conn, job, layer, body.scout, body.release, who, now), job_id)


@router.post("/jobs/{job_id}/priority", summary="Change a job's priority", operation_id="set_priority", dependencies=[permit("job.priority")],
             tags=["jobs"], response_model=Job, responses=_ONE)
def set_priority(request: Request, job_id: JobId, body: PriorityBody) -> Job:
    server = ctx(request)
    refusal = priority_refusal(request.state.caller.who, body.priority, server.settings.artist_max_priority)
    if refusal:
        raise Forbidden(refusal)
    with server.db.write() as conn:
        lifecycle.set_priority(conn, job_id, body.priority)
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/tasks/{task_id}", summary="One task with its attempts", operation_id="get_task", dependencies=[permit("job.read")], tags=["tasks"],
            response_model=TaskDetail, responses=_ONE)
def get_task(request: Request, task_id: TaskId) -> TaskDetail:
    with ctx(request).db.read() as conn:
        return views.get_task(conn, task_id)


@router.get("/tasks/{task_id}/attempts", summary="List a task's attempts, first try first",
            operation_id="list_attempts", dependencies=[permit("job.read")], tags=["attempts"], response_model=Page[Attempt], responses=_ONE)
def list_attempts(request: Request, task_id: TaskId, limit: int = _limit(1000, 100_000),
                  offset: Offset = 0) -> Page[Attempt]:
    with ctx(request).db.read() as conn:
        return views.list_attempts(conn, task_id, limit=limit, offset=offset)


def _task_action(server: ServerContext, fn: Any, task_id: int) -> TaskDetail:
    job_id, _changes = server.write(lambda conn: fn(conn, task_id, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_task(conn, task_id)


@router.post("/tasks/{task_id}/skip", summary="Mark a task done by hand (its dependents may start)",
             operation_id="skip_task", dependencies=[permit("task.skip")], tags=["tasks"],
             response_model=TaskDetail, responses=_CHANGE)
def skip_task(request: Request, task_id: TaskId) -> TaskDetail:
    return _task_action(ctx(request), partial(lifecycle.skip_task, by=request.state.caller.name), task_id)


@router.post("/tasks/{task_id}/retry", summary="Run one task again", operation_id="retry_task", dependencies=[permit("task.retry")], tags=["tasks"],
             response_model=TaskDetail, responses=_CHANGE)
def retry_task(request: Request, task_id: TaskId) -> TaskDetail:
    return _task_action(ctx(request), lifecycle.retry_task, task_id)


@router.post("/tasks/{task_id}/kill", summary="Kill one task", operation_id="kill_task", dependencies=[permit("task.kill")], tags=["tasks"],
             response_model=TaskDetail, responses=_CHANGE)
def kill_task(request: Request, task_id: TaskId) -> TaskDetail:
    return _task_action(ctx(request), partial(lifecycle.kill_task, by=request.state.caller.name), task_id)


@router.get("/attempts/{attempt_id}/log", summary="Read one page of an attempt's log from a byte offset",
            operation_id="read_log", dependencies=[permit("job.read")], tags=["attempts"], response_model=LogPiece,
            responses=_ONE)
def read_log(request: Request, attempt_id: AttemptId, offset: Offset = 0,
             limit: int = Query(1_000_000, ge=1, le=MAX_OFFSET,
                                description="bytes at most (cut to the server's `log_page_max_bytes`)")) -> LogPiece:
    server = ctx(request)
    with server.db.read() as conn:
        return views.read_log(conn, attempt_id, offset=offset, limit=min(limit, server.settings.log_page_max_bytes))


@router.get("/nodes", summary="List the farm's nodes by name", operation_id="list_nodes", dependencies=[permit("node.read")], tags=["nodes"],
            response_model=Page[Node], responses=error_responses(*_AUTH))
def list_nodes(request: Request, limit: int = _limit(1000, 100_000), offset: Offset = 0,
               state: str | None = Query(None, description="only the nodes that count as this (as the dashboard's "
                                                          f"chips): {', '.join(NODE_CHIPS)}"),
               name: str = Query("", max_length=200, description="only the nodes whose name or host name holds "
                                                                 "this, in any case")) -> Page[Node]:
    if state is not None and state not in NODE_CHIPS:
        raise BadInput(f"unknown node state {state!r}",
                       [{"field": "state", "message": f"must be one of {', '.join(NODE_CHIPS)}"}])
    with ctx(request).db.read() as conn:
        return views.list_nodes(conn, limit=limit, offset=offset, state=state or "", name=name.strip())


@router.get("/nodes/{ident}", summary="One node, by id or name", operation_id="get_node", dependencies=[permit("node.read")], tags=["nodes"],
            response_model=Node, responses=_ONE)
def get_node(request: Request, ident: NodeIdent) -> Node:
    with ctx(request).db.read() as conn:
        return views.get_node(conn, ident)


def _set_admin_state(request: Request, ident: str, state: NodeAdminState) -> Node:
    server = ctx(request)
    with server.db.write() as conn:
        node_id, given_back, changes = nodes.set_admin_state(conn, views.find_node(conn, ident).id, state, utcnow(),
                                                             server.settings.task_max_losses)
    server.announce(changes)
    server.notifier.node_changed(node_id)
    server.publish(nodes=[node_id], attempts=given_back)
    if state == NodeAdminState.ENABLED:
        server.notifier.tasks_ready(1)
    with server.db.read() as conn:
        return views.get_node(conn, str(node_id))


@router.post("/nodes/{ident}/enable", summary="Let a node take work again", operation_id="enable_node", dependencies=[permit("node.steer")], tags=["nodes"],
             response_model=Node, responses=_ONE)
def enable_node(request: Request, ident: NodeIdent) -> Node:
    return _set_admin_state(request, ident, NodeAdminState.ENABLED)


@router.post("/nodes/{ident}/disable", summary="Stop giving a node work; what it runs goes back to ready",
             operation_id="disable_node", dependencies=[permit("node.steer")], tags=["nodes"],
             response_model=Node, responses=_ONE)
def disable_node(request: Request, ident: NodeIdent) -> Node:
    return _set_admin_state(request, ident, NodeAdminState.DISABLED)


@router.post("/nodes/{ident}/drain", summary="Let a node finish what it runs, then take nothing new",
             operation_id="drain_node", dependencies=[permit("node.steer")], tags=["nodes"],
             response_model=Node, responses=_ONE)
def drain_node(request: Request, ident: NodeIdent) -> Node:
    return _set_admin_state(request, ident, NodeAdminState.DRAINING)


@router.get("/templates", summary="List the job templates the server knows", operation_id="list_templates", dependencies=[permit("template.read")],
            tags=["templates"], response_model=Page[Template], responses=error_responses(*_AUTH))
def list_templates(limit: int = _limit(1000, 10_000), offset: Offset = 0) -> Page[Template]:
    known = list(all_templates().values())
    return Page[Template](items=[Template.model_validate(t.describe()) for t in known[offset:offset + limit]],
                          total=len(known))
