"""The states of tasks, attempts, jobs and nodes, and how a job's state follows from its tasks."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    WAITING = "waiting"      # dependencies not met yet
    READY = "ready"          # may be dispatched
    RUNNING = "running"      # has a live attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"        # out of retries
    PAUSED = "paused"        # would be ready, but its job is paused
    KILLED = "killed"
    SKIPPED = "skipped"      # marked done by hand


TASK_STATES = [s.value for s in TaskState]
DONE_TASK_STATES = {TaskState.SUCCEEDED.value, TaskState.SKIPPED.value}
FINAL_TASK_STATES = DONE_TASK_STATES | {TaskState.FAILED.value, TaskState.KILLED.value}


class AttemptState(StrEnum):
    RUNNING = "running"
    KILLING = "killing"      # the server asked the agent to stop it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"            # the node went away or gave it up; not counted as a try


LIVE_ATTEMPT_STATES = (AttemptState.RUNNING.value, AttemptState.KILLING.value)


class JobState(StrEnum):
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"


FINAL_JOB_STATES = {JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.KILLED.value}


class NodeState(StrEnum):
    UP = "up"
    DOWN = "down"


class NodeAdminState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DRAINING = "draining"   # finishes what it runs, takes nothing new


def job_state_from_counts(counts: dict[str, int], *, paused: bool, killed: bool) -> str:
    """A job's state is derived from its tasks' states, never counted separately."""
    get = lambda state: counts.get(state, 0)  # noqa: E731
    if get("running"):
        return JobState.RUNNING.value
    if killed and not get("ready") and not get("waiting") and not get("paused"):
        return JobState.KILLED.value
    if paused and (get("paused") or get("waiting")):
        return JobState.PAUSED.value
    if get("ready"):
        return JobState.RUNNING.value if (get("succeeded") or get("failed") or get("skipped")) else JobState.QUEUED.value
    if get("failed") or get("killed"):
        return JobState.FAILED.value if get("failed") else JobState.KILLED.value
    if get("waiting") or get("paused"):
        return JobState.WAITING.value
    return JobState.SUCCEEDED.value
