"""A job a person paused while its tasks still run ("running (paused)") is listed as paused, on a real
server, both databases: `GET /jobs?state=paused`, `thresher jobs --state paused` and the dashboard's
jobs filter (they share `views.list_jobs`); it is still listed as running too, and a finished job's
pause no longer counts."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_dashboard_http import _session
from tests.api.test_dependencies_http import _agent
from typer.testing import CliRunner

from thresher.cli.main import app


def _ids(farm: Any, state: str) -> list[int]:
    return [j["id"] for j in farm.api.get("/jobs", state=state, sort="id")["items"]]


def test_a_job_paused_while_its_tasks_run_is_listed_as_paused(farm: Any) -> None:
    busy = farm.api.post("/jobs", {"name": "busy", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "args": {"command": ["true"]}}]})["id"]
    agent = _agent(farm)
    (taken,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    assert taken["job_id"] == busy
    still = farm.api.post("/jobs", {"name": "still", "project": "default", "layers": [
        {"name": "render", "frames": "1", "args": {"command": ["true"]}}]})["id"]
    other = farm.api.post("/jobs", {"name": "other", "project": "default", "layers": [
        {"name": "render", "frames": "1", "args": {"command": ["true"]}}]})["id"]
    shown = farm.api.post(f"/jobs/{busy}/pause")
    assert (shown["state"], shown["paused"]) == ("running", True)  # its frame 1 still renders
    assert farm.api.post(f"/jobs/{still}/pause")["state"] == "paused"

    assert _ids(farm, "paused") == [busy, still]
    assert _ids(farm, "running") == [busy]
    assert _ids(farm, "paused,queued") == [busy, still, other]
    assert farm.api.get("/jobs", state="paused", limit=1, sort="-id")["total"] == 2

    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["jobs", "--state", "paused", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert sorted(j["id"] for j in json.loads(out.output)["items"]) == [busy, still]
    page = _session(farm)
    html = page.get("/jobs", params={"state": "paused"}).text
    page.close()
    assert f'href="/jobs/{busy}"' in html and f'href="/jobs/{other}"' not in html

    # once its running task ended, it is paused by its counts; once finished, its pause is no matter
    agent.post("/agent/finish", {"reports": [{"attempt_id": taken["attempt_id"], "status": "succeeded",
                                              "exit_code": 0, "log_size": 0}]})
    farm.wait_for(lambda: farm.api.get(f"/jobs/{busy}")["state"] == "paused")
    assert _ids(farm, "paused") == [busy, still]
    farm.api.post(f"/jobs/{still}/kill")
    assert _ids(farm, "paused") == [busy]
