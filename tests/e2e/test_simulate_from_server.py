"""`thresher simulate --from-server`: a real server with a few jobs, read through the API, simulated from now.

Two nodes of 2 cores registered by real agents, then killed (their nodes stay up until the node
timeout, so the farm's queue stays as it was while the test reads it). One job ran part of its tasks
first, so its layer has an estimate to draw frame times from; one waits on another; one takes a
service's cores; a paused one is left out."""

from __future__ import annotations

import json
import signal
from typing import Any, Callable

import pytest
import yaml
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.api import Thresher
from thresher.sim.snapshot import merged, read_farm, scenario_of

pytestmark = pytest.mark.timeout(120)


def _layer(name: str, frames: str, seconds: float = 0, **kw: Any) -> dict[str, Any]:
    return {"name": name, "frames": frames, "retries": 0, "args": {"command": ["sleep", str(seconds)]}, **kw}


def test_a_live_farms_queue_simulated_from_now(make_farm: Callable[..., Any], tmp_path: Any) -> None:
    farm = make_farm(node_timeout=600)
    api = Thresher(farm.server_url, farm.admin_token)
    api.add_project("alpha", weight=2)
    api.add_project("beta", weight=1)
    api.add_limit("nuke", max_total=1)
    api.add_service("comp", {"resources": {"cores": 2}, "limits": {"nuke": 1}})
    farm.start_agent("n1", cores=1)
    half = api.submit({"name": "half", "project": "alpha", "layers": [_layer("render", "1-6", 0.5)]}).id
    farm.wait_for(lambda: api.job(half).counts.succeeded >= 2, timeout=60, interval=0.1)
    farm.kill_agent("n1", signal.SIGKILL, tree=True)   # its node stays up; what it ran is the estimate
    farm.start_agent("n2", cores=3)
    farm.kill_agent("n2", signal.SIGKILL, tree=True)
    first = api.submit({"name": "first", "project": "alpha", "layers": [_layer("r", "1-4")]}).id
    then = api.submit({"name": "then", "project": "alpha", "depends_on": [first],
                       "layers": [_layer("comp", "1-2", service="comp")]}).id
    other = api.submit({"name": "other", "project": "beta", "layers": [_layer("r", "1-4", chunk=2)]}).id
    paused = api.submit({"name": "held", "project": "beta", "layers": [_layer("r", "1-3")]}).id
    api.pause(paused)
    left = 6 - api.job(half).counts.succeeded

    snapshot = scenario_of(read_farm(api), frame_time_s=10)
    nodes = sorted((g["count"], g["cores"]) for g in snapshot["nodes"])
    assert nodes == [(1, 1), (1, 3)]
    assert {p["name"]: p["weight"] for p in snapshot["projects"]}.items() >= {"alpha": 2, "beta": 1}.items()
    assert snapshot["services"] == [{"name": "comp", "defaults": {"resources": {"cores": 2}, "limits": {"nuke": 1}}}]
    jobs = {j["name"]: j for j in snapshot["jobs"]}
    assert sorted(jobs) == sorted(f"job{i}-{n}" for i, n in ((half, "half"), (first, "first"), (then, "then"),
                                                             (other, "other")))   # not the paused one
    (render,) = jobs[f"job{half}-half"]["layers"]
    assert render["frames"] == left and render["frame_time"]["dist"] == "lognormal"
    assert 0.4 < render["frame_time"]["seconds"] < 5   # `sleep 0.5` as this farm ran it
    (comp,) = jobs[f"job{then}-then"]["layers"]
    assert (comp["cores"], comp["limits"], comp["frame_time"]) == (2, {"nuke": 1}, {"dist": "fixed", "seconds": 10})
    assert jobs[f"job{then}-then"]["depends_on"] == [f"job{first}-first"]
    assert jobs[f"job{other}-other"]["layers"][0]["chunk"] == 2
    scenario = merged(snapshot)
    assert sum(g.count for g in scenario.nodes) == 2

    # the CLI: `--from-server URL`, the same JSON as a scenario's, and `--nodes` on the farm's groups
    runner = CliRunner()
    group = next(g["name"] for g in snapshot["nodes"] if g["cores"] == 3)
    result = runner.invoke(app, ["simulate", "--from-server", farm.server_url, "--token", farm.admin_token,
                                 "--frame-time", "10", "--json", "--nodes", f"{group}=+2"])
    assert result.exit_code == 0, result.output
    now, more = json.loads(result.output)["runs"]
    assert now["tasks"] == left + 4 + 2 + 2 and now["unfinished_jobs"] == 0
    ends = {j["name"]: j["finished"] for j in now["jobs"]}
    assert ends[f"job{then}-then"] >= ends[f"job{first}-first"] + 10   # after what it waits for
    assert more["makespan"] < now["makespan"]

    # a scenario laid over the farm: its settings, and a job it adds
    extra = tmp_path / "next-week.yaml"
    extra.write_text(yaml.safe_dump({"seed": 3, "tick_s": 1, "jobs": [
        {"name": "show", "project": "beta", "at": 30, "layers": [{"name": "r", "frames": 3, "service": "comp"}]}]}))
    result = runner.invoke(app, ["simulate", str(extra), "--from-server", "--server", farm.server_url,
                                 "--token", farm.admin_token, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [j for j in body["jobs"] if j["name"] == "show"][0]["state"] == "succeeded"
    assert body["licence_peak"] == {"nuke": 1}
