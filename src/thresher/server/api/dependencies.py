"""Routes of a job's dependencies (`server/dependencies.py`): what it waits for and what waits for it,
a task made to wait for a task, and dropping them (which releases what only they held)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection

from thresher.server import dependencies, lifecycle, views
from thresher.server.api.people import JobId, Text
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.errors import BadInput, Conflict
from thresher.server.permits import permit
from thresher.wire.common import error_responses
from thresher.wire.dependencies import DroppedDependencies, JobDependencies, NewDependency

router = APIRouter(tags=["jobs"])

# An admin token (401, 403), checked input (422: also a cycle), a job that exists (404), a task that
# can still wait (409); a drop that matches no dependency (409).
_ONE = error_responses(401, 403, 422, 404)
_CHANGE = error_responses(401, 403, 422, 404, 409)


def _id(what: str) -> Any:
    return Query(None, ge=1, le=2**31 - 1, description=what)


def _view(server: ServerContext, job_id: int) -> JobDependencies:
    with server.db.read() as conn:
        return dependencies.view(conn, job_id, views.get_job(conn, job_id).pending)


@router.get("/jobs/{job_id}/dependencies", summary="What a job waits for and what waits for it",
            operation_id="get_dependencies", dependencies=[permit("job.read")], response_model=JobDependencies, responses=_ONE)
def get_dependencies(request: Request, job_id: JobId) -> JobDependencies:
    return _view(ctx(request), job_id)


@router.post("/jobs/{job_id}/dependencies", summary="Make a task of this job wait for another task",
             operation_id="add_dependency", dependencies=[permit("job.dependencies")], response_model=JobDependencies, responses=_CHANGE)
def add_dependency(request: Request, job_id: JobId, body: NewDependency) -> JobDependencies:
    server = ctx(request)

    def add(conn: Connection) -> lifecycle.Changes:
        views.get_job(conn, job_id)  # 404 for no such job
        dependencies.add_task_edge(conn, job_id, body.task, body.on_task, body.on)
        return lifecycle.refresh_job(conn, job_id, utcnow())
    server.write(add)  # wakes the agents after the commit
    server.publish(jobs=[job_id])
    return _view(server, job_id)


def _nothing_dropped(job_id: int, layer: str | None, task: int | None, on_job: int | None) -> str:
    """Why a drop that matched no dependency is refused: "job 44 has no dependency on job 99999" reads
    as what it is, where "0 dependencies dropped" with exit 0 read as done (a typo'd id, say)."""
    scope = " and ".join(part for part in (f"layer {layer}" if layer is not None else "",
                                           f"task {task}" if task is not None else "") if part)
    subject = f"job {job_id}" + (f" ({scope})" if scope else "")
    target = f" on job {on_job}" if on_job is not None else ""
    return f"{subject} has no dependency{target}: nothing to drop"


@router.delete("/jobs/{job_id}/dependencies", summary="Drop a job's dependencies: all, or one layer's, "
               "one task's, or those on one job", operation_id="drop_dependencies", dependencies=[permit("job.dependencies")],
               response_model=DroppedDependencies, responses=_CHANGE)
def drop_dependencies(request: Request, job_id: JobId, layer: Text = None, task: int | None = _id("only this task's dependencies"),
                      on_job: int | None = _id("only the dependencies on this job"), all: bool = False) -> DroppedDependencies:
    if not all and layer is None and task is None and on_job is None:
        raise BadInput("say which dependencies to drop", [{"field": "all", "message": (
            "give layer, task or on_job, or all=true to drop every dependency of the job")}])
    server = ctx(request)
    dropped = 0

    def drop(conn: Connection) -> lifecycle.Changes:
        nonlocal dropped
        dropped = dependencies.drop(conn, job_id, layer=layer, task_id=task, on_job=on_job)
        if not dropped:
            raise Conflict(_nothing_dropped(job_id, layer, task, on_job))
        return lifecycle.refresh_job(conn, job_id, utcnow())
    server.write(drop)
    server.publish(jobs=[job_id])
    return DroppedDependencies(job_id=job_id, dropped=dropped)
