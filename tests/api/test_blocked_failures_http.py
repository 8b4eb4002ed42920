"""A job blocked by a failed dependency names what blocks it and that job's failures, on a real server:
`GET /jobs/{id}/failures` (the Python API's `failures`), `thresher job` and `thresher wait`, whether it
waits for the whole job or for a layer of it frame by frame. Both said "no task failed: no failed attempts
recorded" of a blocked job, and `wait` named a layer dependency's blocker without its failures."""

from __future__ import annotations

from typing import Any

from tests.api.test_dashboard_http import _session
from tests.api.test_dependencies_http import _agent, _job
from typer.testing import CliRunner

from thresher.cli.main import app


def _fail_all(farm: Any, agent: Any, job_id: int, tasks: int) -> None:
    """The agent runs the job's tasks and fails each with exit code 1."""
    for _ in range(tasks):
        (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
        assert a["job_id"] == job_id
        agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed",
                                                  "exit_code": 1, "reason": "exit code 1", "log_size": 0}]})


def _cli(farm: Any, *args: str) -> Any:
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token, "COLUMNS": "250"}
    return CliRunner().invoke(app, list(args), env=env)


def _page(farm: Any, path: str) -> str:
    client = _session(farm)
    try:
        return client.get(path).text
    finally:
        client.close()


def test_a_job_blocked_by_a_failed_job_names_that_jobs_failures(farm: Any) -> None:
    first = _job(farm, "sim")
    second = _job(farm, "comp", depends_on=[first["id"]])
    _fail_all(farm, _agent(farm), first["id"], 1)
    farm.wait_for(lambda: farm.api.get(f"/jobs/{second['id']}")["state"] == "blocked")

    summary = farm.api.get(f"/jobs/{second['id']}/failures")
    assert summary["blocked_by"] == f"job {first['id']} failed"
    assert [(u["job_id"], u["state"], u["failed_tasks"] != []) for u in summary["upstream"]] == \
        [(first["id"], "failed", True)]
    assert summary["summary"] == (f"job {first['id']} failed; job {first['id']} failed: "
                                  f"{summary['upstream'][0]['summary']}")
    assert "'exit code 1' x1" in summary["summary"] and "no task failed" not in summary["summary"]

    out = _cli(farm, "job", str(second["id"]))
    assert out.exit_code == 0, out.output
    assert f"job {second['id']} blocked: job {first['id']} failed; job {first['id']} failed: 1 task failed" \
        in out.output
    assert "no task failed" not in out.output and "exit code 1" in out.output  # the upstream's table too
    assert "0 failed attempts" not in out.output and "none of its own (what blocks it: waiting)" in out.output

    out = _cli(farm, "wait", str(second["id"]), "--timeout", "20")
    assert out.exit_code == 1, out.output
    assert out.output.splitlines()[:2] == [f"job {second['id']} blocked: job {first['id']} failed",
                                           f"  job {first['id']} failed: {summary['upstream'][0]['summary']}"]

    # the job page says it too, linking the job that blocks it (it showed no failure card at all)
    page = _page(farm, f"/jobs/{second['id']}")
    assert 'id="blocked-by"' in page and f"blocked: job {first['id']} failed" in page
    assert f'<a href="/jobs/{first["id"]}">job {first["id"]}</a>' in page and "exit code 1" in page


def test_a_layer_blocked_by_another_jobs_failed_frames_names_them_and_their_failures(farm: Any) -> None:
    first = _job(farm, "sim", layers=[{"name": "main", "frames": "1-2", "retries": 0,
                                       "args": {"command": ["echo", "{frame}"]}}])
    second = _job(farm, "comp", layers=[{"name": "comp", "frames": "1-2", "args": {"command": ["true"]},
                                         "depends_on": [{"job": first["id"], "layer": "main", "frames": True}]}])
    third = _job(farm, "grade", depends_on=[{"job": first["id"], "layer": "main"}])  # the layer whole
    _fail_all(farm, _agent(farm), first["id"], 2)
    farm.wait_for(lambda: farm.api.get(f"/jobs/{second['id']}")["state"] == "blocked")
    farm.wait_for(lambda: farm.api.get(f"/jobs/{third['id']}")["state"] == "blocked")

    out = _cli(farm, "wait", str(second["id"]), "--timeout", "20")
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert lines[0] == f"job {second['id']} blocked: job {first['id']} layer main frames 1-2 failed"
    assert lines[1].startswith(f"  job {first['id']} failed: 2 tasks failed — 'exit code 1' x2")

    summary = farm.api.get(f"/jobs/{second['id']}/failures")
    assert summary["blocked_by"] == f"job {first['id']} layer main frames 1-2 failed"
    assert [u["job_id"] for u in summary["upstream"]] == [first["id"]]

    out = _cli(farm, "wait", str(third["id"]), "--timeout", "20")
    assert out.exit_code == 1, out.output
    assert out.output.splitlines()[:2] == [f"job {third['id']} blocked: job {first['id']} layer main failed",
                                           f"  job {first['id']} failed: {summary['upstream'][0]['summary']}"]
