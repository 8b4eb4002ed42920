"""Statements of failures (`server/failures.py`): a job's blocklist of nodes, its count of failed attempts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from thresher.model.states import TaskState
from thresher.server.db.tables import jobs, node_failures, nodes, tasks


def _record_failure(insert: Any) -> Any:
    new = insert(node_failures).values(job_id=bindparam("b_job_id"), node_id=bindparam("b_node_id"), failures=1,
                                       blocked=bindparam("b_blocked_at_once"), last_failed_at=bindparam("b_now"))
    return new.on_conflict_do_update(index_elements=[node_failures.c.job_id, node_failures.c.node_id], set_={
        "failures": node_failures.c.failures + 1,
        "blocked": or_(node_failures.c.blocked, node_failures.c.failures + 1 >= bindparam("b_after")),
        "last_failed_at": bindparam("b_now")})


# A node failed one more attempt of a job: count it, and blocklist the node once it reached `:b_after`.
RECORD_NODE_FAILURE = {"sqlite": _record_failure(sqlite_insert), "postgresql": _record_failure(pg_insert)}

# A job failed one more attempt: count it; answers the count and the job's own limit (none: the server's).
COUNT_JOB_FAILURE = (update(jobs).where(jobs.c.id == bindparam("b_job_id"))
                     .values(failures=jobs.c.failures + 1)
                     .returning(jobs.c.failures, jobs.c.max_failures, jobs.c.stop_reason))

# A job past its failure limit starts nothing new: paused, with the reason (kept from the first time).
STOP_JOB = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(
    paused=True, stop_reason=bindparam("b_reason"))

# A job past its failure limit: its ready tasks are held back (the tasks retried since it stopped too).
HOLD_READY_TASKS = update(tasks).where(tasks.c.job_id == bindparam("b_job_id"),
                                       tasks.c.state == TaskState.READY).values(state=TaskState.PAUSED)

# A person retried or resumed a job: its failure count starts again, the reason it stopped is gone.
RESET_JOB_FAILURES = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(failures=0, stop_reason=None)

# A job's blocklist: every node that failed its attempts, with how often and whether it is blocked.
JOB_BLOCKLIST = (select(node_failures.c.node_id, nodes.c.name.label("node"), node_failures.c.failures,
                        node_failures.c.blocked, node_failures.c.last_failed_at)
                 .join(nodes, nodes.c.id == node_failures.c.node_id)
                 .where(node_failures.c.job_id == bindparam("job_id")).order_by(nodes.c.name))

# A job's blocklist is cleared: its nodes may take its tasks again, their failures forgotten.
CLEAR_BLOCKLIST = delete(node_failures).where(node_failures.c.job_id == bindparam("job_id"))

# One node comes off a job's blocklist.
CLEAR_NODE = delete(node_failures).where(node_failures.c.job_id == bindparam("job_id"),
                                         node_failures.c.node_id == bindparam("node_id"))
