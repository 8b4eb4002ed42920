"""The simulator's event loop on small scenarios whose outcome is known by hand (SQLite)."""

from __future__ import annotations

from typing import Any

from thresher.sim.engine import simulate
from thresher.sim.report import build
from thresher.sim.scenario import parse_scenario


def _run(**scenario: Any) -> Any:
    return simulate(parse_scenario({"nodes": [{"name": "n", "count": 2, "cores": 2}], **scenario}))


def test_fixed_frames_on_two_nodes_take_the_time_they_must() -> None:
    # 8 one-core tasks of 10 s (2 frames of 5 s) on 4 cores: two waves, 20 s, every core busy
    run = _run(jobs=[{"name": "j", "layers": [{"name": "r", "frames": 16, "chunk": 2,
                                                "frame_time": {"seconds": 5}}]}])
    report = build(run)
    assert report.makespan == 20.0 and report.tasks == 8 and report.attempts == 8
    assert report.mean_utilization == 1.0
    assert [j["state"] for j in report.jobs] == ["succeeded"]


def test_speed_overhead_arrivals_and_dependencies() -> None:
    run = simulate(parse_scenario({
        "task_overhead_s": 1, "nodes": [{"name": "fast", "count": 1, "cores": 1, "speed": 2}],
        "jobs": [{"name": "a", "at": 5, "layers": [{"name": "r", "frames": 1, "frame_time": {"seconds": 10}},
                                                   {"name": "c", "frames": 1, "depends_on": ["r"],
                                                    "frame_time": {"seconds": 4}}]},
                 {"name": "b", "at": 5, "depends_on": ["a"], "layers": [{"name": "r", "frames": 1,
                                                                "frame_time": {"seconds": 2}}]}]}))
    a, b = run.jobs
    assert (a.finished, b.finished) == (5 + 6 + 3, 14 + 2)  # 10 s / speed 2 + 1 s, then 4 / 2 + 1, then 2 / 2 + 1


def test_failures_retry_and_crashes_requeue_with_the_same_seed_the_same_run() -> None:
    scenario = {"seed": 3, "nodes": [{"name": "n", "count": 3, "cores": 2, "failure_rate": 0.2,
                                      "loss_rate": 0.05, "repair_s": 30}],
                "jobs": [{"name": "j", "layers": [{"name": "r", "frames": 60, "retries": 10, "blocklist_after": 100,
                                                    "frame_time": {"dist": "uniform", "low": 5, "high": 15}}]}]}
    first, second = (simulate(parse_scenario(scenario)) for _ in range(2))
    assert first.jobs[0].state == "succeeded"
    statuses = {a.status for a in first.attempts}
    assert {"failed", "lost"} <= statuses
    assert [(a.start, a.end, a.status) for a in first.attempts] == [(a.start, a.end, a.status) for a in second.attempts]
    assert sum(1 for a in first.attempts if a.status == "succeeded") == 60


def test_the_servers_blocklist_holds_in_the_simulator_too() -> None:
    """Three failures of a job on a node keep it off that node (server/failures.py): on a farm whose
    nodes all fail often, the job is left unfinished, and the run says so rather than spinning."""
    run = simulate(parse_scenario({"seed": 3, "nodes": [{"name": "n", "count": 3, "cores": 2, "failure_rate": 0.2,
                                                         "loss_rate": 0.05, "repair_s": 30}],
                                   "jobs": [{"name": "j", "layers": [{"name": "r", "frames": 60, "retries": 10}]}]}))
    assert run.unfinished == 1 and run.jobs[0].finished is None


def test_a_licence_limit_is_never_exceeded() -> None:
    run = _run(limits=[{"name": "nuke", "max_total": 1}],
               jobs=[{"name": "j", "layers": [{"name": "r", "frames": 4, "limits": {"nuke": 1},
                                               "frame_time": {"seconds": 10}}]}])
    report = build(run)
    assert report.licence_peak == {"nuke": 1} and report.makespan == 40.0


def test_a_layer_takes_its_services_defaults_as_the_server_applies_them() -> None:
    """A service gives what a layer leaves out (field by field, the server's `apply_service`); what
    the layer sets wins; the simulator books and times attempts by what was submitted."""
    run = _run(limits=[{"name": "nuke", "max_total": 1}],
               services=[{"name": "comp", "defaults": {"resources": {"cores": 2}, "limits": {"nuke": 1}}},
                         {"name": "slow", "defaults": {"timeout": 15, "retries": 0}}],
               jobs=[{"name": "j", "layers": [
                   {"name": "a", "frames": 2, "service": "comp", "frame_time": {"seconds": 10}},
                   {"name": "b", "frames": 2, "service": "comp", "cores": 1, "limits": {},
                    "frame_time": {"seconds": 10}}]},
                     {"name": "k", "layers": [{"name": "c", "frames": 1, "service": "slow",
                                               "frame_time": {"seconds": 20}}]}])
    took = sorted({(a.layer, a.cores, tuple(a.limits.items())) for a in run.attempts})
    assert took == [("a", 2, (("nuke", 1),)), ("b", 1, ()), ("c", 1, ())]
    report = build(run)
    assert report.licence_peak == {"nuke": 1}
    (slow,) = [a for a in run.attempts if a.layer == "c"]
    assert (slow.status, slow.end - slow.start) == ("failed", 15)   # stopped at the service's timeout, no retry
    assert [j.state for j in run.jobs] == ["succeeded", "failed"]
