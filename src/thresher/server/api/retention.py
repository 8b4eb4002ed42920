"""Routes that keep jobs and data in check (`server/retention.py`): finished jobs archived or deleted,
one, several or by filter, and a node that is down removed from the farm."""

from __future__ import annotations

from fastapi import APIRouter, Request

from thresher.server import retention, views
from thresher.server.api.people import JobId, NodeIdent
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.permits import permit
from thresher.wire.common import error_responses
from thresher.wire.retention import JobsChanged, JobsChosen, NodeRemoved

router = APIRouter()

# An admin token (401, 403), checked input (422), jobs that exist (404) and are finished (409).
_CHANGE = error_responses(401, 403, 422, 404, 409)


def _chosen(body: JobsChosen) -> retention.Selection:
    return retention.Selection(ids=body.ids, states=[str(s) for s in body.state] if body.state else None,
                               project=body.project, older_than_s=body.older_than_s, archived=body.archived)


def _act(server: ServerContext, chosen: retention.Selection, archive: bool) -> JobsChanged:
    """Check the selection, then one transaction per `retention.BATCH` jobs: thousands of jobs never hold
    the database in one long write (each batch checks again, under the job rows' locks, what it takes)."""
    now = utcnow()
    with server.db.read() as conn:
        ids = retention.select_jobs(conn, chosen, now)
        already = retention.archived_before(conn, ids) if archive and chosen.ids else []
        waited_for = retention.waited_for(conn, chosen, now) if not chosen.ids else []
    done: list[int] = []
    for start in range(0, len(ids), retention.BATCH):
        batch = ids[start:start + retention.BATCH]
        with server.db.write() as conn:
            done += retention.archive(conn, batch, now) if archive else retention.delete(conn, batch)
    server.publish(jobs=done)
    return JobsChanged(jobs=done, count=len(done), more=not chosen.ids and len(ids) >= retention.MOST_PER_CALL,
                       already=already, waited_for=waited_for)


@router.post("/jobs/archive", summary="Archive finished jobs (by ids or a filter): out of the lists, "
             "their statistics kept", operation_id="archive_jobs", dependencies=[permit("jobs.bulk")], tags=["jobs"], response_model=JobsChanged,
             responses=_CHANGE)
def archive_jobs(request: Request, body: JobsChosen) -> JobsChanged:
    chosen = _chosen(body)
    if chosen.archived is None:
        chosen.archived = False
    return _act(ctx(request), chosen, archive=True)


@router.post("/jobs/delete", summary="Delete finished jobs (by ids or a filter) with their tasks, attempts "
             "and logs", operation_id="delete_jobs", dependencies=[permit("jobs.bulk")], tags=["jobs"], response_model=JobsChanged, responses=_CHANGE)
def delete_jobs(request: Request, body: JobsChosen) -> JobsChanged:
    return _act(ctx(request), _chosen(body), archive=False)


@router.delete("/jobs/{job_id}", summary="Delete one finished job with its tasks, attempts and logs",
               operation_id="delete_job", dependencies=[permit("job.delete")], tags=["jobs"], response_model=JobsChanged, responses=_CHANGE)
def delete_job(request: Request, job_id: JobId) -> JobsChanged:
    return _act(ctx(request), retention.Selection(ids=[job_id]), archive=False)


@router.delete("/nodes/{ident}", summary="Remove a node that is down from the farm (its attempts keep its name)",
               operation_id="remove_node", dependencies=[permit("node.remove")], tags=["nodes"], response_model=NodeRemoved, responses=_CHANGE)
def remove_node(request: Request, ident: NodeIdent) -> NodeRemoved:
    server = ctx(request)
    with server.db.write() as conn:
        name = views.find_node(conn, ident).name
        node_id = retention.remove_node(conn, name, utcnow())
    server.publish(nodes=[node_id])
    return NodeRemoved(id=node_id, name=name)
