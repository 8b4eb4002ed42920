"""Scout frames over HTTP on a real server: a dry run shows them, the job page has the Release button,
`thresher release` lets the held tasks go, `thresher job` says where they stand."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_dashboard_http import _session
from tests.api.test_dependencies_http import _agent, _run_one
from typer.testing import CliRunner

from thresher.cli.main import app

_LAYER = {"name": "render", "frames": "1-5", "scout": "fml:2", "scout_release": "manual",
          "args": {"command": ["echo", "{frame}"]}}


def test_manual_release_over_http_the_cli_and_the_page(farm: Any) -> None:
    spec = {"name": "scouted", "project": "default", "layers": [_LAYER]}
    dry = farm.api.post("/jobs", spec, dry_run="true")
    assert dry["layers"][0]["scout_frames"] == [1, 5] and dry["layers"][0]["scout_release"] == "manual"
    job = farm.api.post("/jobs", spec)
    agent = _agent(farm)
    assert sorted(_run_one(agent, "succeeded")["frames"] for _ in range(2)) == ["1", "5"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["state"] == "waiting")
    seen = farm.api.get(f"/jobs/{job['id']}")
    assert seen["layers"][0]["counts"]["held"] == 3 and seen["layers"][0]["scout"]["frames"] == [1, 5]
    assert seen["pending"] == "held until released: scout frames rendered, waiting for a person to release"

    page = _session(farm)
    text = page.get(f"/jobs/{job['id']}").text
    assert f'data-action="/api/v1/jobs/{job["id"]}/release"' in text and ">Release</button>" in text
    page.close()

    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["job", str(job["id"])], env=env)
    assert out.exit_code == 0 and "scout frames 1, 5 (fml:2): 3 tasks held (manual release)" in out.output
    out = CliRunner().invoke(app, ["release", str(job["id"]), "render", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"job_id": job["id"], "layers": ["render"]}
    assert sorted(_run_one(agent, "succeeded")["frames"] for _ in range(3)) == ["2", "3", "4"]
    out = CliRunner().invoke(app, ["wait", str(job["id"]), "--timeout", "20"], env=env)
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(app, ["release", str(job["id"])], env=env)
    assert out.exit_code == 1 and "holds no tasks to release" in out.output


def test_auto_chunks_shown_on_the_layer_the_cli_and_the_page(farm: Any) -> None:
    job = farm.api.post("/jobs", {"name": "auto", "project": "default", "layers": [
        {"name": "render", "frames": "1-9", "chunk": "auto", "max_chunk": 4, "args": {"command": ["true"]}}]})
    layer = farm.api.get(f"/jobs/{job['id']}")["layers"][0]
    assert layer["chunk_decision"]["status"] == "measuring" and layer["scout"]["probes"] is True
    agent = _agent(farm)
    assert sorted(_run_one(agent, "succeeded")["frames"] for _ in range(3)) == ["1", "5", "9"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["layers"][0]["chunk_decision"]["status"] == "decided")
    layer = farm.api.get(f"/jobs/{job['id']}")["layers"][0]
    assert layer["chunk"] == 4 and layer["total_tasks"] == 5   # 1, 2-4, 5, 6-8, 9: instant frames, capped at 4
    page = _session(farm)
    assert "chunk: auto → 4" in page.get(f"/jobs/{job['id']}").text
    page.close()
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["job", str(job["id"])], env=env)
    assert out.exit_code == 0 and "chunk: auto -> 4" in out.output
