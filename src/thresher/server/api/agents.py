"""Routes for agents: register, heartbeat, ask for work (long poll), stream logs, report results.

An agent acts only for the node its token belongs to: no route takes a node id from the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import delete, insert, select, update

from thresher.model.spec import MAX_ID
from thresher.model.states import LIVE_ATTEMPT_STATES, AttemptState, NodeAdminState, NodeState
from thresher.server import auth, dispatch, lifecycle
from thresher.server.auth import Caller
from thresher.server.clock import as_utc, utcnow
from thresher.server.context import ServerContext, bearer_secret, ctx, current_caller, require_node
from thresher.server.db import queries as q
from thresher.server.db.batcher import in_rounds
from thresher.server.db.tables import attempts, nodes, tokens
from thresher.server.errors import Conflict, Forbidden
from thresher.wire.agent import (
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
)
from thresher.wire.common import error_responses

router = APIRouter(prefix="/agent", tags=["agent"])

# Every agent call needs a token (401) of the right kind (403) and checks what it is sent (422).
_AUTH = (401, 403, 422)


def _node_is_live(node: Any, server: ServerContext) -> bool:
    seen = as_utc(node.last_seen)
    return node.state == NodeState.UP.value and seen is not None and \
        (utcnow() - seen).total_seconds() < server.settings.node_timeout_s


@router.post("/register", operation_id="register_node", response_model=Registered,
             summary="Register a node (enrolment token), or refresh its facts (its own token)",
             responses=error_responses(*_AUTH, 409))
def register(request: Request, body: Registration, caller: Caller = Depends(current_caller),
             secret: str = Depends(bearer_secret)) -> Any:
    server = ctx(request)
    now = utcnow()
    facts = dict(hostname=body.hostname or body.name, os=body.os, cores=body.cores, memory_mb=body.memory_mb,
                 gpus=[g.model_dump() for g in body.gpus], tags=sorted(set(body.tags)), apps=body.apps,
                 instance_id=body.instance_id,
                 state=NodeState.UP.value, last_seen=now)
    with server.db.write() as conn:
        if caller.kind == "node":
            conn.execute(update(nodes).where(nodes.c.id == caller.node_id).values(**facts))
            node = conn.execute(select(nodes.c.id, nodes.c.name).where(nodes.c.id == caller.node_id)).first()
            return {"node_id": node.id, "name": node.name, "token": secret,
                    "node_timeout_s": server.settings.node_timeout_s}
        if caller.kind not in ("enroll", "admin"):
            raise Forbidden(f"a {caller.kind} token cannot register nodes")
        existing = conn.execute(select(nodes).where(nodes.c.name == body.name)).first()
        if existing is not None:
            if existing.instance_id != body.instance_id and _node_is_live(existing, server):
                raise Conflict(f"node name {body.name!r} is in use by another live agent (a cloned machine?); "
                               "give this agent another --name")
            conn.execute(update(nodes).where(nodes.c.id == existing.id).values(**facts))
            conn.execute(delete(tokens).where(tokens.c.node_id == existing.id))
            server.forget_tokens()
            node_id = existing.id
        else:
            node_id = conn.execute(insert(nodes).values(name=body.name, admin_state=NodeAdminState.ENABLED.value,
                                                        registered_at=now, **facts)).inserted_primary_key[0]
        token = auth.create_token(conn, "node", body.name, node_id)
    server.notifier.tasks_ready(1)
    server.publish(nodes=[node_id])
    return {"node_id": node_id, "name": body.name, "token": token, "node_timeout_s": server.settings.node_timeout_s}


HeartbeatItem = tuple[int, Heartbeat, float]  # node id, what it sent, the server's lost_grace_s


def _heartbeats(conn: Any, items: list[HeartbeatItem]) -> list[tuple[dict[str, Any], lifecycle.Changes]]:
    """Heartbeats queued together (see WriteBatcher.run_grouped): record that the nodes are alive and
    what they run, and reconcile both views of their attempts, in a handful of statements for all.
    A node that beats twice in one batch is handled in a second round, as if it came after."""
    return in_rounds(items, lambda item: item[0], lambda round_: _heartbeat_round(conn, round_))


def _heartbeat_round(conn: Any, items: list[HeartbeatItem]) -> list[tuple[dict[str, Any], lifecycle.Changes]]:
    now = utcnow()
    dialect = conn.dialect.name
    node_ids = [node_id for node_id, _, _ in items]
    before = {r.id: r for r in conn.execute(q.NODES_STATES[dialect], {"node_ids": node_ids})}
    conn.execute(q.NODE_SEEN, [{"b_node_id": node_id, "b_now": now, "b_cpu_percent": body.cpu_percent,
                                "b_memory_used_mb": body.memory_used_mb, "b_load": body.load}
                               for node_id, body, _ in items])
    live_by_node: dict[int, list[Any]] = {node_id: [] for node_id in node_ids}
    for row in conn.execute(q.LIVE_ON_NODES[dialect], {"node_ids": node_ids}):
        live_by_node[row.node_id].append(row)
    progress: list[dict[str, Any]] = []
    usage: list[dict[str, Any]] = []
    out = []
    for node_id, body, lost_grace_s in items:
        reported = {r.attempt_id: r for r in body.running}
        known = set(reported) | set(body.pending_reports)
        live = live_by_node[node_id]
        grace = now - timedelta(seconds=lost_grace_s)
        forgotten = [a.id for a in live if a.id not in known and as_utc(a.started_at) < grace]
        changes = lifecycle.lose_attempts(conn, forgotten, "the agent no longer runs it", now) \
            if forgotten else lifecycle.Changes()
        live_ids = {a.id for a in live} - set(forgotten)
        progress += [{"b_attempt_id": a, "b_progress": r.progress} for a, r in reported.items()
                     if a in live_ids and r.progress is not None]
        usage += [{"b_attempt_id": a, "b_cpu_s": r.cpu_s, "b_rss_mb": r.rss_mb or 0} for a, r in reported.items()
                  if a in live_ids and (r.cpu_s is not None or r.rss_mb is not None)]
        killing = {a.id for a in live if a.state == AttemptState.KILLING.value and a.id not in forgotten}
        unwanted = {a for a in reported if a not in live_ids}
        node = before.get(node_id)
        if node is not None and node.state != NodeState.UP.value:
            changes.nodes.add(node_id)  # back from down: it may take work again, the farm summary changed
        out.append(({"kill": sorted(killing | unwanted), "admin_state": node.admin_state if node else None}, changes))
    if progress:
        conn.execute(q.TASK_PROGRESS, progress)
    if usage:  # live figures; the final ones come with the report
        conn.execute(q.ATTEMPT_USAGE[dialect], usage)
    return out


@router.post("/heartbeat", operation_id="heartbeat", response_model=HeartbeatAnswer,
             summary="The node is alive: its load and what it runs; answered with what to kill",
             responses=error_responses(*_AUTH))
async def heartbeat(request: Request, body: Heartbeat, caller: Caller = Depends(require_node)) -> Any:
    server = ctx(request)
    node_id = caller.node_id
    answer, changes = await server.batcher.run_grouped(_heartbeats, (node_id, body, server.settings.lost_grace_s),
                                                       RANK_REPORTS)
    server.announce(changes)
    # Live figures only, unless `changes` says more: node pages refresh, the farm summary need not.
    server.publish(quiet_nodes=[node_id])
    return JSONResponse(answer)


# In a write batch, reports (which free cores) are applied before requests for work.
RANK_REPORTS, RANK_WORK = 0, 1


def _work_for_nodes(conn: Any, node_ids: list[int]) -> list[dispatch.Answer]:
    """Requests for work queued together, answered together (see WriteBatcher.run_grouped)."""
    return dispatch.work_for_nodes(conn, node_ids, utcnow(), lock=conn.dialect.name != "sqlite")


def _finish_reports(conn: Any, batches: list[tuple[int, list[dict[str, Any]]]]) -> list[tuple[list[dict[str, Any]], lifecycle.Changes]]:
    """Reports queued together, applied together; each caller checks its jobs after the commit."""
    return lifecycle.finish_reports(conn, batches, utcnow())


def _has_news(server: ServerContext, node_id: int) -> bool:
    with server.db.peek() as conn:
        return dispatch.has_news(conn, node_id)


@router.post("/work", operation_id="ask_for_work", response_model=WorkAnswer,
             summary="Long poll for work: answers as soon as there is something for this node",
             responses=error_responses(*_AUTH))
async def work(request: Request, wait: float = Query(20.0, ge=0, le=60), caller: Caller = Depends(require_node)) -> Any:
    server = ctx(request)
    node_id = caller.node_id
    assert node_id is not None
    deadline = time.monotonic() + min(wait, server.settings.max_wait_s)
    waiter = server.notifier.register(node_id)
    look_first = False
    try:
        while True:
            waiter.event.clear()
            # A woken agent first looks in a read transaction (most wake-ups find nothing for it); one
            # that just finished a task on a busy farm goes straight to the (batched) write.
            if not look_first or await run_in_threadpool(_has_news, server, node_id):
                assignments, kills = await server.batcher.run_grouped(_work_for_nodes, node_id, RANK_WORK)
            else:
                assignments, kills = [], []
            look_first = True
            if assignments or kills:
                server.publish(jobs={a["job_id"] for a in assignments}, nodes=[node_id])
                # a plain JSONResponse skips FastAPI's generic re-encoding walk of the answer
                return JSONResponse({"assignments": assignments, "kill": kills})
            if waiter.hops:
                server.notifier.pass_on(waiter.hops)
                waiter.hops = 0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return JSONResponse({"assignments": [], "kill": []})
            try:  # woken by news for this node, by new ready tasks, or by the server's look (look_for_news)
                await asyncio.wait_for(waiter.event.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass
            if await request.is_disconnected():  # nobody to hand work to
                return JSONResponse({"assignments": [], "kill": []})
    finally:
        server.notifier.unregister(waiter)


# Nodes looked at per statement by `look_for_news` (an id list that any database takes).
NEWS_CHUNK = 1000


async def look_for_news(server: ServerContext) -> int:
    """Wake every waiting agent for which work or a kill is there that no wake-up announced (another
    server process made it, or a wake was missed): one read for up to NEWS_CHUNK waiting nodes, instead
    of each long poll looking for itself. Returns how many were woken."""
    idle = server.notifier.idle_nodes()
    woken = 0
    for start in range(0, len(idle), NEWS_CHUNK):
        chunk = idle[start:start + NEWS_CHUNK]

        def read(ids: list[int] = chunk) -> set[int]:
            with server.db.peek() as conn:
                return dispatch.nodes_with_news(conn, ids)

        for node_id in await run_in_threadpool(read):
            server.notifier.node_changed(node_id)
            woken += 1
    return woken


@router.post("/goodbye", operation_id="say_goodbye", response_model=Goodbye,
             summary="The agent is stopping: take no more work to this node", responses=error_responses(401, 403))
def goodbye(request: Request, caller: Caller = Depends(require_node)) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        conn.execute(update(nodes).where(nodes.c.id == caller.node_id).values(state=NodeState.DOWN.value))
    server.notifier.node_changed(caller.node_id)
    return {"state": NodeState.DOWN.value}


@router.post("/attempts/{attempt_id}/log", operation_id="append_log", response_model=LogAccepted,
             summary="Append to an attempt's log at a byte offset (idempotent)",
             responses=error_responses(*_AUTH, 404, s409=LogGap))
def post_log(request: Request, body: LogChunk, attempt_id: int = Path(..., ge=1, le=MAX_ID), caller: Caller = Depends(require_node)) -> Any:
    server = ctx(request)
    with server.db.write() as conn:
        size, gap = lifecycle.append_log(conn, caller.node_id, attempt_id, body.offset, body.data)
    if gap:
        return JSONResponse({"detail": f"log gap: the server has {size} bytes", "errors": [], "next_offset": size},
                            status_code=409)
    server.publish(logs=[attempt_id])
    return {"next_offset": size}


@router.post("/finish", operation_id="report_finished", response_model=FinishAnswer,
             summary="Report how attempts ended (a batch; idempotent per attempt)", responses=error_responses(*_AUTH))
async def finish(request: Request, body: FinishBatch, caller: Caller = Depends(require_node)) -> Any:
    server = ctx(request)
    node_id = caller.node_id
    reports = [report.model_dump() for report in body.reports]
    results, changes = await server.batcher.run_grouped(_finish_reports, (node_id, reports), RANK_REPORTS)
    server.announce(changes)
    await server.settle(changes.settle)  # did these reports complete a layer or a job?
    server.publish(attempts=[r["attempt_id"] for r in results], nodes=[node_id])
    return JSONResponse({"results": results})


def declare_down_nodes(server: ServerContext) -> int:
    """Nodes silent for longer than the timeout go down; their running tasks go back to ready."""
    now = utcnow()
    # After a server restart every node gets a full timeout to show up again.
    startup = now - timedelta(seconds=time.time() - server.started_at)
    cutoff = now - timedelta(seconds=server.settings.node_timeout_s)
    if startup > cutoff:
        return 0
    with server.db.write() as conn:
        stale = conn.execute(select(nodes.c.id, nodes.c.name).where(
            nodes.c.state == NodeState.UP.value, nodes.c.last_seen < cutoff)).all()
        changes = lifecycle.Changes()
        for node in stale:
            conn.execute(update(nodes).where(nodes.c.id == node.id).values(state=NodeState.DOWN.value))
            live = [r.id for r in conn.execute(select(attempts.c.id).where(
                attempts.c.node_id == node.id, attempts.c.state.in_(LIVE_ATTEMPT_STATES)))]
            changes.merge(lifecycle.lose_attempts(conn, live, f"node {node.name} stopped answering", now))
    server.announce(changes)
    return len(stale)
