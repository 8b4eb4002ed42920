"""Why a job, or a layer's ready and waiting tasks, are not running now: in words a wrangler reads
("licence nuke 20/20 in use", "waiting for layer render"), never a database to query.

The reasons come from the same rules that decide: `model.dependencies` (what a waiting layer waits
for, or what failed dependency blocks it: "blocked: job 12 layer render failed"), `model.fit` (could a node up now run it at all?),
the job's blocklist, and `model.dispatch_rule.refusal` (which cap, burst cap, folder maximum or licence
would a start exceed?), against the usage counters as they are. A layer whose tasks are allowed
everywhere they fit is waiting for a node with room: the farm is busy.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection

from thresher.model import dispatch_rule as rule
from thresher.model.fit import Needs, fits, gpu_indices, node_free
from thresher.model.states import DONE_TASK_STATES, FINAL_JOB_STATES, JobState, NodeAdminState, NodeState, TaskState
from thresher.server import dependencies, scouts, studio, usage
from thresher.server.db.queries import why as q


def pending_reasons(conn: Connection, job: Any, layers: Sequence[Any], counts: dict[int, dict[str, int]],
                    ) -> tuple[str | None, dict[int, str]]:
    """(why the job runs nothing, if it runs nothing; why each layer's not-running tasks wait). A job
    that ended (failed, say, by another layer) may still hold tasks: held behind scout frames
    (`server/scouts.py`), or waiting on a dependency that failed. Their layers say why with the same
    words as while it ran ("blocked: layer a failed"), and the job's line is the first of them; a
    failed job's layers hold no ready tasks, so only those reasons can apply."""
    scouted = any(counts.get(layer.id, {}).get(TaskState.HELD) for layer in layers)
    held_by_scouts = scouts.reasons(conn, job.id) if scouted else {}
    by_layer: dict[int, str] = {}
    farm: _Farm | None = None
    waiting = [layer.id for layer in layers if counts.get(layer.id, {}).get(TaskState.WAITING)
               and not counts.get(layer.id, {}).get(TaskState.READY) and not counts.get(layer.id, {}).get(TaskState.PAUSED)]
    held = dependencies.layer_reasons(conn, job.id, waiting) if waiting else {}
    for layer in layers:
        mine = counts.get(layer.id, {})
        if mine.get(TaskState.READY):
            farm = farm or _Farm.read(conn, job)
            by_layer[layer.id] = farm.why_not(job, layer)
        elif mine.get(TaskState.PAUSED) and job.paused:
            by_layer[layer.id] = job.stop_reason or "the job is paused"
        elif getattr(layer, "paused", False) and (mine.get(TaskState.PAUSED) or mine.get(TaskState.WAITING)
                                                  or mine.get(TaskState.HELD)):
            by_layer[layer.id] = "the layer is paused: resume it"
        elif mine.get(TaskState.PAUSED):
            by_layer[layer.id] = job.stop_reason or "the job is paused"
        elif mine.get(TaskState.WAITING):
            by_layer[layer.id] = held.get(layer.id) or "waiting for its dependencies"
        elif layer.id in held_by_scouts:
            by_layer[layer.id] = held_by_scouts[layer.id]
    if job.state == JobState.RUNNING:
        return None, by_layer
    if job.paused and job.state not in FINAL_JOB_STATES:
        return job.stop_reason or "the job is paused", by_layer
    blocked = [reason for reason in by_layer.values() if reason.startswith("blocked:")]
    return next(iter(blocked or by_layer.values()), None), by_layer


def _done(counts: dict[str, int]) -> bool:
    return all(state in DONE_TASK_STATES for state, n in counts.items() if n)


class _Farm:
    """What the reasons weigh, read once per job: the nodes, the job's blocklist, policy and usage."""

    def __init__(self, nodes: list[Any], blocked: set[int], policy: rule.Policy, now: rule.Usage) -> None:
        self.nodes, self.blocked, self.policy, self.usage = nodes, blocked, policy, now

    @classmethod
    def read(cls, conn: Connection, job: Any) -> _Farm:
        nodes = list(conn.execute(q.NODES))
        blocked = set(conn.execute(q.BLOCKED_NODES_OF_JOB, {"job_id": job.id}).scalars())
        policy = studio.read_policy(conn, [job.project_id])
        keys = [rule.project_key(job.project_id)] + [rule.stake_key(job.project_id, n.pool) for n in nodes]
        keys += [rule.folder_key(job.folder_id)] if job.folder_id is not None else []
        keys += [rule.limit_usage_key(name) for name in policy.limits]
        return cls(nodes, blocked, policy, usage.read(conn, keys, lock=False))

    def why_not(self, job: Any, layer: Any) -> str:
        needs = Needs(layer.cores, layer.memory_mb, layer.gpus, frozenset(layer.tags or ()), frozenset(layer.pools or ()))
        able = [n for n in self.nodes
                if fits(needs, node_free(n.cores, n.memory_mb, gpu_indices(n.gpus), ()), frozenset(n.tags or ()), n.pool)]
        where = _placement(needs)
        if not able:
            return f"no node{where} is large enough (needs {needs.cores} cores, {needs.memory_mb} MB, {needs.gpus} GPUs)" \
                if any(_placed(needs, n) for n in self.nodes) else f"no registered node{where}"
        up = [n for n in able if n.state == NodeState.UP and n.admin_state == NodeAdminState.ENABLED]
        if not up:
            return f"no node that can run it is up and enabled ({', '.join(sorted(n.name for n in able)[:5])} cannot take work)"
        allowed = [n for n in up if n.id not in self.blocked]
        if not allowed:
            return "every node that could run it has it blocklisted (" + ", ".join(sorted(n.name for n in up)[:5]) + ")"
        candidate = rule.Candidate(0, job.id, layer.id, needs, project_id=job.project_id, folder_id=job.folder_id,
                                   limits=tuple(sorted((layer.limits or {}).items())), urgent=bool(job.urgent))
        refusals = {n.pool: rule.refusal(candidate, n.pool, self.usage, self.policy) for n in allowed}
        if all(refusals.values()):
            return "; ".join(sorted({reason for reason in refusals.values() if reason}))
        return "waiting for a node with room (every node that can run it is busy)"


def _placement(needs: Needs) -> str:
    parts = ([f"with tags {', '.join(sorted(needs.tags))}"] if needs.tags else []) + \
            ([f"in pool {', '.join(sorted(needs.pools))}"] if needs.pools else [])
    return (" " + " ".join(parts)) if parts else ""


def _placed(needs: Needs, node: Any) -> bool:
    return needs.tags <= frozenset(node.tags or ()) and (not needs.pools or node.pool in needs.pools)
