"""Routes for people and tools: jobs, tasks, attempts, logs, nodes, templates (admin token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from thresher.model.spec import JobSpec
from thresher.model.states import LIVE_ATTEMPT_STATES, NodeAdminState
from thresher.server import lifecycle, views
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx, require_admin
from thresher.server.db.tables import attempts, log_chunks, nodes
from thresher.server.errors import NotFound
from thresher.server.submit import check_spec, create_job, dry_run
from thresher.templates import all_templates

router = APIRouter(dependencies=[Depends(require_admin)])


class RetryBody(BaseModel):
    task_ids: list[int] | None = None


class PriorityBody(BaseModel):
    priority: int = Field(..., ge=0, le=1000)


@router.post("/jobs", status_code=201, summary="Submit a job (or check it with dry_run=true)",
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": JobSpec.model_json_schema()}}}})
def submit_job(request: Request, spec: Any = Body(...), dry: bool = Query(False, alias="dry_run"),
               target_os: str = Query("linux", alias="os", description="dry run: build commands for this OS")) -> Any:
    server = ctx(request)
    checked = check_spec(spec)
    if dry:
        from fastapi.responses import JSONResponse

        return JSONResponse(dry_run(checked, target_os=target_os), status_code=200)
    owner = request.state.caller.name
    with server.db.write() as conn:
        job_id = create_job(conn, checked, owner)
    server.notifier.tasks_ready(sum(layer.task_count for layer in checked.layers))
    server.publish(jobs=[job_id], new_job=True)
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/jobs", summary="List jobs with filters and paging")
def list_jobs(request: Request, state: str | None = None, project: str | None = None, owner: str | None = None,
              name: str | None = None, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0),
              sort: str = "-id") -> Any:
    with ctx(request).db.read() as conn:
        return views.list_jobs(conn, state=state, project=project, owner=owner, name=name, limit=limit,
                               offset=offset, sort=sort)


@router.get("/jobs/{job_id}")
def get_job(request: Request, job_id: int) -> Any:
    with ctx(request).db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/jobs/{job_id}/tasks")
def list_tasks(request: Request, job_id: int, layer: str | None = None, state: str | None = None,
               limit: int = Query(1000, ge=1, le=100_000), offset: int = Query(0, ge=0)) -> Any:
    with ctx(request).db.read() as conn:
        return views.list_tasks(conn, job_id, layer=layer, state=state, limit=limit, offset=offset)


def _job_action(server: ServerContext, fn: Any, job_id: int, *args: Any) -> Any:
    server.write(lambda conn: fn(conn, job_id, *args, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.post("/jobs/{job_id}/kill")
def kill_job(request: Request, job_id: int) -> Any:
    return _job_action(ctx(request), lifecycle.kill_job, job_id)


@router.post("/jobs/{job_id}/pause")
def pause_job(request: Request, job_id: int) -> Any:
    return _job_action(ctx(request), lifecycle.pause_job, job_id)


@router.post("/jobs/{job_id}/resume")
def resume_job(request: Request, job_id: int) -> Any:
    return _job_action(ctx(request), lifecycle.resume_job, job_id)


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: int, body: RetryBody | None = None) -> Any:
    return _job_action(ctx(request), lifecycle.retry_tasks, job_id, body.task_ids if body else None)


@router.post("/jobs/{job_id}/priority")
def set_priority(request: Request, job_id: int, body: PriorityBody) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        lifecycle.set_priority(conn, job_id, body.priority)
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.get("/tasks/{task_id}")
def get_task(request: Request, task_id: int) -> Any:
    with ctx(request).db.read() as conn:
        return views.get_task(conn, task_id)


@router.get("/tasks/{task_id}/attempts")
def task_attempts(request: Request, task_id: int) -> Any:
    with ctx(request).db.read() as conn:
        return views.list_attempts(conn, task_id)


def _task_action(server: ServerContext, fn: Any, task_id: int) -> Any:
    job_id, _changes = server.write(lambda conn: fn(conn, task_id, utcnow()))
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_task(conn, task_id)


@router.post("/tasks/{task_id}/skip")
def skip_task(request: Request, task_id: int) -> Any:
    return _task_action(ctx(request), lifecycle.skip_task, task_id)


@router.post("/tasks/{task_id}/retry")
def retry_task(request: Request, task_id: int) -> Any:
    return _task_action(ctx(request), lifecycle.retry_task, task_id)


@router.post("/tasks/{task_id}/kill")
def kill_task(request: Request, task_id: int) -> Any:
    return _task_action(ctx(request), lifecycle.kill_task, task_id)


@router.get("/attempts/{attempt_id}/log", summary="Read an attempt's log from a byte offset")
def read_log(request: Request, attempt_id: int, offset: int = Query(0, ge=0),
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
def get_node(request: Request, ident: str) -> Any:
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
def enable_node(request: Request, ident: str) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.ENABLED)


@router.post("/nodes/{ident}/disable")
def disable_node(request: Request, ident: str) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.DISABLED)


@router.post("/nodes/{ident}/drain")
def drain_node(request: Request, ident: str) -> Any:
    return _set_admin_state(request, ident, NodeAdminState.DRAINING)


@router.get("/templates")
def list_templates() -> Any:
    return [template.describe() for template in all_templates().values()]
