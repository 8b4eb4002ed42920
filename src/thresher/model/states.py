"""The states of tasks, attempts, jobs and nodes, and how a job's state follows from its tasks."""

from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class TaskState(StrEnum):
    WAITING = "waiting"      # dependencies not met yet
    HELD = "held"            # held back until its layer's scout frames succeed or a person releases it
    READY = "ready"          # may be dispatched
    RUNNING = "running"      # has a live attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"        # out of retries
    PAUSED = "paused"        # would be ready, but its job is paused
    KILLED = "killed"
    SKIPPED = "skipped"      # marked done by hand


TASK_STATES = list(TaskState)
# Counted as done: what depends on a layer may start once all its tasks are.
DONE_TASK_STATES = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})


class AttemptState(StrEnum):
    RUNNING = "running"
    KILLING = "killing"      # the server asked the agent to stop it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"            # the node went away or gave it up; not counted as a try


# Attempts that hold resources on their node (at most one per task).
LIVE_ATTEMPT_STATES = (AttemptState.RUNNING, AttemptState.KILLING)


class JobState(StrEnum):
    WAITING = "waiting"
    BLOCKED = "blocked"      # waits for a dependency that failed or was killed: nothing runs until it is retried
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"


FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED})
# Where a job's pause (`jobs.paused`: a person's, or its failure limit's) still holds work back. A paused
# job whose tasks still run reads "running (paused)", yet it is what a wrangler paused: a job list's
# `state=paused` finds it in these states too (`queries/views._job_filters`); a finished job's pause no
# longer matters.
PAUSE_HOLDS_STATES = frozenset(JobState) - FINAL_JOB_STATES


class NodeState(StrEnum):
    UP = "up"
    DOWN = "down"


class NodeAdminState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DRAINING = "draining"   # finishes what it runs, takes nothing new


def freed_state(*, job_paused: bool, layer_paused: bool) -> TaskState:
    """Where a task goes once nothing holds it back (its dependencies met, its scouts done, a failed try
    to run again, a lost attempt requeued): ready, or paused while a person has paused its job or its
    layer. Pausing means nothing new starts, whenever the task became free. A layer's own pause is
    `layers.paused` (`server/layer_pause.py`)."""
    return TaskState.PAUSED if job_paused or layer_paused else TaskState.READY


def job_state_from_counts(counts: Mapping[str, int], *, paused: bool, killed: bool,
                          blocked: bool = False) -> JobState:
    """A job's state is derived from its tasks' states (and whether a person paused or killed it), never
    counted separately. The first rule that matches decides (`tests/unit/test_states.py` spells out the
    table):

    1. a task runs: running;
    2. killed, and nothing left that could still run: killed;
    3. paused, with tasks held back by the pause (or waiting): paused;
    4. tasks ready: running if some already ended, else queued;
    5. tasks failed (or killed): failed (killed if only killed ones);
    6. tasks waiting on a dependency that failed or was killed (`blocked`, see
       `model.dependencies`): blocked, not final (a retried dependency releases it) yet never waited for;
    7. tasks waiting on dependencies, held behind their layer's scout frames (`model.scouts`), or
       paused: waiting (a job whose scouts rendered and whose other tasks wait for a person to release
       them is waiting, not succeeded; with a failed scout rule 5 says failed, and the held tasks stay);
    8. otherwise every task is done: succeeded.
    """
    def has(state: TaskState) -> bool:
        return counts.get(state, 0) > 0

    if has(TaskState.RUNNING):
        return JobState.RUNNING
    if killed and not (has(TaskState.READY) or has(TaskState.WAITING) or has(TaskState.PAUSED)
                       or has(TaskState.HELD)):
        return JobState.KILLED
    if paused and (has(TaskState.PAUSED) or has(TaskState.WAITING) or has(TaskState.HELD)):
        return JobState.PAUSED
    if has(TaskState.READY):
        started = has(TaskState.SUCCEEDED) or has(TaskState.FAILED) or has(TaskState.SKIPPED)
        return JobState.RUNNING if started else JobState.QUEUED
    if has(TaskState.FAILED):
        return JobState.FAILED
    if has(TaskState.KILLED):
        return JobState.KILLED
    if blocked and has(TaskState.WAITING):
        return JobState.BLOCKED
    if has(TaskState.WAITING) or has(TaskState.PAUSED) or has(TaskState.HELD):
        return JobState.WAITING
    return JobState.SUCCEEDED


def layer_state(counts: Mapping[str, int], *, paused: bool) -> JobState:
    """A layer's state: the job's rule over the layer's own task counts, never stored. `paused` is the
    layer's own pause (`layers.paused`); tasks its job's pause parked make it paused too. A layer is
    never killed as a whole: its killed tasks say `killed` as the job's rule says. The job's layer rows
    and a dependency on the layer (`server/dependencies.view`) both show this, so they never disagree."""
    return job_state_from_counts(counts, paused=paused or bool(counts.get(TaskState.PAUSED)), killed=False)
