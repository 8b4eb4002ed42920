"""The rule for a report of an attempt already declared lost (`model/late_report.py`), without HTTP:
finished work is kept unless its task succeeded since or a person ended it (rule 1 holds)."""

from __future__ import annotations

from thresher.model.late_report import OPEN_TO_LATE_SUCCESS, late_report
from thresher.model.states import TaskState

LOST = "node a stopped answering"


def test_a_late_success_is_kept_while_the_task_has_not_succeeded() -> None:
    for state in (TaskState.READY, TaskState.WAITING, TaskState.PAUSED, TaskState.FAILED):
        verdict = late_report("succeeded", LOST, state, current_attempt_is_other=False)
        assert verdict.accept and not verdict.stop_current, state
        assert verdict.note.startswith(LOST) and "kept" in verdict.note


def test_a_rerun_in_progress_is_stopped() -> None:
    verdict = late_report("succeeded", LOST, TaskState.RUNNING, current_attempt_is_other=True)
    assert verdict.accept and verdict.stop_current and "re-run was stopped" in verdict.note


def test_a_task_that_succeeded_since_keeps_its_success() -> None:
    verdict = late_report("succeeded", LOST, TaskState.SUCCEEDED, current_attempt_is_other=True)
    assert not verdict.accept and not verdict.stop_current and "succeeded meanwhile" in verdict.note


def test_what_a_person_ended_stays_ended() -> None:
    for state in (TaskState.KILLED, TaskState.SKIPPED, TaskState.HELD):
        verdict = late_report("succeeded", LOST, state, current_attempt_is_other=True)
        assert not verdict.accept and not verdict.stop_current and str(state) in verdict.note
    assert set(TaskState) - OPEN_TO_LATE_SUCCESS == {TaskState.SUCCEEDED, TaskState.KILLED, TaskState.SKIPPED,
                                                     TaskState.HELD}


def test_only_a_success_is_worth_keeping() -> None:
    for status in ("failed", "killed", "lost"):
        verdict = late_report(status, LOST, TaskState.READY, current_attempt_is_other=False)
        assert not verdict.accept and verdict.note == f"{LOST}; the agent later reported it {status}"
    assert late_report("failed", None, TaskState.READY, current_attempt_is_other=False).note.startswith("lost;")
