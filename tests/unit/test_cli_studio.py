"""The studio scheduling commands against a fake server: what they send, and `--json` printing the
server's answer back (tests/api/test_studio_admin.py runs the calls on a real server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.unit.test_cli_commands import JOB, NODE, FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared

from thresher.cli import common
from thresher.cli.demo import ensure_demo_project

STAKE = {"pool": "default", "guaranteed_cores": 4, "max_cores": 16, "guaranteed_gpus": 0, "max_gpus": None,
         "running_cores": 2, "running_gpus": 0}
FOLDER = {"id": 3, "name": "seq010", "priority": 5, "min_cores": None, "max_cores": 8, "running_cores": 0}
PROJECT = {"id": 2, "name": "show", "weight": 2.0, "max_cores": 40, "max_gpus": None, "running_cores": 2,
           "running_gpus": 0, "stakes": [STAKE], "folders": [FOLDER]}
POOL = {"name": "default", "nodes": 1, "cores": 8, "running_cores": 2, "running_gpus": 0}
LIMIT = {"name": "nuke", "max_total": 2, "max_per_node": None, "in_use": 1}


def _json(*args: str) -> Any:
    result = run(*args, "-s", "http://x", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_the_studio_commands() -> None:
    result = run("--help")
    for name in ("project", "folder", "pool", "limit", "stake", "urgent", "move"):
        assert name in result.stdout
    assert "pool" in run("node", "--help").stdout


def test_projects(fake: FakeServer) -> None:
    fake.routes[("GET", "/projects")] = page(PROJECT)
    fake.routes[("GET", "/projects/show")] = PROJECT
    fake.routes[("POST", "/projects")] = lambda req: httpx.Response(201, json=PROJECT)
    fake.routes[("PATCH", "/projects/show")] = PROJECT
    assert _json("project", "list") == {"items": [PROJECT], "total": 1}
    assert "show" in run("project", "list", "-s", "http://x").stdout
    fake.routes[("GET", "/projects/show/members")] = {"project": "show", "members": ["alice"]}
    assert _json("project", "show", "show") == {**PROJECT, "members": ["alice"]}
    assert "members: alice" in run("project", "show", "show", "-s", "http://x").stdout
    assert "seq010" in run("project", "show", "show", "-s", "http://x").stdout
    assert _json("project", "add", "show", "--weight", "2", "--max-cores", "40") == PROJECT
    assert fake.last_json() == {"name": "show", "weight": 2.0, "max_cores": 40, "max_gpus": None}
    assert _json("project", "set", "show", "--weight", "3", "--max-gpus", "none") == PROJECT
    assert fake.last_json() == {"weight": 3.0, "max_gpus": None}  # only what was given; `none` removes a cap
    bad = run("project", "set", "show", "--max-cores", "lots", "-s", "http://x")
    assert bad.exit_code == 2 and "--max-cores" in bad.output


def test_folders_and_stakes(fake: FakeServer) -> None:
    fake.routes[("POST", "/projects/show/folders")] = lambda req: httpx.Response(201, json=PROJECT)
    fake.routes[("PATCH", "/projects/show/folders/seq010")] = PROJECT
    fake.routes[("PUT", "/projects/show/pools/default")] = PROJECT
    assert _json("folder", "add", "show", "seq010", "--priority", "5", "--max-cores", "8") == PROJECT
    assert fake.last_json() == {"name": "seq010", "priority": 5, "min_cores": None, "max_cores": 8}
    assert _json("folder", "set", "show", "seq010", "--priority", "9") == PROJECT
    assert fake.last_json() == {"priority": 9}
    assert _json("stake", "show", "default", "--guaranteed", "4", "--max", "16") == PROJECT
    assert fake.last_json() == {"guaranteed_cores": 4, "max_cores": 16, "guaranteed_gpus": 0, "max_gpus": None}
    result = run("stake", "show", "default", "--guaranteed", "4", "-s", "http://x")
    assert result.exit_code == 0 and "4 cores guaranteed" in result.stdout


def test_pools_and_a_nodes_pool(fake: FakeServer) -> None:
    fake.routes[("GET", "/pools")] = page(POOL)
    fake.routes[("GET", "/pools/default")] = {**POOL, "members": [NODE]}
    fake.routes[("POST", "/nodes/n1/pool")] = {**NODE, "pool": "gpu"}
    assert _json("pool", "list") == {"items": [POOL], "total": 1}
    assert _json("pool", "show", "default") == {**POOL, "members": [NODE]}
    assert "n1" in run("pool", "show", "default", "-s", "http://x").stdout
    assert _json("node", "pool", "n1", "gpu")["pool"] == "gpu"
    assert fake.last_json() == {"pool": "gpu"}
    assert run("node", "pool", "n1", "gpu", "-s", "http://x").stdout == "node n1: pool gpu\n"


def test_limits(fake: FakeServer) -> None:
    fake.routes[("GET", "/limits")] = page(LIMIT)
    fake.routes[("POST", "/limits")] = lambda req: httpx.Response(201, json=LIMIT)
    fake.routes[("PATCH", "/limits/nuke")] = LIMIT
    fake.routes[("DELETE", "/limits/nuke")] = LIMIT
    assert _json("limit", "list") == {"items": [LIMIT], "total": 1}
    assert "nuke" in run("limit", "list", "-s", "http://x").stdout
    assert _json("limit") == {"items": [LIMIT], "total": 1}  # a group with a `list` lists when named alone or with options only
    assert "nuke" in run("limit", "-s", "http://x").stdout
    assert "Commands" in run("limit", "-h").stdout and "Commands" in run("limit", "--help").stdout
    assert "1 licence limit" in run("limit", "-s", "http://x").stdout  # how many, or for none what adds one
    fake.routes[("GET", "/limits")] = page()
    assert "no licence limits yet: `thresher limit add NAME --max N` adds one" in run("limit", "-s", "http://x").stdout
    assert _json("limit", "add", "nuke", "--max", "2") == LIMIT
    assert fake.last_json() == {"name": "nuke", "max_total": 2, "max_per_node": None}
    assert _json("limit", "set", "nuke", "--per-node", "none") == LIMIT
    assert fake.last_json() == {"max_per_node": None}
    assert _json("limit", "remove", "nuke") == LIMIT
    assert fake.requests[-1].method == "DELETE"
    assert _json("limit", "rm", "nuke") == LIMIT  # the old name still works
    assert " rm " not in run("limit", "--help").stdout  # but `remove` is the one shown, as for services and nodes
    assert run("limit", "add", "nuke", "-s", "http://x").exit_code == 2  # --max is required


def test_a_refused_removal_says_why(fake: FakeServer) -> None:
    fake.routes[("DELETE", "/limits/nuke")] = lambda req: httpx.Response(
        409, json={"detail": "limit 'nuke' has 1 units in use", "errors": []})
    result = run("limit", "rm", "nuke", "-s", "http://x")
    assert result.exit_code == 1 and "in use" in result.output


def test_urgent_and_move(fake: FakeServer) -> None:
    urgent = {**JOB, "urgent": True, "urgent_by": "ana", "urgent_at": "2024-01-01T10:00:00Z", "folder": None}
    fake.routes[("POST", "/jobs/7/urgent")] = lambda req: httpx.Response(
        200, json=urgent if json.loads(req.content)["urgent"] else {**JOB, "urgent": False})
    fake.routes[("POST", "/jobs/7/move")] = {**JOB, "folder": "late"}
    assert _json("urgent", "7")["urgent_by"] == "ana"
    assert fake.last_json() == {"urgent": True}
    assert run("urgent", "7", "--off", "-s", "http://x").stdout == "job 7: not urgent\n"
    assert fake.last_json() == {"urgent": False}
    assert _json("move", "7", "late")["folder"] == "late"
    assert fake.last_json() == {"folder": "late"}


def test_the_demo_makes_its_project_when_the_farm_lacks_it(fake: FakeServer) -> None:
    fake.routes[("GET", "/projects")] = page(PROJECT)
    fake.routes[("POST", "/projects")] = lambda req: httpx.Response(201, json={**PROJECT, "name": "demo"})
    with common.Thresher("http://x", None) as client:
        ensure_demo_project(client)
        assert fake.requests[-1].method == "POST" and fake.last_json()["name"] == "demo"
        fake.routes[("GET", "/projects")] = page({**PROJECT, "name": "demo"})
        ensure_demo_project(client)
        assert fake.requests[-1].method == "GET"  # there already: nothing made


USAGE = {"project": "show", "since": "2026-01-01T00:00:00Z", "sample_s": 30.0, "series": [
    {"key": "project:2", "kind": "project", "name": "show", "points": [
        {"at": "2026-01-01T00:00:30Z", "cores": 4, "gpus": 0, "units": 0},
        {"at": "2026-01-01T00:01:00Z", "cores": 2, "gpus": 0, "units": 0}]},
    {"key": "folder:3", "kind": "folder", "name": "seq010", "points": []}]}


def test_project_usage_and_jobs_by_folder(fake: FakeServer) -> None:
    fake.routes[("GET", "/projects/show/usage")] = USAGE
    assert _json("project", "usage", "show", "--minutes", "10") == USAGE
    assert "since" in fake.requests[-1].url.params
    shown = run("project", "usage", "show", "-s", "http://x").stdout
    assert "seq010" in shown and "every 30 s" in shown
    assert [line.split()[:5] for line in shown.splitlines() if line.split()[:1] == ["project"]][1:] == [
        ["project", "show", "2", "2", "4"]]
    fake.routes[("GET", "/jobs")] = page(JOB)
    assert _json("jobs", "--folder", "seq010")["total"] == 1
    assert fake.requests[-1].url.params["folder"] == "seq010"
