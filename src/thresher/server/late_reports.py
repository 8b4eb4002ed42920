"""Reports that arrive after their attempt was declared lost (a partition longer than the node timeout).

`lifecycle.finish_reports` sets them aside and calls `apply` after the batch's own outcomes are written,
so that a re-run whose success came in the same batch has already won. The decision is
`model/late_report.py`; here the task is read as it is now, a kept success is written with a
compare-and-set on what was read, and the re-run it makes needless is told to stop (its node woken).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from thresher.model.late_report import late_report
from thresher.model.states import AttemptState, TaskState
from thresher.server.db.queries import reports as qr


class Woken(Protocol):
    """What a report batch's caller announces (`lifecycle.Changes`)."""

    nodes: set[int]
    settle: set[tuple[int, int]]


def apply(conn: Connection, row: Any, facts: dict[str, Any], status: str, changes: Woken, now: datetime) -> bool:
    """One late report of the lost attempt `row` (a row of `queries.reports.ATTEMPTS_WITH_TASKS`) with the
    attempt's end `facts` (`END_ATTEMPT`'s parameters): the attempt is recorded, and a success kept when
    the rule allows. Returns whether the task succeeded with it."""
    task = conn.execute(qr.TASK_NOW, {"b_task_id": row.task_id}).one()
    verdict = late_report(status, row.reason, TaskState(task.state),
                          current_attempt_is_other=task.attempt_id != row.id)
    kept = verdict.accept and conn.execute(qr.TASK_LATE_SUCCESS, {
        "b_task_id": row.task_id, "b_seen_state": task.state, "b_seen_attempt": task.attempt_id,
        "b_attempt_id": row.id, "b_now": now}).rowcount == 1
    note = verdict.note if kept or not verdict.accept else \
        f"{row.reason or 'lost'}; it succeeded later, but its task had moved on meanwhile"
    if kept:
        changes.settle.add((row.job_id, row.layer_id))  # the layer or the job may be complete now
        if verdict.stop_current:
            stopped = conn.execute(qr.STOP_RERUN, {"b_attempt_id": task.attempt_id, "b_reason":
                                                   f"stopped: attempt {row.id} of this task succeeded after all"}).first()
            if stopped is not None:
                changes.nodes.add(stopped.node_id)
    conn.execute(qr.END_ATTEMPT, {**facts, "b_state": AttemptState.SUCCEEDED if kept else AttemptState.LOST,
                                  "b_reason": note})
    return kept
