"""The rule for a report that arrives after its attempt was declared lost: is finished work kept?

An attempt is lost when its node stops answering for longer than the node timeout, or its agent no
longer mentions it; its task goes back to ready (or fails, lost too often) and may run elsewhere. But a
node cut off by the network keeps working, and its agent spools each report until the server answers
(rule 2), so after a long partition the server hears of work that really finished. Throwing it away
would run every such task again.

1. Only a success is worth keeping; a late failure or kill is only noted on the attempt.
2. A late success is accepted when its task has not succeeded since (rule 1: a task succeeds at most
   once) and nobody ended it by hand: the task is ready, waiting, paused, running again elsewhere, or
   failed (lost too often, or its re-run failed). The task succeeds with this attempt; a re-run of it
   in progress is told to stop (`stop_current`).
3. A task that succeeded meanwhile (its re-run finished first), or that a person killed or skipped,
   keeps what it has: the late success is only noted.

The caller applies an accepted one with a compare-and-set on the task's state and current attempt as it
saw them, so a success that lands in between still wins and this one is only noted.
"""

from __future__ import annotations

from dataclasses import dataclass

from thresher.model.states import AttemptState, TaskState

#: Task states a late success may end: nothing succeeded, and no person ended the task.
OPEN_TO_LATE_SUCCESS = frozenset({TaskState.READY, TaskState.WAITING, TaskState.PAUSED, TaskState.RUNNING,
                                  TaskState.FAILED})


@dataclass(frozen=True)
class LateVerdict:
    """What becomes of a late report: the task succeeds with it (`accept`, and then `stop_current` says
    whether the task's live re-run must stop), or it is only noted; `note` is the attempt's reason."""

    accept: bool
    stop_current: bool
    note: str


def late_report(reported: str, lost_reason: str | None, task_state: TaskState, *, current_attempt_is_other: bool,
                ) -> LateVerdict:
    """What to do with a report of `reported` status for an attempt already declared lost (for
    `lost_reason`) whose task is now in `task_state` (`current_attempt_is_other`: the task's attempt is
    another one, a re-run). See the module for the rule."""
    lost = lost_reason or "lost"
    if reported != AttemptState.SUCCEEDED:
        return LateVerdict(False, False, f"{lost}; the agent later reported it {reported}")
    if task_state == TaskState.SUCCEEDED:
        return LateVerdict(False, False, f"{lost}; it succeeded later, but its task had succeeded meanwhile")
    if task_state not in OPEN_TO_LATE_SUCCESS:
        return LateVerdict(False, False, f"{lost}; it succeeded later, but its task was {task_state} by then")
    stop = task_state == TaskState.RUNNING and current_attempt_is_other
    return LateVerdict(True, stop, f"{lost}; it succeeded later and its success was kept"
                                   + (" (the re-run was stopped)" if stop else ""))
