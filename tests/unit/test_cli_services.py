"""The `thresher service` commands against a fake server: what they send, and `--json` printing the
server's answer back (tests/api/test_services.py runs the calls on a real server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.unit.test_cli_commands import FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared

SERVICE = {"name": "maya", "created_at": "2026-01-01T00:00:00Z", "defaults": {
    "resources": {"cores": 4, "memory_mb": 8192, "gpus": 1}, "tags": ["t"], "pools": ["p"], "limits": {"nuke": 1},
    "timeout": 3600.0, "retries": 3}}


def _json(*args: str) -> Any:
    result = run(*args, "-s", "http://x", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_the_service_commands() -> None:
    assert "service" in run("--help").stdout
    out = run("service", "--help").stdout
    for name in ("add", "list", "show", "set", "remove"):
        assert name in out


def test_services(fake: FakeServer) -> None:
    fake.routes[("POST", "/services")] = lambda req: httpx.Response(201, json=SERVICE)
    fake.routes[("GET", "/services")] = page(SERVICE)
    fake.routes[("GET", "/services/maya")] = SERVICE
    fake.routes[("PATCH", "/services/maya")] = SERVICE
    fake.routes[("DELETE", "/services/maya")] = SERVICE
    assert _json("service", "add", "maya", "--cores", "4", "--memory", "8G", "--gpus", "1", "--tag", "t",
                 "--pool", "p", "--limit", "nuke=1", "--timeout", "3600", "--retries", "3") == SERVICE
    assert fake.last_json() == {"name": "maya", "defaults": {
        "resources": {"cores": 4, "memory": "8G", "gpus": 1}, "tags": ["t"], "pools": ["p"], "limits": {"nuke": 1},
        "timeout": 3600.0, "retries": 3}}
    assert _json("service", "list") == {"items": [SERVICE], "total": 1}
    listed = run("service", "list", "-s", "http://x")
    assert listed.exit_code == 0 and "maya" in listed.stdout and "cores=4" in listed.stdout
    assert _json("service", "show", "maya") == SERVICE
    assert _json("service", "set", "maya", "--retries", "1", "--clear", "timeout") == SERVICE
    assert fake.last_json() == {"defaults": {"retries": 1}, "clear": ["timeout"]}  # only what was given
    assert _json("service", "remove", "maya") == SERVICE
    assert fake.requests[-1].method == "DELETE"
    bad = run("service", "add", "maya", "--limit", "nuke", "-s", "http://x")
    assert bad.exit_code == 2 and "NAME=UNITS" in bad.output


def test_a_refused_service_names_the_field(fake: FakeServer) -> None:
    fake.routes[("POST", "/services")] = lambda req: httpx.Response(422, json={
        "detail": "invalid service defaults", "errors": [{"field": "defaults.pools", "message": "no pool named 'p'"}]})
    result = run("service", "add", "maya", "--pool", "p", "-s", "http://x")
    assert result.exit_code != 0 and "defaults.pools" in result.output
