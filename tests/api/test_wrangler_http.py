"""The wrangler's routes over HTTP on a real server, both databases: one layer's actions, a node's tags
set from the dashboard, the command line an attempt ran, and the whole log downloaded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.api.test_dashboard_http import _session
from tests.api.test_dependencies_http import _agent
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.http import ApiError


def _two_layers(farm: Any) -> dict[str, Any]:
    return farm.api.post("/jobs", {"name": "layers", "project": "default", "layers": [
        {"name": "render", "frames": "1-4", "args": {"command": ["echo", "{frame}"]}, "env": {"SHOT": "010"},
         "cwd": "/tmp"},
        {"name": "comp", "frames": "1-2", "args": {"command": ["true"]}}]})


def _states(farm: Any, job_id: int, layer: str) -> list[str]:
    return sorted(t["state"] for t in farm.api.get(f"/jobs/{job_id}/tasks", layer=layer)["items"])


def _refused(call: Any, status: int) -> str:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == status, caught.value
    return str(caught.value)


def test_layer_actions_touch_only_their_layer(farm: Any) -> None:
    job = _two_layers(farm)
    act = lambda layer, verb: farm.api.post(f"/jobs/{job['id']}/layers/{layer}/{verb}")  # noqa: E731
    act("render", "pause")
    assert _states(farm, job["id"], "render") == ["paused"] * 4
    assert _states(farm, job["id"], "comp") == ["ready"] * 2
    assert "is already paused" in _refused(lambda: act("render", "pause"), 409)
    act("render", "resume")
    assert _states(farm, job["id"], "render") == ["ready"] * 4
    assert act("comp", "kill")["layers"][1]["counts"]["killed"] == 2
    assert _states(farm, job["id"], "render") == ["ready"] * 4
    act("comp", "retry")
    assert set(_states(farm, job["id"], "comp")) <= {"ready", "waiting"}
    seen = act("render", "skip")
    assert seen["layers"][0]["counts"]["skipped"] == 4
    assert "no failed or killed tasks" in _refused(lambda: act("render", "retry"), 409)
    assert "no layer named 'nothing'" in _refused(lambda: act("nothing", "pause"), 404)
    _refused(lambda: act("render", "explode"), 422)
    _refused(lambda: farm.api.post("/jobs/999999/layers/render/pause"), 404)

    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["pause", str(job["id"]), "--layer", "comp", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["layers"][1]["counts"]["paused"] == 2
    out = CliRunner().invoke(app, ["kill", str(job["id"]), "--layer", "nothing"], env=env)
    assert out.exit_code == 1 and "no layer named 'nothing'" in out.output


def test_node_tags_and_the_command_an_attempt_ran(farm: Any) -> None:
    job = _two_layers(farm)
    agent = _agent(farm)
    node = farm.api.request("PATCH", "/nodes/n1", json={"tags": ["gpu", "big", "gpu"]})
    assert node["tags"] == ["big", "gpu"]
    agent.post("/agent/heartbeat", {"running": []})
    assert farm.api.get("/nodes/n1")["tags"] == ["big", "gpu"]  # heartbeats never carry tags
    _refused(lambda: farm.api.request("PATCH", "/nodes/n1", json={"tags": ["no spaces"]}), 422)
    _refused(lambda: farm.api.request("PATCH", "/nodes/nobody", json={"tags": []}), 404)

    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    agent.post(f"/agent/attempts/{a['attempt_id']}/log", {"offset": 0, "data": "line one\nline two\n"})
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "succeeded",
                                              "exit_code": 0, "log_size": 18}]})
    ran = farm.api.get(f"/attempts/{a['attempt_id']}/command")
    assert ran["argv"] == a["argv"] and ran["cwd"] == a["cwd"] and ran["env"] == a["env"]
    assert ran["node"] == "n1" and ran["env"]["SHOT"] == "010" and job["id"] == a["job_id"]
    _refused(lambda: farm.api.get("/attempts/999999/command"), 404)

    page = _session(farm)
    download = page.get(f"/ui/attempts/{a['attempt_id']}/log.txt")
    assert download.status_code == 200 and download.text == "line one\nline two\n"
    assert download.headers["content-type"].startswith("text/plain")
    assert f'attachment; filename="task-{a["task_id"]}-attempt-1.log"' == download.headers["content-disposition"]
    assert page.get("/ui/attempts/999999/log.txt").status_code == 404
    text = page.get(f"/tasks/{a['task_id']}").text
    assert "data-command" in text and "SHOT=010" in text
    page.close()
