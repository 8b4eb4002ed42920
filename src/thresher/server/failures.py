"""Failures that stop costing the farm: a job's blocklist of nodes, and a job's limit of failed attempts.

A node that fails a job's attempts again and again (a missing plugin, a bad driver, a full disk) would
otherwise take one of its tasks after another and fail each; once it failed `blocklist_after` of them
(the layer's own figure, else the server's) it is on the job's blocklist and dispatch gives it none of
the job's tasks (`queries.dispatch.BLOCKED_JOBS`). A job that fails everywhere (a broken scene) would
otherwise burn the farm until every task ran out of retries; past `max_failures` failed attempts (the
job's own, else the server's) it starts nothing new: paused, with a reason a person reads, until they
fix and retry or resume it. Only failed attempts count: a lost attempt is the node's going away
(`lifecycle.lost_again`), a killed one a person's doing.

Every function runs inside the caller's write transaction, as `lifecycle` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from thresher.model.states import AttemptState
from thresher.server.db import dialects
from thresher.server.db.queries import dispatch as qd
from thresher.server.db.queries import failures as q
from thresher.server.db.queries import steering as qs
from thresher.server.errors import NotFound
from thresher.wire.jobs import Blocklist, BlocklistEntry

# Failed attempts of a job on one node that blocklist the node (the server's `blocklist_after`).
BLOCKLIST_AFTER = 3

# Failed attempts of a job after which it starts nothing new (the server's `job_max_failures`).
JOB_MAX_FAILURES = 100


@dataclass(frozen=True)
class FailureLimits:
    """The server's figures, for layers and jobs that do not name their own."""

    blocklist_after: int = BLOCKLIST_AFTER
    job_max_failures: int = JOB_MAX_FAILURES


DEFAULT_LIMITS = FailureLimits()


def stop_reason(failures: int, limit: int) -> str:
    return f"stopped after {failures} failed attempts (the job's limit is {limit}): fix and retry or resume"


def attempt_ended(conn: Connection, row: Any, state: AttemptState, now: datetime, limits: FailureLimits) -> None:
    """An attempt of a running task ended in `state` (`row`: `queries.reports.ATTEMPTS_WITH_TASKS`). A failed
    one counts against its node on the job's blocklist and against the job's failure limit; a job past
    its limit is stopped: paused and its ready tasks held back, as `lifecycle.pause_job` does (the job's
    state follows when its running tasks end)."""
    if state != AttemptState.FAILED:
        return
    after = row.blocklist_after or limits.blocklist_after
    conn.execute(dialects.pick(conn, q.RECORD_NODE_FAILURE), {
        "b_job_id": row.job_id, "b_node_id": row.node_id, "b_blocked_at_once": after <= 1, "b_after": after,
        "b_now": now})
    job = conn.execute(q.COUNT_JOB_FAILURE, {"b_job_id": row.job_id}).one()
    limit = job.max_failures or limits.job_max_failures
    if job.failures <= limit:
        return
    if job.stop_reason is None:
        conn.execute(q.STOP_JOB, {"b_job_id": row.job_id, "b_reason": stop_reason(job.failures, limit)})
    conn.execute(q.HOLD_READY_TASKS, {"b_job_id": row.job_id})


def restart(conn: Connection, job: Any) -> int:
    """A person retries or resumes the job (`job`: its row): its failures count from zero again, and a job
    the limit stopped is no longer paused (its held tasks ready again). Returns how many became ready."""
    conn.execute(q.RESET_JOB_FAILURES, {"b_job_id": job.id})
    if job.stop_reason is None:
        return 0
    conn.execute(qs.SET_JOB_PAUSED, {"job_id": job.id, "b_paused": False})
    return int(conn.execute(qs.RESUME_JOB_TASKS, {"b_job_id": job.id}).rowcount)  # layers paused by themselves stay


def job_blocklist(conn: Connection, job_id: int) -> Blocklist:
    """A job's blocklist as `GET /jobs/{id}/blocklist` answers it; 404 for no such job."""
    if conn.execute(qs.JOB, {"job_id": job_id}).first() is None:
        raise NotFound(f"no job with id {job_id}")
    return Blocklist(job_id=job_id, items=blocklist(conn, job_id))


def blocklist(conn: Connection, job_id: int) -> list[BlocklistEntry]:
    """The nodes that failed this job's attempts, by name: how often, and whether they are blocked."""
    return [BlocklistEntry(node_id=r.node_id, node=r.node, failures=r.failures, blocked=bool(r.blocked),
                           last_failed_at=r.last_failed_at)
            for r in conn.execute(q.JOB_BLOCKLIST, {"job_id": job_id})]


def blocked_by(conn: Connection, node_ids: list[int]) -> dict[int, list[int]]:
    """For each of these nodes, the jobs whose blocklist keeps it from their tasks (the statement dispatch
    reads, `queries.dispatch.BLOCKED_JOBS`), by job id."""
    out: dict[int, list[int]] = {node_id: [] for node_id in node_ids}
    if node_ids:
        for r in conn.execute(dialects.pick(conn, qd.BLOCKED_JOBS), {"node_ids": node_ids}):
            out[r.node_id].append(r.job_id)
    return {node_id: sorted(jobs) for node_id, jobs in out.items()}


def clear(conn: Connection, job_id: int, node_id: int | None = None, node_name: str = "") -> set[int]:
    """Take one node (or every node) off the job's blocklist: it may take the job's tasks again, its
    failures there forgotten. Returns the nodes set free, for the caller to wake after the commit (the
    job may have work for them). A node not on the list is a 404, so a typo does not pass for done."""
    listed = job_blocklist(conn, job_id).items
    if node_id is None:
        conn.execute(q.CLEAR_BLOCKLIST, {"job_id": job_id})
    elif conn.execute(q.CLEAR_NODE, {"job_id": job_id, "node_id": node_id}).rowcount == 0:
        raise NotFound(f"node {node_name or node_id} is not on job {job_id}'s blocklist")
    return {e.node_id for e in listed if e.blocked and node_id in (None, e.node_id)}
