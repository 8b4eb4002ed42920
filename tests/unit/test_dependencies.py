"""The dependency rule without a database: each kind and mode, and frame-by-frame overlap."""

from __future__ import annotations

import random

from thresher.model.dependencies import (
    RELEASED,
    Status,
    TaskFacts,
    Verdict,
    bad_frames,
    carried_edges,
    combine,
    frame_edges,
    job_target,
)
from thresher.model.dependencies import tasks_target as _tasks_target


def test_a_job_waited_for() -> None:
    assert job_target("success", "job 12", "succeeded") == RELEASED
    assert job_target("success", "job 12", "running") == Status(Verdict.WAITING, "job 12 (running)")
    assert job_target("success", "job 12", "failed") == Status(Verdict.BLOCKED, "job 12 failed")
    assert job_target("success", "job 12", "killed").words == "blocked: job 12 killed"
    assert job_target("finished", "job 12", "failed") == RELEASED
    assert job_target("finished", "job 12", "killed") == RELEASED
    assert job_target("finished", "job 12", "blocked").verdict == Verdict.BLOCKED  # it will not end by itself


def tasks_target(mode: str, what: str, counts: dict[str, int], job_state: str | None = None) -> Status:
    return _tasks_target(mode, what, TaskFacts.of_counts(counts), job_state)


def test_a_layer_or_task_waited_for() -> None:
    assert tasks_target("success", "layer sim", {"succeeded": 3, "skipped": 1}) == RELEASED
    assert tasks_target("success", "layer sim", {"succeeded": 3, "running": 1}).words == "waiting for layer sim"
    assert tasks_target("success", "job 12 layer render", {"failed": 1, "ready": 2}).words == \
        "blocked: job 12 layer render failed"
    assert tasks_target("finished", "layer sim", {"failed": 1, "killed": 1, "succeeded": 1}) == RELEASED
    assert tasks_target("finished", "layer sim", {"failed": 1, "ready": 1}).verdict == Verdict.WAITING
    assert tasks_target("success", "job 3 layer a", {"waiting": 2}, "blocked").words == "blocked: job 3 layer a is blocked"


def test_combined_blocked_first_then_waiting_then_released() -> None:
    waiting, blocked = Status(Verdict.WAITING, "layer a"), Status(Verdict.BLOCKED, "job 2 failed")
    assert combine([]) == RELEASED
    assert combine([RELEASED, waiting, Status(Verdict.WAITING, "job 4 (queued)")]).words == \
        "waiting for layer a, job 4 (queued)"
    assert combine([waiting, blocked]) == blocked


def _pairs(waiters: list[tuple[int, int, int]], targets: list[tuple[int, int, int]]) -> set[tuple[int, int]]:
    return {(w, t) for a, b, w in waiters for c, d, t in targets if a <= d and c <= b}


def test_frame_edges_are_exactly_the_overlaps_whatever_the_chunks() -> None:
    sim = [(1, 2, 1), (3, 4, 2), (5, 6, 3)]
    render = [(1, 3, 10), (4, 6, 11)]
    assert set(frame_edges(render, sim)) == {(10, 1), (10, 2), (11, 2), (11, 3)}
    tiles = [(f, f, 100 + 4 * f + k) for f in range(1, 4) for k in range(4)]  # 4 tiles of each frame
    assert set(frame_edges([(2, 2, 7)], tiles)) == {(7, 108 + k) for k in range(4)}
    rng = random.Random(5)
    for _ in range(50):
        waiters = [(a, a + rng.randrange(5), i) for i, a in enumerate(rng.randrange(40) for _ in range(30))]
        targets = [(a, a + rng.randrange(7), 1000 + i) for i, a in enumerate(rng.randrange(40) for _ in range(30))]
        got = list(frame_edges(waiters, targets))
        assert len(got) == len(set(got)) and set(got) == _pairs(waiters, targets)


def test_frame_edges_of_large_layers_cost_about_their_size() -> None:
    waiters = [(f, f + 9, f) for f in range(1, 100_001, 10)]        # 10,000 tasks of 10 frames
    targets = [(f, f, 10**6 + f) for f in range(1, 100_001)]        # 100,000 single frames
    assert sum(1 for _ in frame_edges(waiters, targets)) == 100_000


def _edge(waiter: int, target: int, kind: str = "frame") -> dict[str, object]:
    return {"waiter_job_id": 1, "waiter_layer_id": 2 if waiter < 100 else 3, "waiter_task_id": waiter,
            "target_job_id": 1, "target_layer_id": 2 if target < 100 else 3, "target_task_id": target,
            "kind": kind, "mode": "success"}


def test_edges_carried_to_the_tasks_that_replace_theirs() -> None:
    # old tasks 10, 11, 12 of a layer merged into new task 20, 13 into 21; 100.. wait on them, and
    # 100 had its edge on 11 dropped (so it is not there), 12 waits task on task for 101
    old = [_edge(100, 10), _edge(100, 12), _edge(102, 13), _edge(12, 101, "task"), _edge(11, 10, "task")]
    carried = carried_edges(old, {10: 20, 11: 20, 12: 20, 13: 21})
    assert sorted((e["waiter_task_id"], e["target_task_id"], e["kind"]) for e in carried) == [
        (20, 101, "task"), (100, 20, "frame"), (102, 21, "frame")]   # once each; 11 on 10 is now 20 on itself
    assert carried_edges([_edge(100, 10)], {}) == [_edge(100, 10)]


def test_a_blocker_names_every_failed_frame_as_one_range() -> None:
    """Frames 1 and 2 both failed said `frames 1 failed` (the first task's only)."""
    assert bad_frames("job 30 layer main", {"failed": ["1", "2"]}).words == "blocked: job 30 layer main frames 1-2 failed"
    assert bad_frames("layer sim", {"failed": ["5-6", "1", "2", "1"], "killed": ["9"]}).reason == \
        "layer sim frames 1-2,5-6 failed, frames 9 killed"  # tiles of a frame named once; each state its range
