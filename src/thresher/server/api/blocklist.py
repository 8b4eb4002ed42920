"""Routes of a job's blocklist (`server/failures.py`): the nodes that failed its attempts, and clearing them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from thresher.server import failures, views
from thresher.server.api.people import JobId, NodeIdent
from thresher.server.context import ServerContext, ctx
from thresher.server.lifecycle import Changes
from thresher.server.permits import permit
from thresher.wire.common import error_responses
from thresher.wire.jobs import Blocklist

router = APIRouter(tags=["jobs"])

# An admin token (401, 403), checked input (422), a job (and node) that exist (404).
_ONE = error_responses(401, 403, 422, 404)


@router.get("/jobs/{job_id}/blocklist", summary="The nodes that failed a job's attempts, and which are blocked",
            operation_id="get_blocklist", dependencies=[permit("job.read")], response_model=Blocklist, responses=_ONE)
def get_blocklist(request: Request, job_id: JobId) -> Blocklist:
    with ctx(request).db.read() as conn:
        return failures.job_blocklist(conn, job_id)


def _cleared(server: ServerContext, job_id: int, freed: set[int]) -> Blocklist:
    server.announce(Changes(ready=1 if freed else 0, nodes=freed))  # the job may have work for them
    server.publish(jobs=[job_id], nodes=freed)
    with server.db.read() as conn:
        return failures.job_blocklist(conn, job_id)


@router.delete("/jobs/{job_id}/blocklist", summary="Clear a job's blocklist: every node may take its tasks again",
               operation_id="clear_blocklist", dependencies=[permit("job.blocklist")], response_model=Blocklist, responses=_ONE)
def clear_blocklist(request: Request, job_id: JobId) -> Blocklist:
    server = ctx(request)
    with server.db.write() as conn:
        freed = failures.clear(conn, job_id)
    return _cleared(server, job_id, freed)


@router.delete("/jobs/{job_id}/blocklist/{node_name}", summary="Take one node off a job's blocklist",
               operation_id="clear_blocklist_node", dependencies=[permit("job.blocklist")], response_model=Blocklist, responses=_ONE)
def clear_blocklist_node(request: Request, job_id: JobId, node_name: NodeIdent) -> Blocklist:
    server = ctx(request)
    with server.db.write() as conn:
        failures.job_blocklist(conn, job_id)  # 404 for no such job before one for no such node
        node = views.find_node(conn, node_name)
        freed = failures.clear(conn, job_id, node.id, node.name)
    return _cleared(server, job_id, freed)
