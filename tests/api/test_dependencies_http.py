"""Dependencies over HTTP on a real server: `thresher wait` on a blocked job returns 1 with the reason,
`thresher deps` and `undepend`, a task made to wait for a task (a cycle refused), and the job page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from tests.api.test_dashboard_http import _session
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.http import ApiError


def _job(farm: Any, name: str, **extra: Any) -> dict[str, Any]:
    layers = extra.pop("layers", None) or [{"name": "render", "frames": "1", "retries": 0,
                                            "args": {"command": ["echo", "{frame}"]}}]
    return farm.api.post("/jobs", {"name": name, "project": "default", "layers": layers, **extra})


def _agent(farm: Any) -> Any:
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1, "memory_mb": 2048})
    return farm.client(token=node["token"])


def _run_one(agent: Any, status: str) -> dict[str, Any]:
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": status,
                                              "exit_code": 0 if status == "succeeded" else 1, "log_size": 0}]})
    return a


def test_a_blocked_job_over_http_the_cli_and_the_page(farm: Any) -> None:
    first = _job(farm, "sim")
    second = _job(farm, "comp", layers=[{"name": "comp", "frames": "1", "args": {"command": ["true"]},
                                         "depends_on": [{"job": first["id"], "layer": "render"}]}])
    agent = _agent(farm)
    _run_one(agent, "failed")
    farm.wait_for(lambda: farm.api.get(f"/jobs/{second['id']}")["state"] == "blocked")
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["wait", str(second["id"]), "--timeout", "20"], env=env)
    assert out.exit_code == 1, out.output
    assert f"job {second['id']} blocked: job {first['id']} layer render failed" in out.output

    out = CliRunner().invoke(app, ["deps", str(second["id"]), "--json"], env=env)
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert [(e["kind"], e["target_job"], e["target_layer"]) for e in shown["waits_for"]] == \
        [("layer", first["id"], "render")]
    assert shown["pending"] == f"blocked: job {first['id']} layer render failed"
    assert farm.api.get(f"/jobs/{first['id']}/dependencies")["waited_by"][0]["waiter_job"] == second["id"]

    page = _session(farm)
    text = page.get(f"/jobs/{second['id']}").text
    assert "Dependencies" in text and f"/api/v1/jobs/{second['id']}/dependencies?on_job={first['id']}" in text
    page.close()

    out = CliRunner().invoke(app, ["undepend", str(second["id"]), "--on", str(first["id"]), "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["dropped"] == 1
    assert _run_one(agent, "succeeded")["job_id"] == second["id"]  # released by the drop
    out = CliRunner().invoke(app, ["wait", str(second["id"]), "--timeout", "20"], env=env)
    assert out.exit_code == 0, out.output


def test_a_task_made_to_wait_for_a_task_and_a_cycle_refused(farm: Any) -> None:
    first = _job(farm, "a", layers=[{"name": "render", "frames": "1-2", "args": {"command": ["true"]}}])
    second = _job(farm, "b", layers=[{"name": "comp", "frames": "1", "args": {"command": ["true"]}}])
    first_tasks = farm.api.get(f"/jobs/{first['id']}/tasks")["items"]
    (comp,) = farm.api.get(f"/jobs/{second['id']}/tasks")["items"]
    answer = farm.api.post(f"/jobs/{second['id']}/dependencies", {"task": comp["id"], "on_task": first_tasks[1]["id"]})
    assert answer["waits_for"][0]["kind"] == "task" and answer["waits_for"][0]["target_task"] == first_tasks[1]["id"]
    assert farm.api.get(f"/jobs/{second['id']}")["state"] == "waiting"
    with pytest.raises(ApiError) as info:  # the other way round, across the two jobs: a cycle
        farm.api.post(f"/jobs/{first['id']}/dependencies", {"task": first_tasks[0]["id"], "on_task": comp["id"]})
    assert info.value.status == 422 and info.value.errors[0]["field"] == "on_task"
    for dry in ("true", "false"):  # a dry run refuses what the submit refuses
        with pytest.raises(ApiError) as info:
            farm.api.post("/jobs", {"name": "c", "layers": [{"name": "x", "args": {"command": ["true"]},
                                                             "depends_on": [{"job": first["id"], "layer": "nope"}]}]},
                          dry_run=dry)
        assert info.value.status == 422 and info.value.errors[0]["field"] == "layers.0.depends_on.0"
    with pytest.raises(ApiError) as info:
        farm.api.request("DELETE", f"/jobs/{second['id']}/dependencies")
    assert info.value.status == 422 and info.value.errors[0]["field"] == "all"
    agent = _agent(farm)
    assert {_run_one(agent, "succeeded")["task_id"] for _ in range(2)} == {t["id"] for t in first_tasks}
    assert _run_one(agent, "succeeded")["task_id"] == comp["id"]


def _run_failing(agent: Any, layer: str) -> None:
    """Run the one task the agent gets, failing it when it is of `layer`."""
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    bad = a["layer"] == layer
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed" if bad else "succeeded",
                                              "exit_code": 1 if bad else 0, "log_size": 0}]})


def test_a_failed_job_as_deps_why_and_the_page_say_it(farm: Any) -> None:
    """`deps` and the job page showed the job's state by a layer (`layer sim [failed]` though sim
    succeeded), and `why` said `nothing waits` of a failed job whose layer b still waits on failed a."""
    first = _job(farm, "up", layers=[{"name": "sim", "frames": "1-2", "args": {"command": ["true"]}},
                                     {"name": "a", "frames": "1", "retries": 0, "args": {"command": ["false"]}},
                                     {"name": "b", "frames": "1", "depends_on": ["a"], "args": {"command": ["true"]}}])
    second = _job(farm, "down", layers=[{"name": "render", "frames": "1-2", "args": {"command": ["true"]},
                                         "depends_on": [{"job": first["id"], "layer": "sim", "frames": True},
                                                        {"job": first["id"], "layer": "a"}]}])
    agent = _agent(farm)
    for _ in range(3):
        _run_failing(agent, "a")
    farm.wait_for(lambda: farm.api.get(f"/jobs/{second['id']}")["state"] == "blocked")
    assert farm.api.get(f"/jobs/{first['id']}")["state"] == "failed"
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token, "COLUMNS": "200"}

    out = CliRunner().invoke(app, ["deps", str(second["id"])], env=env)
    assert out.exit_code == 0, out.output
    assert f"job {first['id']} layer sim [succeeded]" in out.output and f"job {first['id']} layer a [failed]" in out.output
    page = _session(farm)
    text = page.get(f"/jobs/{second['id']}").text
    page.close()
    badges = {m.group(1): m.group(2) for m in re.finditer(
        r'<li>.*?</a> (\w+)\s*<span class="badge s-\w+">(\w+)</span>', text[text.index("Waits for:"):], re.S)}
    assert badges == {"sim": "succeeded", "a": "failed"}

    out = CliRunner().invoke(app, ["why", str(first["id"])], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [f"job {first['id']} (failed): blocked: layer a failed",
                                       "  b: blocked: layer a failed"]


def test_tasks_of_a_layer_the_job_does_not_have_is_an_error_naming_it(farm: Any) -> None:
    """`thresher tasks JOB --layer zzz` answered `0 tasks`, exit 0; `pause --layer zzz` names the layer."""
    job = _job(farm, "j", layers=[{"name": "sim", "frames": "1-2", "args": {"command": ["true"]}}])
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token, "COLUMNS": "200"}
    out = CliRunner().invoke(app, ["tasks", str(job["id"]), "--layer", "zzz"], env=env)
    assert out.exit_code == 1 and f"job {job['id']} has no layer named 'zzz'" in out.output
    assert "0 tasks" not in out.output
    with pytest.raises(ApiError) as info:
        farm.api.get(f"/jobs/{job['id']}/tasks", layer="zzz", frame=1)
    assert info.value.status == 404 and info.value.detail == f"job {job['id']} has no layer named 'zzz'"
    assert farm.api.get(f"/jobs/{job['id']}/tasks", layer="sim")["total"] == 2


def test_a_drop_that_matches_no_dependency_is_refused_naming_it(farm: Any) -> None:
    first = _job(farm, "sim")
    second = _job(farm, "comp", layers=[{"name": "comp", "frames": "1", "args": {"command": ["true"]},
                                         "depends_on": [{"job": first["id"], "layer": "render"}]}])
    with pytest.raises(ApiError) as refused:
        farm.api.request("DELETE", f"/jobs/{second['id']}/dependencies", params={"on_job": 99999})
    assert refused.value.status == 409
    assert refused.value.detail == f"job {second['id']} has no dependency on job 99999: nothing to drop"
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["undepend", str(first["id"]), "--all"], env=env)
    assert out.exit_code == 1, out.output
    assert f"job {first['id']} has no dependency: nothing to drop" in out.output
    out = CliRunner().invoke(app, ["undepend", str(second["id"]), "--layer", "comp", "--on", "99999"], env=env)
    assert out.exit_code == 1 and "(layer comp) has no dependency on job 99999" in out.output, out.output
    assert farm.api.get(f"/jobs/{second['id']}/dependencies")["waits_for"]  # nothing was dropped
    out = CliRunner().invoke(app, ["undepend", str(second["id"]), "--on", str(first["id"])], env=env)
    assert out.exit_code == 0 and "1 dependency dropped" in out.output, out.output
