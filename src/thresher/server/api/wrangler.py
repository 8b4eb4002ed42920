"""Routes behind the dashboard a wrangler lives in: one layer's actions, a node's tags, what an attempt
ran. Thin, as every route: the steering is `server/layer_steering.py`, the command `server/commands.py`."""

from __future__ import annotations

from fastapi import APIRouter, Request

from thresher.server import commands, layer_steering, nodes, views
from thresher.server.api.people import _AUTH, _CHANGE, _ONE, AttemptId, JobId, NodeIdent
from thresher.server.clock import utcnow
from thresher.server.context import ctx
from thresher.server.permits import permit
from thresher.wire.common import error_responses
from thresher.wire.jobs import AttemptCommand, Job, LayerAction
from thresher.wire.nodes import Node, NodeChange

router = APIRouter()


@router.post("/jobs/{job_id}/layers/{layer}/{action}", summary="Pause, resume, retry (failed and killed), kill or "
             "skip one layer's tasks", operation_id="steer_layer", dependencies=[permit("job.layer")], tags=["jobs"], response_model=Job,
             responses=_CHANGE)
def steer_layer(request: Request, job_id: JobId, layer: str, action: LayerAction) -> Job:
    server = ctx(request)
    act, by = layer_steering.ACTIONS[action.value], request.state.caller.name
    server.write(lambda conn: act(conn, job_id, layer, utcnow(), by))  # announced after the commit
    server.publish(jobs=[job_id])
    with server.db.read() as conn:
        return views.get_job(conn, job_id)


@router.patch("/nodes/{ident}", summary="Change a node's tags (until its agent registers again)",
              operation_id="change_node", dependencies=[permit("node.steer")], tags=["nodes"], response_model=Node,
              responses=error_responses(*_AUTH, 404))
def change_node(request: Request, ident: NodeIdent, body: NodeChange) -> Node:
    server = ctx(request)
    with server.db.write() as conn:
        node_id = views.find_node(conn, ident).id
        nodes.set_tags(conn, node_id, body.tags)
    server.notifier.node_changed(node_id)  # it may now take tasks it could not
    server.publish(nodes=[node_id])
    with server.db.read() as conn:
        return views.get_node(conn, str(node_id))


@router.get("/attempts/{attempt_id}/command", summary="The command line an attempt ran (argv, cwd, env it added)",
            operation_id="attempt_command", dependencies=[permit("job.read")], tags=["attempts"], response_model=AttemptCommand, responses=_ONE)
def attempt_command(request: Request, attempt_id: AttemptId) -> AttemptCommand:
    with ctx(request).db.read() as conn:
        return commands.attempt_command(conn, attempt_id)
