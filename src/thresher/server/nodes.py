"""Nodes' lives on the server: registration, heartbeats, goodbye, and being declared down.

A heartbeat is the agent's view of what it runs; the server's view is its live attempts. The two are
reconciled here: an attempt the agent no longer mentions (past a grace period) is lost and its task
requeued, one the agent runs but the server does not want is killed. Every function runs inside the
caller's write transaction and returns what changed, for the caller to announce after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, Sequence

from sqlalchemy import Connection

from thresher.model.enrollment import registration_pool
from thresher.model.node_claim import Claim, KnownNode, claim_name
from thresher.model.states import AttemptState, NodeAdminState, NodeState
from thresher.server import auth, enrollment, lifecycle, studio
from thresher.server.auth import Caller
from thresher.server.clock import as_utc
from thresher.server.db import dialects
from thresher.server.db.batcher import in_rounds
from thresher.server.db.queries import nodes as q
from thresher.server.errors import Conflict, Forbidden
from thresher.server.lifecycle import Changes


class RunningReport(Protocol):
    """One attempt an agent says it runs, with its live figures."""

    attempt_id: int
    cpu_s: float | None
    rss_mb: float | None
    progress: float | None


class HeartbeatReport(Protocol):
    """What an agent's heartbeat says (the wire model `thresher.wire.agent.Heartbeat`)."""

    cpu_percent: float | None
    memory_used_mb: int | None
    load: float | None

    @property
    def running(self) -> Sequence[RunningReport]: ...

    @property
    def pending_reports(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class Beat:
    """One heartbeat to apply: the node, what its agent sent, how long an attempt the agent does not
    mention may stay live (a report may still be on its way), and the server's loss limit."""

    node_id: int
    report: HeartbeatReport
    lost_grace_s: float
    max_losses: int = lifecycle.MAX_LOSSES  # losses that fail a task (`lifecycle.lost_again`)


def heartbeats(conn: Connection, beats: list[Beat], now: datetime) -> list[tuple[dict[str, Any], Changes]]:
    """Heartbeats queued together (see WriteBatcher.run_grouped): record that the nodes are alive and
    what they run, and reconcile both views of their attempts, in a handful of statements for all.
    Each gets `{"kill": [...], "admin_state": ...}` and what it changed. A node that beats twice in
    one batch is handled in a second round, as if it came after."""
    return in_rounds(beats, lambda beat: beat.node_id, lambda round_: _heartbeat_round(conn, round_, now))


def _heartbeat_round(conn: Connection, beats: list[Beat], now: datetime) -> list[tuple[dict[str, Any], Changes]]:
    node_ids = [beat.node_id for beat in beats]
    before = {r.id: r for r in conn.execute(dialects.pick(conn, q.NODES_STATES), {"node_ids": node_ids})}
    conn.execute(q.NODE_SEEN, [{"b_node_id": b.node_id, "b_now": now, "b_cpu_percent": b.report.cpu_percent,
                                "b_memory_used_mb": b.report.memory_used_mb, "b_load": b.report.load}
                               for b in beats])
    live_by_node: dict[int, list[Any]] = {node_id: [] for node_id in node_ids}
    for row in conn.execute(dialects.pick(conn, q.LIVE_ON_NODES), {"node_ids": node_ids}):
        live_by_node[row.node_id].append(row)
    progress: list[dict[str, Any]] = []
    usage: list[dict[str, Any]] = []
    out = []
    for beat in beats:
        reported = {r.attempt_id: r for r in beat.report.running}
        known = set(reported) | set(beat.report.pending_reports)
        live = live_by_node[beat.node_id]
        grace = now - timedelta(seconds=beat.lost_grace_s)
        forgotten = [a.id for a in live if a.id not in known and as_utc(a.started_at) < grace]  # type: ignore[operator]
        changes = lifecycle.lose_attempts(conn, forgotten, "the agent no longer runs it", now,
                                          max_losses=beat.max_losses) if forgotten else Changes()
        live_ids = {a.id for a in live} - set(forgotten)
        progress += [{"b_attempt_id": a, "b_progress": r.progress} for a, r in reported.items()
                     if a in live_ids and r.progress is not None]
        usage += [{"b_attempt_id": a, "b_cpu_s": r.cpu_s, "b_rss_mb": r.rss_mb or 0} for a, r in reported.items()
                  if a in live_ids and (r.cpu_s is not None or r.rss_mb is not None)]
        killing = {a.id for a in live if a.state == AttemptState.KILLING and a.id not in forgotten}
        unwanted = {a for a in reported if a not in live_ids}
        node = before.get(beat.node_id)
        if node is not None and node.state != NodeState.UP:
            changes.nodes.add(beat.node_id)  # back from down: it may take work again, the farm summary changed
        why = {a.id: a.reason for a in live if a.id in killing and a.reason}  # "job killed by ana"
        out.append(({"kill": sorted(killing | unwanted), **({"kill_reasons": why} if why else {}),
                     "admin_state": node.admin_state if node else None}, changes))
    if progress:
        conn.execute(q.TASK_PROGRESS, progress)
    if usage:  # live figures; the final ones come with the report
        conn.execute(dialects.pick(conn, q.ATTEMPT_USAGE), usage)
    return out


def declare_down(conn: Connection, cutoff: datetime, now: datetime,
                 max_losses: int = lifecycle.MAX_LOSSES) -> tuple[int, Changes]:
    """Nodes up but silent since before `cutoff` go down; their live attempts are lost (their tasks go
    back to ready without counting a try). Returns how many went down and what changed."""
    stale = conn.execute(q.SILENT_NODES, {"cutoff": cutoff}).all()
    changes = Changes()
    for node in stale:
        conn.execute(q.SET_NODE_STATE, {"node_id": node.id, "b_state": NodeState.DOWN})
        live = list(conn.execute(q.LIVE_ON_NODE, {"node_id": node.id}).scalars())
        changes.merge(lifecycle.lose_attempts(conn, live, f"node {node.name} stopped answering", now,
                                              max_losses=max_losses))
    return len(stale), changes


def set_admin_state(conn: Connection, node_id: int, state: NodeAdminState, now: datetime,
                    max_losses: int = lifecycle.MAX_LOSSES) -> tuple[int, list[int], Changes]:
    """A person enables, drains or disables a node. A draining node finishes what it runs and takes
    nothing new; a disabled one gives its work back at once (its live attempts are lost, their tasks
    ready again without a try counted). Returns the node, the attempts given back and what changed."""
    conn.execute(q.SET_ADMIN_STATE, {"node_id": node_id, "b_admin_state": state})
    if state != NodeAdminState.DISABLED:
        return node_id, [], Changes()
    live = list(conn.execute(q.LIVE_ON_NODE, {"node_id": node_id}).scalars())
    return node_id, live, lifecycle.lose_attempts(conn, live, "node disabled", now, max_losses=max_losses)


def goodbye(conn: Connection, node_id: int) -> Changes:
    """The agent is stopping: the node is down, and takes no more work."""
    conn.execute(q.SET_NODE_STATE, {"node_id": node_id, "b_state": NodeState.DOWN})
    return Changes(nodes={node_id})


class NodeFacts(Protocol):
    """What an agent tells of its node when it registers (the wire model `thresher.wire.agent.Registration`)."""

    name: str
    hostname: str
    os: str
    cores: int
    memory_mb: int
    apps: dict[str, str]
    instance_id: str
    mac: str | None
    pool: str | None
    replace: bool  # an admin gives this agent a known node's name (`model/node_claim.py`)

    @property
    def gpus(self) -> Sequence[Any]: ...

    @property
    def tags(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class NodeRegistered:
    node_id: int
    name: str
    token: str
    tokens_replaced: bool  # the node's earlier credential was revoked (cached lookups must be dropped)


def register(conn: Connection, caller: Caller, secret: str, facts: NodeFacts, now: datetime,
             node_timeout_s: float) -> NodeRegistered:
    """An agent registers its node. With its own node token it only refreshes the node's facts; with
    an enrolment (or admin) token it creates the node, or has a known node's name only as
    `model/node_claim.py` allows (a removed node returning, an admin's `replace`, the same agent asking
    again for a credential it never received); otherwise 409 (or 403) saying how the name can be had.
    A node whose name is taken over keeps its id and history; its earlier credential is revoked."""
    values = dict(hostname=facts.hostname or facts.name, os=facts.os, cores=facts.cores, memory_mb=facts.memory_mb,
                  gpus=[g.model_dump() for g in facts.gpus], tags=sorted(set(facts.tags)), apps=facts.apps,
                  instance_id=facts.instance_id, mac=facts.mac, state=NodeState.UP, last_seen=now,
                  removed_at=None)  # a removed node enrolling again is back (`server/retention.remove_node`)
    pool = registration_pool(caller.kind, caller.pool, facts.pool)  # the enrollment token's pool wins
    if pool is not None:
        studio.ensure_pool(conn, pool)
        values["pool"] = pool
    if caller.kind == "node" and caller.node_id is not None:
        conn.execute(q.UPDATE_NODE, {"node_id": caller.node_id, **values})
        node = conn.execute(q.NODE_NAME, {"node_id": caller.node_id}).one()
        return NodeRegistered(node.id, node.name, secret, tokens_replaced=False)
    if caller.kind not in ("enroll", "admin"):
        raise Forbidden(f"a {caller.kind} token cannot register nodes")
    existing = conn.execute(q.NODE_BY_NAME, {"name": facts.name}).first()
    verdict = claim_name(caller.kind, facts.name, _known(existing, facts, now, node_timeout_s),
                         replace=facts.replace)
    if verdict.claim is None:
        raise (Forbidden if verdict.status == 403 else Conflict)(verdict.reason)
    # one use of the enrollment token (a reissue, the same agent asking again, is not a new one)
    if caller.kind == "enroll":
        enrollment.consume(conn, caller, now, reissue=verdict.claim == Claim.REISSUE)
    # registered_at: when the node's current credential was issued (`KnownNode.credential_used` reads it)
    if existing is not None:
        conn.execute(q.UPDATE_NODE, {"node_id": existing.id, "registered_at": now, **values})
        conn.execute(q.REVOKE_NODE_TOKENS, {"node_id": existing.id})
        node_id = existing.id
    else:
        node_id = conn.execute(q.INSERT_NODE.returning(q.INSERT_NODE.table.c.id), {
            "name": facts.name, "admin_state": NodeAdminState.ENABLED, "registered_at": now,
            "pool": studio.DEFAULT_POOL, **values}).scalar_one()
    token = auth.create_token(conn, "node", facts.name, node_id, pool=caller.pool if caller.kind == "enroll" else None)
    return NodeRegistered(node_id, facts.name, token, tokens_replaced=existing is not None)


def _known(existing: Any, facts: NodeFacts, now: datetime, node_timeout_s: float) -> KnownNode | None:
    """The facts `claim_name` weighs of the node that has the name (None: no node has it)."""
    if existing is None:
        return None
    seen, issued = as_utc(existing.last_seen), as_utc(existing.registered_at)
    return KnownNode(name=existing.name, removed=existing.removed_at is not None,
                     live=_is_live(existing, now, node_timeout_s), same_instance=existing.instance_id == facts.instance_id,
                     credential_used=seen is not None and issued is not None and seen > issued)


def _is_live(node: Any, now: datetime, node_timeout_s: float) -> bool:
    seen = as_utc(node.last_seen)
    return node.state == NodeState.UP and seen is not None and (now - seen).total_seconds() < node_timeout_s


def set_tags(conn: Connection, node_id: int, tags: Sequence[str]) -> None:
    """A wrangler's tags for a node (`PATCH /nodes/{name}`). The rule: they hold through heartbeats (which
    never carry tags) until the agent registers again (a restart), which states its configured tags; the
    nodes table keeps one list (no migration for a second), so a lasting change goes in the agent's config
    too (`--tag`, `tags = [...]`)."""
    conn.execute(q.SET_NODE_TAGS, {"b_node_id": node_id, "b_tags": sorted(set(tags))})
