"""Routes for agents: register, heartbeat, ask for work (long poll), stream logs, report results.

An agent acts only for the node its token belongs to: no route takes a node id from the request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from thresher.model.spec import MAX_ID
from thresher.model.states import NodeState
from thresher.server import dispatch, lifecycle, nodes
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, bearer_secret, ctx, current_caller, current_node_id
from thresher.server.failures import FailureLimits
from thresher.server.permits import permit
from thresher.wire.agent import (
    MAX_AHEAD,
    FinishAnswer,
    FinishBatch,
    Goodbye,
    Heartbeat,
    HeartbeatAnswer,
    LogAccepted,
    LogChunk,
    LogGap,
    Registered,
    Registration,
    WorkAnswer,
    WorkAsk,
)
from thresher.wire.common import error_responses

router = APIRouter(prefix="/agent", tags=["agent"])

# Every agent call needs a token (401) of the right kind (403) and checks what it is sent (422).
_AUTH = (401, 403, 422)


@router.post("/register", operation_id="register_node", dependencies=[permit("node.register")], response_model=Registered,
             summary="Register a node (enrolment token), or refresh its facts (its own token)",
             responses=error_responses(*_AUTH, 409))
def register(request: Request, body: Registration, caller: Caller = Depends(current_caller),
             secret: str = Depends(bearer_secret)) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        node = nodes.register(conn, caller, secret, body, utcnow(), server.settings.node_timeout_s)
    if node.tokens_replaced:
        server.forget_tokens()
    server.notifier.looked(node.node_id, None)  # its facts may have changed: its next poll looks
    if caller.kind != "node":  # a new (or taken over) node: it may take work at once
        server.notifier.tasks_ready(1)
        server.publish(nodes=[node.node_id])
    return {"node_id": node.node_id, "name": node.name, "token": node.token,
            "node_timeout_s": server.settings.node_timeout_s, "poll_heartbeat": True}


def _heartbeats(conn: Connection, beats: list[nodes.Beat]) -> list[tuple[dict[str, Any], lifecycle.Changes]]:
    """Heartbeats queued together, applied together (see WriteBatcher.run_grouped)."""
    return nodes.heartbeats(conn, beats, utcnow())


@router.post("/heartbeat", operation_id="heartbeat", dependencies=[permit("node.agent")], response_model=HeartbeatAnswer,
             summary="The node is alive: its load and what it runs; answered with what to kill",
             responses=error_responses(*_AUTH))
async def heartbeat(request: Request, body: Heartbeat, node_id: int = Depends(current_node_id)) -> Any:
    return JSONResponse(await _beat(ctx(request), node_id, body))


async def _beat(server: ServerContext, node_id: int, body: Heartbeat, linger_s: float = 0.0) -> dict[str, Any]:
    """One heartbeat applied (in the next write batch, or with others within `linger_s`) and announced:
    from `POST /agent/heartbeat`, or carried by an idle agent's long poll (`WorkAsk.heartbeat`,
    `model/heartbeat_rule.py`)."""
    answer, changes = await server.batcher.run_grouped(
        _heartbeats, nodes.Beat(node_id, body, server.settings.lost_grace, server.settings.task_max_losses),
        RANK_REPORTS, linger_s)
    server.announce(changes)
    # Live figures only, unless `changes` says more: node pages refresh, the farm summary need not.
    server.publish(quiet_nodes=[node_id])
    return answer


# In a write batch, reports (which free cores) are applied before requests for work.
RANK_REPORTS, RANK_WORK = 0, 1


# node id, the server's dispatch limits (the same for all), the cores' worth of tasks it keeps waiting
WorkItem = tuple[int, dispatch.Limits, int]


def _work_for_nodes(conn: Connection, asks: list[WorkItem]) -> list[dispatch.Answer]:
    """Requests for work queued together, answered together (see WriteBatcher.run_grouped)."""
    return dispatch.work_for_nodes(conn, [node_id for node_id, _, _ in asks], utcnow(), asks[0][1],
                                   {node_id: ahead for node_id, _, ahead in asks if ahead})


# node id, its reports, the server's task_max_losses and failure limits (the same for all)
Reports = tuple[int, list[dict[str, Any]], int, FailureLimits]


def _finish_reports(conn: Connection, batches: list[Reports]) -> list[tuple[list[dict[str, Any]], lifecycle.Changes]]:
    """Reports queued together, applied together; each caller checks its jobs after the commit."""
    return lifecycle.finish_reports(conn, [(node_id, reports) for node_id, reports, _, _ in batches], utcnow(),
                                    max_losses=batches[0][2], limits=batches[0][3])


async def _claim(server: ServerContext, node_id: int, ahead: int) -> dispatch.Answer:
    """Work for one node from the next write batch (after that batch's reports), announced and counted:
    for the long poll."""
    answer: dispatch.Answer = await server.batcher.run_grouped(_work_for_nodes, _work_item(server, node_id, ahead),
                                                               RANK_WORK)
    return _claimed(server, answer)


def _work_item(server: ServerContext, node_id: int, ahead: int) -> WorkItem:
    return node_id, server.dispatch_limits, ahead


def _claimed(server: ServerContext, answer: dispatch.Answer) -> dispatch.Answer:
    server.announce(answer.changes)
    if answer.assignments:
        server.metrics.work_answered(len(answer.assignments), answer.waits)
    return answer


def _has_news(server: ServerContext, node_id: int, ahead: int) -> bool:
    with server.db.peek() as conn:
        return dispatch.has_news(conn, node_id, server.dispatch_limits, ahead)


@router.post("/work", operation_id="ask_for_work", dependencies=[permit("node.agent")], response_model=WorkAnswer,
             summary="Long poll for work: answers as soon as there is something for this node",
             responses=error_responses(*_AUTH))
async def work(request: Request, wait: float = Query(20.0, ge=0, le=60), node_id: int = Depends(current_node_id),
               ask: WorkAsk | None = None) -> Any:
    server = ctx(request)
    deadline = time.monotonic() + min(wait, server.settings.work_wait_max_s)
    said: dict[str, Any] = {}  # a poll that carried a heartbeat is answered the node's admin state too
    ahead = ask.ahead if ask is not None else 0
    if ask is not None and ask.heartbeat is not None:
        beat = await _beat(server, node_id, ask.heartbeat, server.settings.poll_heartbeat_gather_s)
        said["admin_state"] = beat["admin_state"]
        # It says it runs what the server no longer wants: answered at once, as a heartbeat is. (Attempts
        # being killed that it does not run are lost after the grace; they must not answer every poll.)
        unwanted = sorted(set(beat["kill"]) & {r.attempt_id for r in ask.heartbeat.running})
        if unwanted:
            why = {k: v for k, v in beat.get("kill_reasons", {}).items() if k in unwanted}
            return JSONResponse({"assignments": [], "kill": unwanted, "kill_reasons": why, **said})
    notifier = server.notifier
    waiter = notifier.register(node_id, ahead)
    look_first = bool(said)  # an idle agent's poll (it carried a heartbeat) looks first, as a woken one does
    may_skip = look_first  # ... unless nothing was announced since its last fruitless look (notify.py)
    try:
        while True:
            waiter.event.clear()
            mark = notifier.news_mark(node_id)
            # A woken agent first looks in a read transaction (most wake-ups find nothing for it); one
            # that just finished a task on a busy farm goes straight to the (batched) write.
            if may_skip and not notifier.news_since_look(node_id):
                answer = dispatch.Answer()
            elif not look_first or await run_in_threadpool(_has_news, server, node_id, ahead):
                answer = await _claim(server, node_id, ahead)
            else:
                answer = dispatch.Answer()
            look_first, may_skip = True, False
            notifier.looked(node_id, None if answer.assignments or answer.kills else mark)
            if answer.assignments or answer.kills:
                server.publish(jobs={a["job_id"] for a in answer.assignments}, nodes=[node_id])
                # a plain JSONResponse skips FastAPI's generic re-encoding walk of the answer
                return JSONResponse({"assignments": answer.assignments, "kill": answer.kills,
                                     "kill_reasons": answer.kill_reasons, **said})
            if waiter.hops:
                notifier.pass_on(waiter.hops)
                waiter.hops = 0
            remaining = deadline - time.monotonic()
            if remaining <= 0 or notifier.closing:  # closing: this process is stopping
                return JSONResponse({"assignments": [], "kill": [], **said})
            try:  # woken by news for this node, by new ready tasks, or by the server's look (look_for_news)
                await asyncio.wait_for(waiter.event.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass
            if notifier.closing or await request.is_disconnected():  # nobody to hand work to
                return JSONResponse({"assignments": [], "kill": [], **said})
    finally:
        notifier.unregister(waiter)


@router.post("/goodbye", operation_id="say_goodbye", dependencies=[permit("node.agent")], response_model=Goodbye,
             summary="The agent is stopping: take no more work to this node", responses=error_responses(401, 403))
def goodbye(request: Request, node_id: int = Depends(current_node_id)) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        server.announce(nodes.goodbye(conn, node_id))
    return {"state": NodeState.DOWN}


@router.post("/attempts/{attempt_id}/log", operation_id="append_log", dependencies=[permit("node.agent")], response_model=LogAccepted,
             summary="Append to an attempt's log at a byte offset (idempotent)",
             responses=error_responses(*_AUTH, 404, s409=LogGap))
def post_log(request: Request, body: LogChunk, attempt_id: int = Path(..., ge=1, le=MAX_ID), node_id: int = Depends(current_node_id)) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        size, gap = lifecycle.append_log(conn, node_id, attempt_id, body.offset, body.data,
                                          server.settings.log_max_bytes, utcnow())
    if gap:
        return JSONResponse({"detail": f"log gap: the server has {size} bytes", "errors": [], "next_offset": size},
                            status_code=409)
    server.metrics.log_bytes.inc(len(body.data.encode("utf-8", "replace")))
    server.publish(logs=[attempt_id])
    return {"next_offset": size}


@router.post("/finish", operation_id="report_finished", dependencies=[permit("node.agent")], response_model=FinishAnswer,
             summary="Report how attempts ended (a batch; idempotent per attempt)", responses=error_responses(*_AUTH))
async def finish(request: Request, body: FinishBatch, node_id: int = Depends(current_node_id),
                 work: bool = Query(False, description="also ask for work: the answer carries what to start next "
                                                       "(protocol 1.1; the same write batch, after the reports)"),
                 ahead: int = Query(0, ge=0, le=MAX_AHEAD, description="with `work`: cores' worth of tasks the agent "
                                                                        "keeps waiting (`WorkAsk.ahead`)")) -> Any:
    server = ctx(request)
    reports = [report.model_dump() for report in body.reports]
    server.metrics.reports.inc(len(reports))
    finished = (_finish_reports, (node_id, reports, server.settings.task_max_losses, server.settings.failure_limits),
                RANK_REPORTS)
    if not work:
        results, changes = await server.batcher.run_grouped(*finished)
        server.announce(changes)
        await server.settle(changes.settle)  # did these reports complete a layer or a job?
        server.publish(attempts=[r["attempt_id"] for r in results], nodes=[node_id])
        return JSONResponse({"results": results})
    # One write batch frees the cores and hands them out again (reports rank first), and the agent hears
    # its next task before the check of the reported jobs: the freed core waits on neither.
    (results, changes), answer = await server.batcher.run_together(
        finished, (_work_for_nodes, _work_item(server, node_id, ahead), RANK_WORK))
    # The cores these reports freed were just offered to this node by that claim, with its kills: its own
    # long poll, woken too, would only look again and find nothing (other nodes are still told).
    changes.nodes.discard(node_id)
    server.announce(changes)
    _claimed(server, answer)
    server.publish(attempts=[r["attempt_id"] for r in results], nodes=[node_id],
                   jobs={a["job_id"] for a in answer.assignments})
    server.settle_soon(changes.settle)
    return JSONResponse({"results": results, "assignments": answer.assignments, "kill": answer.kills,
                         "kill_reasons": answer.kill_reasons})
