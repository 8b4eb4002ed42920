"""The one place that decides which ready task runs on which node.

The rule, readable in two parts:
1. `candidate_query`: ready tasks whose tag set the node carries and whose needs fit what the node
   has free, in dispatch order: highest job priority first, then submission order (job id), then
   frame order (task id). On PostgreSQL the rows are locked with SKIP LOCKED so several server
   processes never hand out the same task.
2. `choose`: walk those candidates and take every one that still fits, so a 32-core node receives
   four 8-core tasks in one answer; GPUs are given out by index.
The claim itself is a compare-and-set (`state = 'ready'` in the UPDATE), so a task has at most one
live attempt whatever races happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, func, insert, select, update

from thresher.model.frames import Chunk
from thresher.model.states import LIVE_ATTEMPT_STATES, AttemptState, JobState, NodeAdminState, NodeState, TaskState
from thresher.server.db.tables import attempts, jobs, layers, nodes, tag_sets, tasks
from thresher.model.paths import PathRule
from thresher.templates import get_template
from thresher.templates.base import Target

CANDIDATES = 64


@dataclass
class Free:
    """What a node has free right now."""

    cores: int
    memory_mb: int
    gpu_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    task_id: int
    job_id: int
    layer_id: int
    cores: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    gpu_ids: list[int]


def choose(candidates: Sequence[Candidate], free: Free) -> list[Choice]:
    """Take candidates in order while they fit; pure, so it is tested without a database."""
    cores, memory, gpus = free.cores, free.memory_mb, list(free.gpu_ids)
    chosen = []
    for c in candidates:
        if c.cores <= cores and c.memory_mb <= memory and c.gpus <= len(gpus):
            given, gpus = gpus[:c.gpus], gpus[c.gpus:]
            cores -= c.cores
            memory -= c.memory_mb
            chosen.append(Choice(c, given))
            if cores <= 0:
                break
    return chosen


def usable_tag_keys(all_keys: Sequence[str], node_tags: Sequence[str]) -> list[str]:
    have = set(node_tags)
    return [key for key in all_keys if set(filter(None, key.split(","))) <= have]


def node_free(conn: Connection, node: Any) -> Free:
    used = conn.execute(select(attempts.c.cores, attempts.c.memory_mb, attempts.c.gpu_ids)
                        .where(attempts.c.node_id == node.id, attempts.c.state.in_(LIVE_ATTEMPT_STATES))).all()
    busy_gpus = {g for row in used for g in (row.gpu_ids or [])}
    all_gpus = [int(g["index"]) for g in (node.gpus or [])]
    return Free(cores=node.cores - sum(r.cores for r in used),
                memory_mb=node.memory_mb - sum(r.memory_mb for r in used),
                gpu_ids=[g for g in all_gpus if g not in busy_gpus])


def candidate_query(tag_keys: list[str], free: Free, limit: int, lock: bool):  # type: ignore[no-untyped-def]
    query = (select(tasks.c.id, tasks.c.job_id, tasks.c.layer_id, tasks.c.cores, tasks.c.memory_mb, tasks.c.gpus)
             .where(tasks.c.state == TaskState.READY.value, tasks.c.tag_key.in_(tag_keys),
                    tasks.c.cores <= free.cores, tasks.c.memory_mb <= free.memory_mb,
                    tasks.c.gpus <= len(free.gpu_ids))
             .order_by(tasks.c.priority.desc(), tasks.c.job_id, tasks.c.id)
             .limit(limit))
    if lock:
        query = query.with_for_update(skip_locked=True, of=tasks)
    return query


def may_take_work(node: Any) -> bool:
    return node.state == NodeState.UP.value and node.admin_state == NodeAdminState.ENABLED.value


def find_candidates(conn: Connection, node: Any, *, lock: bool) -> tuple[Free, list[Candidate]]:
    if not may_take_work(node):
        return Free(0, 0), []
    free = node_free(conn, node)
    if free.cores < 1:
        return free, []
    keys = usable_tag_keys([r.key for r in conn.execute(select(tag_sets.c.key))], node.tags or [])
    if not keys:
        return free, []
    rows = conn.execute(candidate_query(keys, free, CANDIDATES, lock)).all()
    return free, [Candidate(r.id, r.job_id, r.layer_id, r.cores, r.memory_mb, r.gpus) for r in rows]


def assign(conn: Connection, node: Any, now: datetime, lock: bool) -> list[dict[str, Any]]:
    """Claim work for a node inside the caller's write transaction; returns the assignments."""
    free, candidates = find_candidates(conn, node, lock=lock)
    assignments = []
    layer_cache: dict[int, Any] = {}
    started_jobs: set[int] = set()
    for choice in choose(candidates, free):
        c = choice.candidate
        number = select(func.coalesce(func.max(attempts.c.number), 0) + 1).where(
            attempts.c.task_id == c.task_id).scalar_subquery()
        attempt_id = conn.execute(insert(attempts).values(
            task_id=c.task_id, job_id=c.job_id, number=number, node_id=node.id,
            state=AttemptState.RUNNING.value, cores=c.cores, memory_mb=c.memory_mb, gpu_ids=choice.gpu_ids,
            started_at=now, log_size=0)).inserted_primary_key[0]
        claimed = conn.execute(update(tasks).where(tasks.c.id == c.task_id, tasks.c.state == TaskState.READY.value)
                               .values(state=TaskState.RUNNING.value, attempt_id=attempt_id, node_id=node.id,
                                       started_at=now, ended_at=None, progress=0.0)).rowcount
        if claimed != 1:  # somebody else took it between our read and our write
            conn.execute(attempts.delete().where(attempts.c.id == attempt_id))
            continue
        started_jobs.add(c.job_id)
        try:
            assignments.append(_assignment(conn, node, attempt_id, c, choice.gpu_ids, layer_cache))
        except Exception as exc:  # a template that cannot build this task: fail the attempt, never the farm
            from thresher.server.lifecycle import finish_attempt

            finish_attempt(conn, node.id, {"attempt_id": attempt_id, "status": "failed", "exit_code": None,
                                           "reason": f"cannot build the command: {exc}", "log_size": 0}, now)
    if started_jobs:
        conn.execute(update(jobs).where(jobs.c.id.in_(started_jobs), jobs.c.state != JobState.RUNNING.value,
                                        jobs.c.killed.is_(False))
                     .values(state=JobState.RUNNING.value))
    return assignments


def _assignment(conn: Connection, node: Any, attempt_id: int, c: Candidate, gpu_ids: list[int],
                layer_cache: dict[int, Any]) -> dict[str, Any]:
    """The assignment of one claimed task, its command built for this node: paths mapped for its OS,
    executables it declared, the task's tile or wedge value."""
    if c.layer_id not in layer_cache:
        row = conn.execute(
            select(layers, jobs.c.name.label("job_name"), jobs.c.path_mapping.label("path_mapping"))
            .join(jobs, jobs.c.id == layers.c.job_id).where(layers.c.id == c.layer_id)).first()
        template = get_template(row.template)
        rules = [PathRule.model_validate(rule) for rule in (row.path_mapping or [])]
        layer_cache[c.layer_id] = (row, template, template.parse_args(row.args), rules)
    layer, template, args, rules = layer_cache[c.layer_id]
    task = conn.execute(select(tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end,
                               tasks.c.frame_step, tasks.c.frame_count, tasks.c.part)
                        .where(tasks.c.id == c.task_id)).first()
    chunk = Chunk(task.idx, task.frames, task.frame_start, task.frame_end, task.frame_step, task.frame_count,
                  task.part or None)
    line = template.build(args, chunk, Target(os=node.os, apps=dict(node.apps or {})), rules)
    return {
        "attempt_id": attempt_id, "task_id": c.task_id, "job_id": c.job_id, "job_name": layer.job_name,
        "layer": layer.name, "frames": chunk.frames, "argv": line.argv, "shell": line.shell,
        "env": {**(layer.env or {}), **line.env}, "cwd": layer.cwd, "timeout_s": layer.timeout,
        "gpus": gpu_ids, "outputs": line.outputs, "progress_patterns": line.progress_patterns,
        "error_patterns": line.error_patterns,
    }


def kill_list(conn: Connection, node_id: int) -> list[int]:
    """Attempts on this node the server wants stopped."""
    return [r.id for r in conn.execute(select(attempts.c.id).where(
        attempts.c.node_id == node_id, attempts.c.state == AttemptState.KILLING.value))]


def load_node(conn: Connection, node_id: int) -> Any:
    return conn.execute(select(nodes).where(nodes.c.id == node_id)).first()


def has_candidates(conn: Connection, node_id: int) -> bool:
    """Read-only check used before opening a write transaction: is there anything to hand out?"""
    node = load_node(conn, node_id)
    if node is None:
        return False
    _, candidates = find_candidates(conn, node, lock=False)
    return bool(candidates)


