"""A paused layer stays paused for the tasks freed after the pause (`server/layer_pause.py`), on a real
server, both databases, with an agent played over the API: frames its dependencies release, a failed
try retried, scouts' held tasks released by hand; resuming the layer makes them ready."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.test_dependencies_http import _agent

from thresher.client.http import ApiError


def _states(farm: Any, job_id: int, layer: str) -> list[str]:
    return [t["state"] for t in farm.api.get(f"/jobs/{job_id}/tasks", layer=layer)["items"]]


def _take(agent: Any) -> dict[str, Any]:
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    return a


def _finish(agent: Any, a: dict[str, Any], status: str) -> None:
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": status,
                                              "exit_code": 0 if status == "succeeded" else 1, "log_size": 0}]})


def _act(farm: Any, job_id: int, layer: str, verb: str) -> dict[str, Any]:
    return farm.api.post(f"/jobs/{job_id}/layers/{layer}/{verb}")


def test_frames_released_by_their_dependencies_stay_paused(farm: Any) -> None:
    job = farm.api.post("/jobs", {"name": "deps", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "args": {"command": ["true"]}},
        {"name": "comp", "frames": "1-2", "args": {"command": ["true"]},
         "depends_on": [{"layer": "render", "frames": True}]}]})
    job_id = job["id"]
    agent = _agent(farm)
    first = _take(agent)
    assert first["task_id"] == farm.api.get(f"/jobs/{job_id}/tasks", layer="render")["items"][0]["id"]
    _finish(agent, first, "succeeded")
    farm.wait_for(lambda: _states(farm, job_id, "comp") == ["ready", "waiting"], message="comp frame 1 released")
    seen = _act(farm, job_id, "comp", "pause")
    assert _states(farm, job_id, "comp") == ["paused", "waiting"] and seen["layers"][1]["state"] == "paused"
    second = _take(agent)  # render frame 2: comp's paused frame is not handed out
    _finish(agent, second, "succeeded")
    farm.wait_for(lambda: _states(farm, job_id, "render") == ["succeeded"] * 2)
    farm.wait_for(lambda: "waiting" not in _states(farm, job_id, "comp"), message="comp frame 2 released")
    assert _states(farm, job_id, "comp") == ["paused", "paused"]  # released into the pause, not ready
    assert agent.post("/agent/work", {}, wait=0.5)["assignments"] == []
    shown = farm.api.get(f"/jobs/{job_id}")
    assert shown["layers"][1]["pending"] == "the layer is paused: resume it" and shown["paused"] is False
    _act(farm, job_id, "comp", "resume")
    assert _states(farm, job_id, "comp") == ["ready", "ready"]


def test_a_failed_try_in_a_paused_layer_or_job_waits_paused(farm: Any) -> None:
    job = farm.api.post("/jobs", {"name": "retries", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "retries": 3, "args": {"command": ["true"]}}]})
    job_id = job["id"]
    agent = _agent(farm)
    a = _take(agent)
    _act(farm, job_id, "render", "pause")
    assert sorted(_states(farm, job_id, "render")) == ["paused", "running"]
    _finish(agent, a, "failed")  # a try left: it would run again, but the layer is paused
    farm.wait_for(lambda: "running" not in _states(farm, job_id, "render"))
    assert _states(farm, job_id, "render") == ["paused", "paused"]
    _act(farm, job_id, "render", "resume")
    assert _states(farm, job_id, "render") == ["ready", "ready"]

    b = _take(agent)  # the same with the whole job paused
    farm.api.post(f"/jobs/{job_id}/pause")
    _finish(agent, b, "failed")
    farm.wait_for(lambda: "running" not in _states(farm, job_id, "render"))
    assert _states(farm, job_id, "render") == ["paused", "paused"]
    assert farm.api.post(f"/jobs/{job_id}/resume")["counts"]["ready"] == 2


def test_held_tasks_released_by_hand_into_a_paused_layer_stay_paused(farm: Any) -> None:
    job = farm.api.post("/jobs", {"name": "scouted", "project": "default", "layers": [
        {"name": "render", "frames": "1-5", "scout": "fml:2", "scout_release": "manual",
         "args": {"command": ["true"]}}]})
    job_id = job["id"]
    assert sorted(_states(farm, job_id, "render")) == ["held"] * 3 + ["ready"] * 2
    _act(farm, job_id, "render", "pause")
    farm.api.post(f"/jobs/{job_id}/release", {"layer": "render"})
    assert _states(farm, job_id, "render") == ["paused"] * 5
    _act(farm, job_id, "render", "resume")
    assert _states(farm, job_id, "render") == ["ready"] * 5


def test_a_layer_still_waiting_pauses_and_a_job_resume_leaves_it_paused(farm: Any) -> None:
    job = farm.api.post("/jobs", {"name": "waiting", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "args": {"command": ["true"]}},
        {"name": "comp", "frames": "1-2", "args": {"command": ["true"]},
         "depends_on": [{"layer": "render", "frames": True}]}]})
    job_id = job["id"]
    assert _states(farm, job_id, "comp") == ["waiting", "waiting"]
    comp = _act(farm, job_id, "comp", "pause")["layers"][1]  # nothing ready to park: the layer's own pause
    assert comp["paused"] is True and comp["state"] == "paused"
    with pytest.raises(ApiError) as refused:
        _act(farm, job_id, "comp", "pause")
    assert refused.value.status == 409 and "layer comp of job" in str(refused.value) and "already paused" in str(refused.value)
    agent = _agent(farm)
    _finish(agent, _take(agent), "succeeded")
    farm.wait_for(lambda: "waiting" not in _states(farm, job_id, "comp")[:1], message="comp frame 1 released")
    assert _states(farm, job_id, "comp") == ["paused", "waiting"]  # released into the layer's pause

    farm.api.post(f"/jobs/{job_id}/pause")
    resumed = farm.api.post(f"/jobs/{job_id}/resume")  # the job's resume leaves the layer's pause alone
    assert resumed["layers"][1]["paused"] is True and resumed["layers"][0]["paused"] is False
    assert _states(farm, job_id, "render") == ["succeeded", "ready"] and _states(farm, job_id, "comp") == ["paused", "waiting"]
    assert resumed["layers"][1]["pending"] == "the layer is paused: resume it"
    assert _act(farm, job_id, "comp", "resume")["layers"][1]["paused"] is False
    assert _states(farm, job_id, "comp") == ["ready", "waiting"]
