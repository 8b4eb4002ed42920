"""`--from-server` without a server: a farm's API answers turned into a scenario (`sim/snapshot.py`),
and a hand-written scenario laid over it. The real server is in tests/e2e/test_simulate_from_server.py."""

from __future__ import annotations

import math
from typing import Any

import pytest

from thresher.sim.scenario import ScenarioError
from thresher.sim.snapshot import FarmState, frame_time_of, merged, scenario_of
from thresher.wire.jobs import Job, Layer
from thresher.wire.nodes import Node

MOMENT = "2030-01-01T00:00:00Z"


def _layer(name: str = "render", **kw: Any) -> Layer:
    counts = kw.pop("counts", {"ready": 4})
    return Layer.model_validate({
        "id": 1, "name": name, "template": "command", "frames": "1-8", "chunk": 2, "cores": 1, "memory_mb": 512,
        "gpus": 0, "tags": [], "retries": 2, "timeout": None, "depends_on": [], "state": "queued",
        "counts": counts, "total_tasks": 4, "progress": 0.0, **kw})


def _job(job_id: int, name: str, layers: list[Layer], state: str = "queued", **kw: Any) -> Job:
    return Job.model_validate({
        "id": job_id, "name": name, "owner": "ana", "project": "alpha", "sequence": None, "shot": None,
        "priority": 50, "state": state, "paused": False, "submitted_at": MOMENT, "finished_at": None,
        "counts": {}, "total_tasks": 4, "progress": 0.0, "layers": [layer.model_dump() for layer in layers],
        "depends_on": [], "spec": {}, **kw})


def _node(name: str, cores: int, state: str = "up", pool: str = "default") -> Node:
    return Node.model_validate({
        "id": 1, "name": name, "hostname": name, "os": "linux", "state": state, "admin_state": "enabled",
        "cores": cores, "memory_mb": 8000, "gpus": [], "tags": [], "apps": {}, "pool": pool, "last_seen": MOMENT,
        "registered_at": MOMENT, "cpu_percent": None, "memory_used_mb": None, "load": None, "running": [],
        "free": {"cores": cores, "memory_mb": 8000, "gpus": 0}})


def test_frame_times_from_a_layers_estimate_else_the_given_one() -> None:
    assert frame_time_of(_layer(), 30) == {"dist": "fixed", "seconds": 30}
    estimate = {"task_s": 100.0, "low_s": 50.0, "high_s": 200.0, "samples": 12, "confidence": "fair", "basis": "x"}
    drawn = frame_time_of(_layer(estimate=estimate), 30)
    assert drawn["dist"] == "lognormal" and drawn["seconds"] == 50.0   # a task is 2 frames
    assert drawn["sigma"] == pytest.approx(math.log(4) / 1.349, abs=1e-3)   # quartiles 50..200


def test_the_farm_as_a_scenario_and_a_scenario_laid_over_it() -> None:
    done = _layer("sim", counts={"succeeded": 4})
    half = _layer("comp", counts={"succeeded": 2, "running": 1, "ready": 1}, depends_on=["sim"])
    farm = FarmState(nodes=[_node("a", 4), _node("b", 4), _node("c", 8), _node("down", 8, state="down")],
                     jobs=[_job(3, "shot 010", [done, half]), _job(5, "later", [_layer()], depends_on=[3])])
    snapshot = scenario_of(farm, 20)
    assert sorted((g["count"], g["cores"]) for g in snapshot["nodes"]) == [(1, 8), (2, 4)]
    first, later = snapshot["jobs"]
    assert first["name"] == "job3-shot_010" and later["depends_on"] == ["job3-shot_010"]
    (comp,) = first["layers"]   # the finished layer is gone, and the dependency on it
    assert (comp["name"], comp["frames"], comp["chunk"], comp["depends_on"]) == ("comp", 4, 2, [])
    scenario = merged(snapshot, {"seed": 9, "nodes": [{"name": "extra", "count": 3}],
                                 "jobs": [{"name": "next", "depends_on": ["job5-later"],
                                           "layers": [{"name": "r", "frames": 2}]}]})
    assert scenario.seed == 9 and [j.name for j in scenario.jobs] == ["job3-shot_010", "job5-later", "next"]
    assert sum(g.count for g in scenario.nodes) == 6
    with pytest.raises(ScenarioError, match="nothing to simulate"):
        merged(scenario_of(FarmState(nodes=farm.nodes), 20))
