"""The simulator's report maths, on hand-made runs (no database)."""

from __future__ import annotations

import pytest

from thresher.sim.engine import Attempt, JobRecord, Run, SimNode
from thresher.sim.report import bucket_sums, build, edges_for, percentile, queue_waits, ready_times
from thresher.sim.scenario import Layer, Scenario, parse_scenario


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == pytest.approx(95)


def test_bucket_sums_split_intervals_across_buckets() -> None:
    edges = [0, 10, 20, 30]
    assert bucket_sums([(5, 25, 2)], edges) == [10, 20, 10]
    assert bucket_sums([(0, 30, 1), (12, 12, 5)], edges) == [10, 10, 10]
    assert edges_for(100, None, buckets=4) == [0, 25, 50, 75, 100]


def _scenario() -> Scenario:
    return parse_scenario({"nodes": [{"name": "n", "count": 1, "cores": 2}],
                           "projects": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}],
                           "jobs": [{"name": "x", "layers": [{"name": "r", "frames": 1}]}]})


def _attempt(task: int, job: int, layer: str, start: float, end: float, status: str = "succeeded") -> Attempt:
    return Attempt(task, task, job, layer, 0, 1, 0, {}, start, end, status)


def test_queue_wait_counts_from_when_the_layer_could_start() -> None:
    render, comp = Layer(name="render", frames=2), Layer(name="comp", frames=1, depends_on=["render"])
    jobs = [JobRecord("x", "a", 50, arrived=10.0, layers={"render": render, "comp": comp})]
    attempts = [_attempt(1, 0, "render", 10, 20), _attempt(2, 0, "render", 15, 30, "failed"),
                _attempt(2, 0, "render", 40, 50), _attempt(3, 0, "comp", 55, 60)]
    assert ready_times(jobs, attempts) == {(0, "render"): 10.0, (0, "comp"): 50.0}
    assert sorted(w for _, w in queue_waits(jobs, attempts)) == [0.0, 5.0, 5.0]  # first attempts only


def test_shares_and_targets_follow_busy_cores_and_weights() -> None:
    scenario = _scenario()
    layer = Layer(name="r", frames=1)
    jobs = [JobRecord("ja", "a", 50, 0.0, layers={"r": layer}, tasks=3, finished=100.0, state="succeeded"),
            JobRecord("jb", "b", 40, 0.0, layers={"r": layer}, tasks=1, finished=100.0, state="succeeded")]
    attempts = [_attempt(1, 0, "r", 0, 100), _attempt(2, 1, "r", 0, 50), _attempt(3, 0, "r", 50, 100)]
    node = SimNode(scenario.nodes[0], "n-0")
    report = build(Run(scenario, jobs, [node], attempts, 100.0, 0.1, 3, 0))
    assert report.makespan == 100.0
    assert report.mean_utilization == pytest.approx(1.0)
    assert report.mean_share == pytest.approx({"a": 0.75, "b": 0.25})
    assert report.mean_target == pytest.approx({"a": 0.75, "b": 0.25})
    assert report.wait_by_priority["40"]["p50"] == 0.0 and list(report.wait_by_priority) == ["50", "40"]
