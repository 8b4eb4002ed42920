"""Routes of studio scheduling (admin token): projects, folders, stakes, pools, a node's pool, licence
limits, urgent jobs and moves between folders. Thin: `server/studio_admin.py` does the work, each
change in one write transaction, and the answer is read after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Path, Query, Request

from thresher.server import studio_admin as admin
from thresher.server import usage_history, views
from thresher.server.api.people import JobId, NodeIdent
from thresher.server.context import ServerContext, ctx
from thresher.server.permits import permit
from thresher.wire import studio as w
from thresher.wire.common import Page, error_responses
from thresher.wire.jobs import Job
from thresher.wire.nodes import Node

router = APIRouter()

_AUTH = (401, 403, 422)
_LIST = error_responses(*_AUTH)
_ONE = error_responses(*_AUTH, 404)
_STEER = error_responses(*_AUTH, 404, 409)  # a finished job is not marked urgent or moved
_NEW = error_responses(*_AUTH, 404, 409)


PathName = NodeIdent  # a name in the path: no control characters (unknown names are 404)
PoolName = Annotated[str, Path(pattern=w.NAME_PATTERN)]
FolderName = Annotated[str, Path(pattern=w.NAME_PATTERN)]


def _change(server: ServerContext, fn: Callable[..., Any], *args: Any) -> Any:
    with server.db.write() as conn:
        result = fn(conn, *args)
    server.notifier.tasks_ready(1)  # a cap or an order changed: waiting agents look again
    return result


# ---------------------------------------------------------------- projects

@router.get("/projects", summary="List projects with their stakes, folders and what they run",
            operation_id="list_projects", dependencies=[permit("studio.read")], tags=["studio"], response_model=Page[w.Project], responses=_LIST)
def list_projects(request: Request) -> Page[w.Project]:
    with ctx(request).db.read() as conn:
        items = admin.list_projects(conn)
    return Page[w.Project](items=items, total=len(items))  # tens: one page holds them all


@router.post("/projects", status_code=201, summary="Add a project", operation_id="create_project", dependencies=[permit("project.manage")],
             tags=["studio"], response_model=w.Project, responses=_NEW)
def create_project(request: Request, body: w.ProjectCreate) -> w.Project:
    server = ctx(request)
    _change(server, admin.create_project, body)
    with server.db.read() as conn:
        return admin.get_project(conn, body.name)


@router.get("/projects/{name}", summary="One project", operation_id="get_project", dependencies=[permit("studio.read")], tags=["studio"],
            response_model=w.Project, responses=_ONE)
def get_project(request: Request, name: PathName) -> w.Project:
    with ctx(request).db.read() as conn:
        return admin.get_project(conn, name)


@router.get("/projects/{name}/usage", summary="What a project ran over time (sampled usage counters)",
            operation_id="get_project_usage", dependencies=[permit("studio.read")], tags=["studio"], response_model=w.ProjectUsage, responses=_ONE)
def get_project_usage(request: Request, name: PathName, since: datetime | None = Query(
        None, description="samples from this moment on (ISO 8601, UTC when no zone); an hour ago when absent")
        ) -> w.ProjectUsage:
    server = ctx(request)
    with server.db.read() as conn:
        return usage_history.project_usage(conn, name, since, server.settings.usage_sample_s)


@router.patch("/projects/{name}", summary="Change a project's weight or caps", operation_id="update_project", dependencies=[permit("project.manage")],
              tags=["studio"], response_model=w.Project, responses=_ONE)
def update_project(request: Request, name: PathName, body: w.ProjectPatch) -> w.Project:
    server = ctx(request)
    _change(server, admin.update_project, name, body)
    with server.db.read() as conn:
        return admin.get_project(conn, name)


def _project_after(server: ServerContext, change: Callable[..., Any], name: str, *args: Any) -> w.Project:
    """Apply a change to one of a project's parts (a folder, a stake), then answer the whole project."""
    _change(server, change, name, *args)
    with server.db.read() as conn:
        return admin.get_project(conn, name)


@router.post("/projects/{name}/folders", status_code=201, summary="Add a folder to a project",
             operation_id="create_folder", dependencies=[permit("project.manage")], tags=["studio"], response_model=w.Project, responses=_NEW)
def create_folder(request: Request, name: PathName, body: w.FolderCreate) -> w.Project:
    return _project_after(ctx(request), admin.create_folder, name, body)


@router.patch("/projects/{name}/folders/{folder}", summary="Change a folder's priority, minimum or cap",
              operation_id="update_folder", dependencies=[permit("project.manage")], tags=["studio"], response_model=w.Project, responses=_ONE)
def update_folder(request: Request, name: PathName, folder: FolderName, body: w.FolderPatch) -> w.Project:
    return _project_after(ctx(request), admin.update_folder, name, folder, body)


@router.put("/projects/{name}/pools/{pool}", summary="Set a project's stake in a pool",
            operation_id="set_stake", dependencies=[permit("pool.manage")], tags=["studio"], response_model=w.Project, responses=_ONE)
def set_stake(request: Request, name: PathName, pool: PoolName, body: w.StakeBody) -> w.Project:
    return _project_after(ctx(request), admin.set_stake, name, pool, body)


# ---------------------------------------------------------------- pools and nodes

@router.get("/pools", summary="List pools with their nodes' count and cores and what runs in them",
            operation_id="list_pools", dependencies=[permit("studio.read")], tags=["studio"], response_model=Page[w.Pool], responses=_LIST)
def list_pools(request: Request) -> Page[w.Pool]:
    with ctx(request).db.read() as conn:
        items = admin.list_pools(conn)
    return Page[w.Pool](items=items, total=len(items))  # tens: one page holds them all


@router.get("/pools/{name}", summary="One pool with its nodes", operation_id="get_pool", dependencies=[permit("studio.read")], tags=["studio"],
            response_model=w.PoolDetail, responses=_ONE)
def get_pool(request: Request, name: PathName) -> w.PoolDetail:
    with ctx(request).db.read() as conn:
        return admin.get_pool(conn, name)


@router.post("/nodes/{ident}/pool", summary="Move a node to a pool (made if new)", operation_id="set_node_pool", dependencies=[permit("pool.manage")],
             tags=["nodes"], response_model=Node, responses=_ONE)
def set_node_pool(request: Request, ident: NodeIdent, body: w.NodePoolBody) -> Node:
    server = ctx(request)
    with server.db.write() as conn:
        node_id = admin.move_node(conn, ident, body.pool)
    server.notifier.node_changed(node_id)
    server.publish(nodes=[node_id])
    with server.db.read() as conn:
        return views.get_node(conn, str(node_id))


# ---------------------------------------------------------------- limits

@router.get("/limits", summary="List licence limits with the units in use", operation_id="list_limits", dependencies=[permit("studio.read")],
            tags=["studio"], response_model=Page[w.Limit], responses=_LIST)
def list_limits(request: Request) -> Page[w.Limit]:
    with ctx(request).db.read() as conn:
        items = admin.list_limits(conn)
    return Page[w.Limit](items=items, total=len(items))  # tens: one page holds them all


@router.post("/limits", status_code=201, summary="Add a licence limit", operation_id="create_limit", dependencies=[permit("limit.manage")],
             tags=["studio"], response_model=w.Limit, responses=_NEW)
def create_limit(request: Request, body: w.LimitCreate) -> w.Limit:
    server = ctx(request)
    _change(server, admin.create_limit, body)
    with server.db.read() as conn:
        return admin.get_limit(conn, body.name)


@router.patch("/limits/{name}", summary="Change a licence limit's totals", operation_id="update_limit", dependencies=[permit("limit.manage")],
              tags=["studio"], response_model=w.Limit, responses=_ONE)
def update_limit(request: Request, name: PathName, body: w.LimitPatch) -> w.Limit:
    server = ctx(request)
    _change(server, admin.update_limit, name, body)
    with server.db.read() as conn:
        return admin.get_limit(conn, name)


@router.delete("/limits/{name}", summary="Remove a licence limit no one uses or names; answers it as it was",
               operation_id="delete_limit", dependencies=[permit("limit.manage")], tags=["studio"], response_model=w.Limit,
               responses=error_responses(*_AUTH, 404, 409))
def delete_limit(request: Request, name: PathName) -> w.Limit:
    with ctx(request).db.write() as conn:
        gone = admin.get_limit(conn, name)
        admin.delete_limit(conn, name)
    return gone


# ---------------------------------------------------------------- jobs

@router.post("/jobs/{job_id}/urgent", summary="Mark a job urgent (ahead of fair share) or not",
             operation_id="set_urgent", dependencies=[permit("job.urgent")], tags=["jobs"], response_model=Job, responses=_STEER)
def set_urgent(request: Request, job_id: JobId, body: w.UrgentBody) -> Job:
    server = ctx(request)
    _change(server, admin.set_urgent, job_id, body.urgent, request.state.caller.name)
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.post("/jobs/{job_id}/move", summary="Move a job to a folder of its project (made if new)",
             operation_id="move_job", dependencies=[permit("job.move")], tags=["jobs"], response_model=Job, responses=_STEER)
def move_job(request: Request, job_id: JobId, body: w.MoveBody) -> Job:
    server = ctx(request)
    _change(server, admin.move_job, job_id, body.folder)
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)
