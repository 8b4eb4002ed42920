"""Routes for people and tools: jobs, tasks, attempts, logs, nodes, templates (admin token)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select, update

from thresher.model.paths import OS_NAMES, normalize_os
from thresher.model.spec import MAX_ID, JobSpec
from thresher.model.states import LIVE_ATTEMPT_STATES, JobState, NodeAdminState, TaskState
from thresher.server import lifecycle, views
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx, require_admin
from thresher.server.db.tables import attempts, log_chunks, nodes
from thresher.server.dispatch import forget_tag_keys
from thresher.server.errors import BadInput, NotFound
from thresher.server.submit import create_job, dry_run, farm_problems, inspect_spec, merge_problems, problem_detail
from thresher.templates import all_templates

router = APIRouter(dependencies=[Depends(require_admin)])

MAX_OFFSET = 2**63 - 1  # OFFSET and byte offsets are 64-bit in both databases
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- what requests may carry
# Checked before any query runs: a value the database cannot hold (an id past its integer column, a NUL in
# text) would otherwise come back from PostgreSQL as an error, and from SQLite as an overflow.

def _plain(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, tabs, line breaks)")
    return value


def _states(allowed: list[str]) -> Any:
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
JobStates = Annotated[str | None, AfterValidator(_states([s.value for s in JobState])),
                      Query(description=f"one or more of {', '.join(s.value for s in JobState)}, comma separated")]
TaskStates = Annotated[str | None, AfterValidator(_states([s.value for s in TaskState])),
                       Query(description=f"one or more of {', '.join(s.value for s in TaskState)}, comma separated")]
NodeIdent = Annotated[str, AfterValidator(_plain)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


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


class RetryBody(BaseModel):
    task_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=100_000)


class PriorityBody(BaseModel):
    priority: int = Field(..., ge=0, le=1000)


# The spec is read as plain JSON (so that every problem can be reported at once, with its place), and its
# schema is given to the OpenAPI document by hand: the models it refers to go under components/schemas
# (see `openapi_components`), where Swagger UI and ReDoc resolve them.
_JOB_SPEC_SCHEMA = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
_JOB_SPEC_DEFS = _JOB_SPEC_SCHEMA.pop("$defs", {})


def openapi_components() -> dict[str, Any]:
    """Schemas that the submit route's request body refers to."""
    return {"JobSpec": _JOB_SPEC_SCHEMA, **_JOB_SPEC_DEFS}


@router.post("/jobs", status_code=201, summary="Submit a job (or check it with dry_run=true)",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/JobSpec"}}}}})
def submit_job(request: Request, spec: Any = Body(...), dry: bool = Query(False, alias="dry_run"),
               target_os: str = Query("linux", alias="os", description="dry run: build commands for this OS")) -> Any:
    server = ctx(request)
    if normalize_os(target_os) not in OS_NAMES:
        raise BadInput("unknown os", [{"field": "os", "message": f"use one of {', '.join(OS_NAMES)}"}])
    checked, problems, needs = inspect_spec(spec)
    if problems or dry:
        # A dry run answers what the submit would: farm checks included. A refused spec is also checked
        # against the farm, so that one answer lists every problem.
        with server.db.read() as conn:
            problems = merge_problems(problems, farm_problems(conn, needs))
    if problems or checked is None:
        raise BadInput(problem_detail(problems), problems)
    if dry:
        from fastapi.responses import JSONResponse

        return JSONResponse(dry_run(checked, target_os=normalize_os(target_os)), status_code=200)
    owner = request.state.caller.name
    with server.db.write() as conn:
        job_id = create_job(conn, checked, owner)
    forget_tag_keys(server.db.engine)  # a dispatch during the commit may have read the sets without a new one
    server.notifier.tasks_ready(sum(layer.task_count for layer in checked.layers))
    server.publish(jobs=[job_id], new_job=True)
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/jobs", summary="List jobs with filters and paging")
def list_jobs(request: Request, state: JobStates = None, project: Text = None, owner: Text = None,
              name: Text = None, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0,
              sort: str = "-id") -> Any:
    with ctx(request).db.read() as conn:
        return views.list_jobs(conn, state=state, project=project, owner=owner, name=name, limit=limit,
                               offset=offset, sort=sort)


@router.get("/jobs/{job_id}")
def get_job(request: Request, job_id: JobId) -> Any:
    with ctx(request).db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/jobs/{job_id}/tasks")
def list_tasks(request: Request, job_id: JobId, layer: Text = None, state: TaskStates = None,
               limit: int = Query(1000, ge=1, le=100_000), offset: Offset = 0) -> Any:
    with ctx(request).db.read() as conn:
        return views.list_tasks(conn, job_id, layer=layer, state=state, limit=limit, offset=offset)


def _job_action(server: ServerContext, fn: Any, job_id: int, *args: Any) -> Any:
    server.write(lambda conn: fn(conn, job_id, *args, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.post("/jobs/{job_id}/kill")
def kill_job(request: Request, job_id: JobId) -> Any:
    return _job_action(ctx(request), lifecycle.kill_job, job_id)


@router.post("/jobs/{job_id}/pause")
def pause_job(request: Request, job_id: JobId) -> Any:
    return _job_action(ctx(request), lifecycle.pause_job, job_id)


@router.post("/jobs/{job_id}/resume")
def resume_job(request: Request, job_id: JobId) -> Any:
    return _job_action(ctx(request), lifecycle.resume_job, job_id)


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: JobId, body: RetryBody | None = None) -> Any:
    return _job_action(ctx(request), lifecycle.retry_tasks, job_id, body.task_ids if body else None)


@router.post("/jobs/{job_id}/priority")
def set_priority(request: Request, job_id: JobId, body: PriorityBody) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        lifecycle.set_priority(conn, job_id, body.priority)
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/tasks/{task_id}")
def get_task(request: Request, task_id: TaskId) -> Any:
    with ctx(request).db.read() as conn:
        return views.get_task(conn, task_id)


@router.get("/tasks/{task_id}/attempts")
def task_attempts(request: Request, task_id: TaskId) -> Any:
    with ctx(request).db.read() as conn:
        return views.list_attempts(conn, task_id)


def _task_action(server: ServerContext, fn: Any, task_id: int) -> Any:
    job_id, _changes = server.write(lambda conn: fn(conn, task_id, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_task(conn, task_id)


@router.post("/tasks/{task_id}/skip")
def skip_task(request: Request, task_id: TaskId) -> Any:
    return _task_action(ctx(request), lifecycle.skip_task, task_id)


@router.post("/tasks/{task_id}/retry")
def retry_task(request: Request, task_id: TaskId) -> Any:
    return _task_action(ctx(request), lifecycle.retry_task, task_id)


@router.post("/tasks/{task_id}/kill")
def kill_task(request: Request, task_id: TaskId) -> Any:
    return _task_action(ctx(request), lifecycle.kill_task, task_id)


@router.get("/attempts/{attempt_id}/log", summary="Read an attempt's log from a byte offset")
def read_log(request: Request, attempt_id: AttemptId, offset: Offset = 0,
             limit: int = Query(1_000_000, ge=1, le=10_000_000)) -> Any:
    with ctx(request).db.read() as conn:
        attempt = conn.execute(select(attempts.c.state, attempts.c.log_size).where(attempts.c.id == attempt_id)).first()
        if attempt is None:
            raise NotFound(f"no attempt with id {attempt_id}")
        chunks = conn.execute(select(log_chunks.c.offset, log_chunks.c.data)
                              .where(log_chunks.c.attempt_id == attempt_id,
                                     log_chunks.c.offset + 4 * limit >= offset)  # cheap lower bound
                              .order_by(log_chunks.c.offset)).all()
    pieces: list[bytes] = []
    position = offset
    for chunk in chunks:
        raw = chunk.data.encode("utf-8")
        end = chunk.offset + len(raw)
        if end <= position:
            continue
        start_in = max(0, position - chunk.offset)
        pieces.append(raw[start_in:])
        position = end
        if sum(map(len, pieces)) >= limit:
            break
    data = b"".join(pieces).decode("utf-8", errors="replace")
    ended = attempt.state not in LIVE_ATTEMPT_STATES
    return {"attempt_id": attempt_id, "offset": offset, "data": data, "next_offset": position,
            "complete": ended and position >= attempt.log_size}


@router.get("/nodes")
def list_nodes(request: Request) -> Any:
    with ctx(request).db.read() as conn:
        return views.list_nodes(conn)


@router.get("/nodes/{ident}")
def get_node(request: Request, ident: NodeIdent) -> Any:
    with ctx(request).db.read() as conn:
        return views.get_node(conn, ident)


def _set_admin_state(request: Request, ident: str, state: NodeAdminState) -> Any:
    server = ctx(request)
    changes = lifecycle.Changes()
    live: list[int] = []
    with server.db.write() as conn:
        node = views.find_node(conn, ident)
        conn.execute(update(nodes).where(nodes.c.id == node.id).values(admin_state=state.value))
        if state == NodeAdminState.DISABLED:  # a disabled node gives its work back; a draining one finishes it
            live = [r.id for r in conn.execute(select(attempts.c.id).where(
                attempts.c.node_id == node.id, attempts.c.state.in_(LIVE_ATTEMPT_STATES)))]
            changes = lifecycle.lose_attempts(conn, live, "node disabled", utcnow())
    server.announce(changes)
    server.notifier.node_changed(node.id)
    server.publish(nodes=[node.id], attempts=live)
    if state == NodeAdminState.ENABLED:
        server.notifier.tasks_ready(1)
    with server.db.read() as conn:
        return views.get_node(conn, str(node.id))


@router.post("/nodes/{ident}/enable")
def enable_node(request: Request, ident: NodeIdent) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.ENABLED)


@router.post("/nodes/{ident}/disable")
def disable_node(request: Request, ident: NodeIdent) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.DISABLED)


@router.post("/nodes/{ident}/drain")
def drain_node(request: Request, ident: NodeIdent) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.DRAINING)


@router.get("/templates")
def list_templates() -> Any:
    return [template.describe() for template in all_templates().values()]
