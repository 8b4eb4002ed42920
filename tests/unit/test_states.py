"""A job's state follows from its tasks' states: the whole table of `job_state_from_counts`."""

from __future__ import annotations

import pytest

from thresher.model.states import JobState, TaskState, freed_state, job_state_from_counts, layer_state

W, R, RUN, OK, F, P, K, S = (TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.SUCCEEDED,
                             TaskState.FAILED, TaskState.PAUSED, TaskState.KILLED, TaskState.SKIPPED)
H = TaskState.HELD

CASES = [
    # tasks by state,        paused, killed, job state
    ({RUN: 1, R: 5},         False,  False,  JobState.RUNNING),    # a task runs
    ({RUN: 1, K: 3},         False,  True,   JobState.RUNNING),    # killed, but one still runs (its kill is asked)
    ({RUN: 1, P: 3},         True,   False,  JobState.RUNNING),    # paused, one still finishing
    ({K: 4},                 False,  True,   JobState.KILLED),
    ({K: 2, OK: 2},          False,  True,   JobState.KILLED),
    ({F: 1, K: 3},           False,  True,   JobState.KILLED),     # a person's kill outranks a failure
    ({P: 4},                 True,   False,  JobState.PAUSED),
    ({W: 2, OK: 2},          True,   False,  JobState.PAUSED),     # paused with work still to come
    ({OK: 4},                True,   False,  JobState.SUCCEEDED),  # paused after everything was done
    ({R: 4},                 False,  False,  JobState.QUEUED),     # nothing started yet
    ({R: 2, OK: 2},          False,  False,  JobState.RUNNING),    # started, between two tasks
    ({R: 2, F: 1},           False,  False,  JobState.RUNNING),
    ({R: 2, S: 1},           False,  False,  JobState.RUNNING),
    ({R: 2, W: 2},           False,  False,  JobState.QUEUED),
    ({F: 1, OK: 3},          False,  False,  JobState.FAILED),
    ({F: 1, K: 1},           False,  False,  JobState.FAILED),
    ({K: 1, OK: 3},          False,  False,  JobState.KILLED),     # a task killed by hand, the job not
    ({F: 1, W: 3},           False,  False,  JobState.FAILED),     # what waits on the failure cannot run
    ({W: 4},                 False,  False,  JobState.WAITING),
    ({W: 2, OK: 2},          False,  False,  JobState.WAITING),
    ({P: 2},                 False,  False,  JobState.WAITING),    # resumed: paused tasks not yet released
    ({OK: 3, S: 1},          False,  False,  JobState.SUCCEEDED),
    ({S: 4},                 False,  False,  JobState.SUCCEEDED),
    ({},                     False,  False,  JobState.SUCCEEDED),
    # held behind scout frames (`model.scouts`)
    ({R: 3, H: 97},          False,  False,  JobState.QUEUED),     # the scouts wait for a node
    ({RUN: 1, H: 97},        False,  False,  JobState.RUNNING),
    ({OK: 3, H: 97},         False,  False,  JobState.WAITING),    # scouts done, waiting for a person to release
    ({F: 1, OK: 2, H: 97},   False,  False,  JobState.FAILED),     # a failed scout: the rest stays held
    ({R: 3, H: 97},          True,   False,  JobState.PAUSED),
    ({OK: 3, H: 97},         True,   False,  JobState.PAUSED),
    ({H: 97},                False,  True,   JobState.WAITING),    # killed with held tasks still to kill
]


BLOCKED_CASES = [
    # tasks by state, blocked by a failed dependency, job state
    ({W: 4},          True,  JobState.BLOCKED),   # everything waits on what failed
    ({W: 2, OK: 2},   True,  JobState.BLOCKED),   # its own work done, the rest held by the failure
    ({R: 1, W: 2},    True,  JobState.QUEUED),    # still has work it can do
    ({RUN: 1, W: 2},  True,  JobState.RUNNING),
    ({F: 1, W: 2},    True,  JobState.FAILED),    # its own failure is the news
    ({OK: 4},         True,  JobState.SUCCEEDED),  # nothing waits any more
    ({W: 4},          False, JobState.WAITING),
]


@pytest.mark.parametrize(("counts", "blocked", "expected"), BLOCKED_CASES)
def test_a_job_waiting_on_a_failed_dependency_is_blocked(counts: dict[str, int], blocked: bool,
                                                         expected: JobState) -> None:
    assert job_state_from_counts(counts, paused=False, killed=False, blocked=blocked) is expected


def test_a_paused_or_killed_job_is_not_called_blocked() -> None:
    assert job_state_from_counts({W: 2}, paused=True, killed=False, blocked=True) is JobState.PAUSED
    assert job_state_from_counts({K: 2}, paused=False, killed=True, blocked=True) is JobState.KILLED


@pytest.mark.parametrize(("counts", "paused", "killed", "expected"), CASES)
def test_job_state_from_task_counts(counts: dict[str, int], paused: bool, killed: bool, expected: JobState) -> None:
    assert job_state_from_counts(counts, paused=paused, killed=killed) is expected


def test_counts_read_from_the_database_are_plain_strings() -> None:
    assert job_state_from_counts({"running": 1}, paused=False, killed=False) is JobState.RUNNING
    assert job_state_from_counts({"ready": 1, "succeeded": 1}, paused=False, killed=False) is JobState.RUNNING


@pytest.mark.parametrize(("job_paused", "layer_paused", "state"), [
    (False, False, TaskState.READY), (True, False, TaskState.PAUSED), (False, True, TaskState.PAUSED),
    (True, True, TaskState.PAUSED)])
def test_a_task_freed_in_a_paused_job_or_layer_waits_paused(job_paused: bool, layer_paused: bool,
                                                             state: TaskState) -> None:
    assert freed_state(job_paused=job_paused, layer_paused=layer_paused) == state


def test_a_layers_state_is_its_own_tasks_not_its_jobs() -> None:
    """What the job's layer rows and a dependency on the layer show: a layer that succeeded reads
    succeeded in a failed job; tasks its job's pause parked, or its own pause, read paused."""
    assert layer_state({OK: 2}, paused=False) is JobState.SUCCEEDED
    assert layer_state({F: 1}, paused=False) is JobState.FAILED
    assert layer_state({P: 2, OK: 1}, paused=False) is JobState.PAUSED
    assert layer_state({W: 2}, paused=True) is JobState.PAUSED
    assert layer_state({K: 1, W: 1}, paused=False) is JobState.KILLED  # never killed as a whole
