"""**The** rule for actions that would do nothing (`model/steering_rule.py`): refused with a reason that
names the state met; an action that changes something is allowed."""

from __future__ import annotations

import pytest

from thresher.model.states import JobState, TaskState
from thresher.model.steering_rule import Action, job_actions, job_refusal, layer_refusal, task_refusal

DONE = {"succeeded": 3}
FAILED = {"succeeded": 2, "failed": 1}
RUNNING = {"running": 1, "ready": 2}
WAITING = {"waiting": 4}


@pytest.mark.parametrize("action,state,paused,counts,reason", [
    (Action.KILL, JobState.FAILED, False, FAILED, "job 12 already failed: nothing to kill"),
    (Action.KILL, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded: nothing to kill"),
    (Action.KILL, JobState.KILLED, False, {"killed": 3}, "job 12 already killed: nothing to kill"),
    (Action.KILL, JobState.RUNNING, False, RUNNING, None),
    (Action.KILL, JobState.FAILED, False, {"failed": 1, "waiting": 2}, None),  # blocked waiters get killed
    (Action.PAUSE, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded: nothing to pause"),
    (Action.PAUSE, JobState.PAUSED, True, {"paused": 2}, "job 12 is already paused"),
    (Action.PAUSE, JobState.RUNNING, True, {"running": 2}, "job 12 is already paused"),
    (Action.PAUSE, JobState.WAITING, False, WAITING, None),
    (Action.RESUME, JobState.RUNNING, False, RUNNING, "job 12 is running, not paused: nothing to resume"),
    (Action.RESUME, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded, not paused: nothing to resume"),
    (Action.RESUME, JobState.PAUSED, True, {"paused": 2}, None),
    (Action.RESUME, JobState.RUNNING, True, {"running": 2}, None),  # paused while its tasks run: resumable
    (Action.RETRY, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded: no failed or killed tasks to retry"),
    (Action.RETRY, JobState.RUNNING, False, RUNNING, "job 12 is running: no failed or killed tasks to retry"),
    (Action.RETRY, JobState.FAILED, False, FAILED, None),
    (Action.RETRY, JobState.KILLED, False, {"killed": 1}, None),
    # urgency and moves reorder the tasks still to start: a finished job has none
    (Action.URGENT, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded: nothing to make urgent"),
    (Action.URGENT, JobState.FAILED, False, FAILED, "job 12 already failed: nothing to make urgent"),
    (Action.URGENT, JobState.KILLED, False, {"killed": 3}, "job 12 already killed: nothing to make urgent"),
    (Action.URGENT, JobState.RUNNING, False, RUNNING, None),
    (Action.URGENT, JobState.PAUSED, True, {"paused": 2}, None),
    (Action.URGENT, JobState.WAITING, False, WAITING, None),
    (Action.MOVE, JobState.SUCCEEDED, False, DONE, "job 12 already succeeded: nothing to move"),
    (Action.MOVE, JobState.KILLED, False, {"killed": 3}, "job 12 already killed: nothing to move"),
    (Action.MOVE, JobState.FAILED, False, FAILED, "job 12 already failed: nothing to move"),
    (Action.MOVE, JobState.RUNNING, True, RUNNING, None),
    (Action.MOVE, JobState.BLOCKED, False, WAITING, None),
])
def test_job_actions(action: Action, state: JobState, paused: bool, counts: dict[str, int],
                     reason: str | None) -> None:
    assert job_refusal(action, 12, state, paused=paused, counts=counts) == reason


@pytest.mark.parametrize("action,paused,job_paused,counts,reason", [
    (Action.PAUSE, False, False, WAITING, None),  # all still waiting: pausable (what is freed waits paused)
    (Action.PAUSE, False, False, {"held": 3, "ready": 1}, None),
    (Action.PAUSE, True, False, {"paused": 2}, "layer comp of job 7 is already paused"),
    (Action.PAUSE, False, False, DONE, "layer comp of job 7 already succeeded: nothing to pause"),
    (Action.KILL, False, False, FAILED, "layer comp of job 7 already failed: nothing to kill"),
    (Action.SKIP, False, False, DONE, "layer comp of job 7 already succeeded: nothing to skip"),
    (Action.KILL, False, False, WAITING, None),
    (Action.RESUME, False, False, RUNNING, "layer comp of job 7 is not paused: nothing to resume"),
    (Action.RESUME, True, True, {"paused": 2}, "job 7 is paused; resume the job"),
    (Action.RESUME, True, False, WAITING, None),  # paused while waiting: resuming it is a change
    (Action.RETRY, False, False, DONE, "layer comp of job 7 has no failed or killed tasks to retry"),
    (Action.RETRY, False, False, FAILED, None),
])
def test_layer_actions(action: Action, paused: bool, job_paused: bool, counts: dict[str, int],
                       reason: str | None) -> None:
    assert layer_refusal(action, 7, "comp", paused=paused, job_paused=job_paused, counts=counts) == reason


@pytest.mark.parametrize("action,state,reason", [
    (Action.KILL, TaskState.SUCCEEDED, "task 5 already succeeded: nothing to kill"),
    (Action.KILL, TaskState.FAILED, "task 5 already failed: nothing to kill"),
    (Action.KILL, TaskState.HELD, None),
    (Action.KILL, TaskState.RUNNING, None),
    (Action.SKIP, TaskState.SKIPPED, "task 5 already skipped: nothing to skip"),
    (Action.SKIP, TaskState.SUCCEEDED, "task 5 already succeeded: nothing to skip"),
    (Action.SKIP, TaskState.FAILED, None),
    (Action.SKIP, TaskState.WAITING, None),
    (Action.RETRY, TaskState.RUNNING, "task 5 is running; kill it first or wait for it to end"),
    (Action.RETRY, TaskState.READY, "task 5 is ready: it is still to run, nothing to retry"),
    (Action.RETRY, TaskState.WAITING, "task 5 is waiting: it is still to run, nothing to retry"),
    (Action.RETRY, TaskState.SUCCEEDED, None),  # rendered again
    (Action.RETRY, TaskState.KILLED, None),
])
def test_task_actions(action: Action, state: TaskState, reason: str | None) -> None:
    assert task_refusal(action, 5, state) == reason


@pytest.mark.parametrize("state,paused,counts,urgent,offered", [
    (JobState.RUNNING, False, RUNNING, False, {"kill", "pause", "urgent"}),
    (JobState.PAUSED, True, {"paused": 2}, False, {"kill", "resume", "urgent"}),
    # a failed job whose comp waits on its failed render: kill ends the waiters, retry runs it again;
    # no pause (refused: "already failed") and no urgent (it runs nothing until a retry)
    (JobState.FAILED, False, {"failed": 1, "waiting": 2}, False, {"kill", "retry"}),
    (JobState.FAILED, False, {"failed": 1, "waiting": 2}, True, {"kill", "retry", "urgent"}),  # to take it back
    (JobState.SUCCEEDED, False, DONE, False, set()),
    (JobState.KILLED, False, {"killed": 3}, False, {"retry"}),
])
def test_the_job_page_offers_what_the_rule_lets_through(state: JobState, paused: bool, counts: dict[str, int],
                                                        urgent: bool, offered: set[str]) -> None:
    assert job_actions(12, state, paused=paused, counts=counts, urgent=urgent) == offered
    for action in Action:
        if action.value in offered and not (action == Action.URGENT and urgent):  # taking it off is never refused
            assert job_refusal(action, 12, state, paused=paused, counts=counts) is None


def test_an_archived_job_has_nothing_left_to_act_on_and_says_so() -> None:
    """Its task rows are gone: "job 45 already failed: no failed or killed tasks to retry" read as a failed
    job with no failed task; its page offered Retry from the counts it kept."""
    kept = {"failed": 1, "succeeded": 3}
    for action, verb in ((Action.RETRY, "retry"), (Action.KILL, "kill"), (Action.RESUME, "resume"),
                         (Action.URGENT, "make urgent")):
        assert job_refusal(action, 45, JobState.FAILED, paused=True, counts=kept, archived=True) == (
            f"job 45 was archived: its tasks were deleted, nothing to {verb}")
    assert job_actions(45, JobState.FAILED, paused=False, counts=kept, urgent=False, archived=True) == set()
    assert job_actions(45, JobState.FAILED, paused=False, counts=kept, urgent=False) == {"retry"}
