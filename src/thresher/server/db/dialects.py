"""The few writes that SQLite and PostgreSQL do differently, behind one function each.

Dispatch and lifecycle say what to write; this module says how, per database, so no other module
branches on the dialect. PostgreSQL round trips are what cost there, so its spelling is one statement
with one array per column (`queries.dispatch.CLAIM_PG`, `queries.reports.FINISH_PG`); SQLite has no
round trips to save, so it runs the plain statements. SQLite serializes writers (one write lock per
process, BEGIN IMMEDIATE), so it needs no row locks; PostgreSQL takes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from thresher.model.states import AttemptState
from thresher.server.db.queries import dispatch as qd
from thresher.server.db.queries import jobs as qj
from thresher.server.db.queries import reports as qr


def layers_settled(conn: Connection, pairs: list[tuple[int, int]]) -> list[tuple[int, int, bool, bool]]:
    """For each (job, layer) pair: whether the layer is still open and the job still busy
    (`queries.jobs.LAYER_OPEN_JOB_BUSY`); PostgreSQL asks for all pairs in one statement."""
    if not pairs:
        return []
    if takes_row_locks(conn):
        rows = conn.execute(qj.LAYERS_OPEN_JOBS_BUSY_PG, {"job_ids": [job for job, _ in pairs],
                                                         "layer_ids": [layer for _, layer in pairs]})
        return [(r.job_id, r.layer_id, bool(r.layer_open), bool(r.job_busy)) for r in rows]
    out = []
    for job_id, layer_id in pairs:
        still = conn.execute(qj.LAYER_OPEN_JOB_BUSY, {"layer_id": layer_id, "job_id": job_id}).one()
        out.append((job_id, layer_id, bool(still.layer_open), bool(still.job_busy)))
    return out


def takes_row_locks(conn: Connection) -> bool:
    """Whether writers meet through row locks (PostgreSQL) rather than one write lock (SQLite)."""
    return conn.dialect.name != "sqlite"


def pick(conn: Connection, statements: dict[str, Any]) -> Any:
    """The spelling of a per-dialect statement (`queries.common.per_dialect`) for this connection."""
    return statements[conn.dialect.name]


def lock_job(conn: Connection, job_id: int) -> None:
    """Hold the job's row lock to the end of the transaction (see `queries.jobs.LOCK_JOB`); SQLite's single
    writer holds the whole database already."""
    if takes_row_locks(conn):
        conn.execute(qj.LOCK_JOB, {"job_id": job_id})


@dataclass(frozen=True)
class NewAttempt:
    """An attempt to create for a ready task on a node (the claim of one dispatch choice)."""

    task_id: int
    job_id: int
    node_id: int
    cores: int
    memory_mb: int
    gpu_ids: list[int]
    booked: list[list[Any]] | None = None    # the usage counters it holds (`server/usage.py`)


def claim(conn: Connection, new: list[NewAttempt], now: datetime) -> dict[int, int]:
    """Create the attempts and claim their tasks with a compare-and-set on `state = 'ready'`; returns the
    attempt id of each task claimed. An attempt whose task was not claimed (not expected: the rows are
    this transaction's already) is deleted rather than trusted."""
    if not new:
        return {}
    task_ids = [n.task_id for n in new]
    if conn.dialect.name == "postgresql":
        rows = conn.execute(qd.CLAIM_PG, {
            "now": now, "task_ids": task_ids, "job_ids": [n.job_id for n in new],
            "node_ids": [n.node_id for n in new], "cores": [n.cores for n in new],
            "memory": [n.memory_mb for n in new], "gpu_ids": [json.dumps(n.gpu_ids) for n in new],
            "booked": [json.dumps(n.booked) for n in new]}).all()
        created = {r.task_id: r.id for r in rows}
        held = {r.task_id for r in rows if r.claimed}
    else:
        last = dict(conn.execute(qd.LAST_ATTEMPT_NUMBERS, {"task_ids": task_ids}).all())
        ids = conn.execute(qd.INSERT_ATTEMPTS, [
            {"task_id": n.task_id, "job_id": n.job_id, "number": (last.get(n.task_id) or 0) + 1,
             "node_id": n.node_id, "state": AttemptState.RUNNING, "cores": n.cores, "memory_mb": n.memory_mb,
             "gpu_ids": n.gpu_ids, "started_at": now, "log_size": 0, "booked": n.booked}
            for n in new]).scalars().all()
        created = dict(zip(task_ids, ids, strict=True))
        count = conn.execute(qd.CLAIM_TASK, [{"b_task_id": n.task_id, "b_attempt_id": created[n.task_id],
                                              "b_node_id": n.node_id, "b_now": now} for n in new]).rowcount
        held = set(task_ids) if count == len(new) else {r.id for r in conn.execute(
            qd.CLAIMED_BY, {"task_ids": task_ids, "attempt_ids": list(created.values())})}
    lost = [created[t] for t in task_ids if t not in held]
    if lost:  # somebody else took one between our read and our write
        conn.execute(qd.DELETE_ATTEMPTS, {"attempt_ids": lost})
    return {t: created[t] for t in task_ids if t in held}


def write_outcomes(conn: Connection, ended: list[dict[str, Any]], succeeded: list[dict[str, Any]]) -> None:
    """A batch of reports' common outcomes: the attempts that ended (`queries.reports.END_ATTEMPT`'s
    parameters) and the tasks that succeeded (`TASK_SUCCEEDED`'s)."""
    if not ended and not succeeded:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(qr.FINISH_PG, {
            "now": (ended or succeeded)[0]["b_now"], "ids": [e["b_id"] for e in ended],
            "states": [e["b_state"] for e in ended], "reasons": [e["b_reason"] for e in ended],
            "exit_codes": [e["b_exit_code"] for e in ended], "cpu_s": [_float(e["b_cpu_s"]) for e in ended],
            "peak_rss_mb": [_float(e["b_peak_rss_mb"]) for e in ended],
            "out_of_memory": [bool(e["b_out_of_memory"]) for e in ended],
            "started_ats": [e["b_started_at"] for e in ended],
            "task_ids": [t["b_task_id"] for t in succeeded], "attempt_ids": [t["b_attempt_id"] for t in succeeded],
            "task_started_ats": [t["b_started_at"] for t in succeeded]})
        return
    if ended:
        conn.execute(qr.END_ATTEMPT, ended)
    if succeeded:
        conn.execute(qr.TASK_SUCCEEDED, succeeded)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
