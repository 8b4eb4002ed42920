"""**The** rule for a person's action on a job, a layer or a task that would do nothing: refused, with a
reason that names the state it met ("job 12 already failed: nothing to kill").

A wrangler who kills a failed job, pauses a finished one, resumes one that is not paused, or marks a
finished one urgent or moves it to another folder should hear that nothing happened and why, not get a
200 that looks like success (the API answers 409 with the reason; the dashboard's toasts and the CLI
print it, one refusal per line). Pure: the caller reads the facts (the job's derived state and pause,
the task counts by state) and asks here before it writes.
`tests/unit/test_steering_rule.py` spells out the table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Mapping

from thresher.model.states import FINAL_JOB_STATES, JobState, TaskState


class Action(StrEnum):
    KILL = "kill"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    SKIP = "skip"
    URGENT = "urgent"  # marked urgent (taking the mark off is never refused)
    MOVE = "move"  # to another folder of its project


# Tasks an action can still change: kill and skip end them; a pause parks the ready ones (and those
# freed later); retry brings back the ended ones that did not succeed.
OPEN_TASK_STATES = frozenset({TaskState.WAITING, TaskState.HELD, TaskState.READY, TaskState.PAUSED,
                              TaskState.RUNNING})
RETRYABLE_TASK_STATES = frozenset({TaskState.FAILED, TaskState.KILLED})
# A task retried by name runs again from scratch: one that ended (a succeeded one renders again).
ENDED_TASK_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.KILLED, TaskState.SKIPPED})


def _has(counts: Mapping[str, int], states: frozenset[TaskState]) -> bool:
    return any(counts.get(state, 0) > 0 for state in states)


def _is(subject: str, state: str) -> str:
    """"job 12 already failed" for a final state, "job 12 is running" otherwise."""
    return f"{subject} already {state}" if state in FINAL_JOB_STATES or state in ENDED_TASK_STATES \
        else f"{subject} is {state}"


def job_refusal(action: Action, job_id: int, state: JobState, *, paused: bool,
                counts: Mapping[str, int], archived: bool = False) -> str | None:
    """Why `action` on the whole job would do nothing (None: it does something). `state` is the job's
    derived state, `paused` whether a person (or its failure limit) paused it, `counts` its tasks by state,
    `archived` whether its tasks were deleted by an archive (then nothing is left to act on: "job 45 was
    archived", not "job 45 already failed: no failed or killed tasks to retry", which reads as a job
    that failed with no failed task). A retry that names tasks is judged task by task (`task_refusal`)."""
    subject = f"job {job_id}"
    if archived and action != Action.SKIP:
        return f"{subject} was archived: its tasks were deleted, nothing to {_ORDERING.get(action, action.value)}"
    if action == Action.KILL and not _has(counts, OPEN_TASK_STATES):
        return f"{_is(subject, state)}: nothing to kill"
    if action == Action.PAUSE:
        if state in FINAL_JOB_STATES:
            return f"{_is(subject, state)}: nothing to pause"
        if paused:
            return f"{subject} is already paused"
    if action == Action.RESUME and not paused:
        return f"{_is(subject, state)}, not paused: nothing to resume"
    if action == Action.RETRY and not _has(counts, RETRYABLE_TASK_STATES):
        return f"{_is(subject, state)}: no failed or killed tasks to retry"
    if action == Action.SKIP:
        return f"{subject}: skip acts on a layer or a task"
    if action in _ORDERING and state in FINAL_JOB_STATES:  # both only reorder tasks still to start
        return f"{_is(subject, state)}: nothing to {_ORDERING[action]}"
    return None


# Actions that only change where the job's tasks still to start stand in the order: a finished job has none
# (a retry brings them back, and then they may be asked again).
_ORDERING = {Action.URGENT: "make urgent", Action.MOVE: "move"}


def layer_refusal(action: Action, job_id: int, layer: str, *, paused: bool, job_paused: bool,
                  counts: Mapping[str, int]) -> str | None:
    """Why `action` on one layer would do nothing. `paused` is the layer's own pause (a person paused it
    one by one), `job_paused` the job's, `counts` the layer's tasks by state. A layer whose tasks all
    still wait (on dependencies or scouts) can be paused: what is freed later waits paused."""
    subject = f"layer {layer} of job {job_id}"
    if action in (Action.KILL, Action.SKIP, Action.PAUSE) and not _has(counts, OPEN_TASK_STATES):
        done = next((state for state in (TaskState.FAILED, TaskState.KILLED) if counts.get(state, 0)), "succeeded")
        return f"{subject} already {done}: nothing to {action}"
    if action == Action.PAUSE and paused:
        return f"{subject} is already paused"
    if action == Action.RESUME:
        if job_paused:
            return f"job {job_id} is paused; resume the job"
        if not paused:
            return f"{subject} is not paused: nothing to resume"
    if action == Action.RETRY and not _has(counts, RETRYABLE_TASK_STATES):
        return f"{subject} has no failed or killed tasks to retry"
    return None


def task_refusal(action: Action, task_id: int, state: TaskState) -> str | None:
    """Why `action` on one task would do nothing (or may not be done now: a running task is not retried)."""
    subject = f"task {task_id}"
    if action in (Action.KILL, Action.SKIP) and state not in OPEN_TASK_STATES:
        if action == Action.SKIP and state in (TaskState.FAILED, TaskState.KILLED):
            return None  # marked done by hand: its dependents may start
        return f"{_is(subject, state)}: nothing to {action}"
    if action == Action.RETRY:
        if state == TaskState.RUNNING:
            return f"{subject} is running; kill it first or wait for it to end"
        if state not in ENDED_TASK_STATES:
            return f"{subject} is {state}: it is still to run, nothing to retry"
    if action in (Action.PAUSE, Action.RESUME):
        return f"{subject}: {action} acts on its job or its layer"
    return None


JOB_ACTIONS = (Action.KILL, Action.PAUSE, Action.RESUME, Action.RETRY)


def job_actions(job_id: int, state: JobState, *, paused: bool, counts: Mapping[str, int],
                urgent: bool, archived: bool = False) -> frozenset[str]:
    """The actions the job page offers: those `job_refusal` lets through, so that no button answers "job 12
    already failed: nothing to pause"; and "urgent" while the job may still run (a failed one runs nothing
    until a retry) or is urgent (to take it back). An archived job's counts are those it kept: none."""
    can = {a.value for a in JOB_ACTIONS
           if job_refusal(a, job_id, state, paused=paused, counts=counts, archived=archived) is None}
    marked = job_refusal(Action.URGENT, job_id, state, paused=paused, counts=counts, archived=archived) is None
    if urgent or (marked and Action.KILL.value in can):
        can.add(Action.URGENT.value)
    return frozenset(can)
