"""CLI parsing, output shape and error handling, against a fake server (httpx.MockTransport).

These check what the commands send and print; tests/e2e/test_cli_*.py run them against a real farm.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from thresher.cli import common
from thresher.cli.main import app
from thresher.client.api import Thresher
from thresher.client.http import HttpClient

COUNTS = {"waiting": 0, "held": 0, "ready": 1, "running": 1, "succeeded": 2, "failed": 0, "paused": 0, "killed": 0, "skipped": 0}
# The server's answers in full: the CLI parses them with the wire models and `--json` prints them back.
SUMMARY = {
    "id": 7, "name": "shot", "owner": "ana", "submitted_by": None, "project": "demo", "sequence": None, "shot": None,
    "priority": 50,
    "state": "running", "paused": False, "submitted_at": "2024-01-01T10:00:00Z", "finished_at": None,
    "counts": COUNTS, "total_tasks": 4, "progress": 50.0, "archived_at": None, "stats": None,
}
JOB: dict[str, Any] = {
    **SUMMARY,
    "layers": [{"id": 1, "name": "main", "template": "command", "frames": "1-4", "chunk": 1, "cores": 1,
                "memory_mb": 512, "gpus": 0, "tags": [], "pools": [], "limits": {}, "retries": 2, "timeout": None, "service": None,
                "depends_on": [], "state": "running", "paused": False, "counts": COUNTS, "total_tasks": 4,
                "progress": 50.0,
                "pending": None, "estimate": {
                    "task_s": 90.0, "low_s": 60.0, "high_s": 120.0, "samples": 2, "eta_s": 180.0,
                    "eta_at": "2024-01-01T10:03:00Z", "confidence": "rough", "basis": "2 finished tasks",
                    "reason": None}, "scout": None, "chunk_decision": None}],
    "depends_on": [], "spec": {}, "pending": None, "urgent": False, "urgent_by": None, "urgent_at": None,
    "folder": None,
    "failures": 4,
    "stop_reason": "stopped after 4 failed attempts (the job's limit is 3): fix and retry or resume",
    "blocklist": [{"node_id": 3, "node": "n1", "failures": 3, "blocked": True,
                   "last_failed_at": "2024-01-01T10:00:05Z"}],
    "estimate": {"task_s": None, "low_s": None, "high_s": None, "samples": 2, "eta_s": 1500.0,
                 "eta_at": "2024-01-01T10:25:00Z", "confidence": "rough", "basis": "2 finished tasks", "reason": None},
}
TASK = {"id": 11, "job_id": 7, "layer_id": 1, "layer": "main", "index": 0, "frames": "1", "state": "succeeded",
        "tries": 1, "lost": 0, "node": "n1", "attempt_id": 21, "progress": 100.0, "started_at": "2024-01-01T10:00:00Z",
        "ended_at": "2024-01-01T10:00:05Z", "part": None, "reason": None}
ATTEMPT = {"id": 21, "task_id": 11, "number": 1, "node": "n1", "state": "succeeded",
           "started_at": "2024-01-01T10:00:00Z", "ended_at": "2024-01-01T10:00:05Z", "exit_code": 0, "cpu_s": 4.5,
           "peak_rss_mb": 120.0, "reason": None, "log_size": 6, "gpus": []}
NODE = {"id": 3, "name": "n1", "hostname": "n1", "os": "linux", "state": "up", "admin_state": "enabled",
        "cores": 8, "memory_mb": 16384, "gpus": [], "tags": ["linux"], "apps": {}, "pool": "default", "mac": "52:54:00:ab:cd:ef",
        "last_seen": "2024-01-01T10:00:00Z", "registered_at": "2024-01-01T09:00:00Z",
        "cpu_percent": 12.0, "memory_used_mb": 1000, "load": 0.5, "running": [],
        "free": {"cores": 8, "memory_mb": 16384, "gpus": 0}, "blocklisted_by": [7],
        "speed": {"speed": 1.25, "layers": 3, "samples": 40}}
DRY_TASK = {"layer": "a", "index": 0, "frames": "1", "argv": ["echo", "1"], "shell": False, "outputs": []}


def page(*items: Any) -> dict[str, Any]:
    return {"items": list(items), "total": len(items)}


class FakeServer:
    """Records requests; answers from `routes` keyed by (method, path)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response] | Any] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api/v1")
        answer = self.routes.get((request.method, path))
        if answer is None:
            return httpx.Response(404, json={"detail": f"no route {request.method} {path}", "errors": []})
        if callable(answer):
            return answer(request)
        return httpx.Response(200, json=answer)

    def last_json(self) -> Any:
        return json.loads(self.requests[-1].content or b"null")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> FakeServer:
    server = FakeServer()
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    monkeypatch.delenv("THRESHER_SERVER", raising=False)
    monkeypatch.delenv("THRESHER_TOKEN", raising=False)

    def make(server_url: str, token: str | None, **_: Any) -> Thresher:
        http = HttpClient(server_url, token)
        http._http = httpx.Client(base_url=http.server + "/api/v1", transport=httpx.MockTransport(server),
                                  headers={"Authorization": f"Bearer {token}"} if token else {})
        return Thresher(http=http)

    monkeypatch.setattr(common, "Thresher", make)
    return server


runner = CliRunner()


def run(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("up", "server", "agent", "demo", "submit", "submit-cmd", "jobs", "job", "tasks", "log", "wait",
                 "kill", "pause", "resume", "retry", "skip", "priority", "nodes", "node", "templates"):
        assert name in result.stdout


def test_submit_cmd_builds_a_command_job_and_prints_the_id(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = lambda req: httpx.Response(201, json={**JOB, "id": 42})
    result = run("submit-cmd", "--server", "http://x", "--token", "tok", "--frames", "1-100", "--chunk", "10",
                 "--cores", "2", "--name", "n", "--project", "p", "--priority", "80",
                 "--", "prog", "-v", "{start}", "{end}")
    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"
    request = fake.requests[-1]
    assert request.headers["Authorization"] == "Bearer tok"
    assert str(request.url) == "http://x/api/v1/jobs"
    spec = fake.last_json()
    assert spec["name"] == "n" and spec["project"] == "p" and spec["priority"] == 80
    layer = spec["layers"][0]
    assert layer["args"]["command"] == ["prog", "-v", "{start}", "{end}"]
    assert (layer["frames"], layer["chunk"], layer["resources"]["cores"]) == ("1-100", 10, 2)


def test_submit_cmd_places_the_job_in_the_studio(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = {**JOB, "id": 7}
    result = run("submit-cmd", "-s", "http://x", "-p", "comms", "--folder", "sq010", "--pools", "farm, gpu",
                 "--limit", "nuke=2", "--limit", "houdini", "--service", "nuke", "--", "true")
    assert result.exit_code == 0, result.output
    spec = fake.last_json()
    assert (spec["project"], spec["folder"]) == ("comms", "sq010")
    layer = spec["layers"][0]
    assert (layer["pools"], layer["limits"], layer["service"]) == (["farm", "gpu"], {"nuke": 2, "houdini": 1}, "nuke")


def test_submit_cmd_refuses_a_limit_it_cannot_read(fake: FakeServer) -> None:
    result = run("submit-cmd", "-s", "http://x", "--limit", "nuke=two", "--", "true")
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "--limit" in said and "whole number" in said
    assert not fake.requests


def test_submit_cmd_without_dashes_keeps_program_options(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = {**JOB, "id": 5}
    result = run("submit-cmd", "-s", "http://x", "--frames", "1-3", "echo", "-n", "--json", "{frame}")
    assert result.exit_code == 0, result.output
    assert fake.last_json()["layers"][0]["args"]["command"] == ["echo", "-n", "--json", "{frame}"]
    assert result.stdout == "5\n"


def test_submit_cmd_json_prints_an_object_with_id(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = {**JOB, "id": 5}
    result = run("submit-cmd", "-s", "http://x", "--json", "--", "true")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == 5


def test_submit_cmd_shell(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = {**JOB, "id": 5}
    result = run("submit-cmd", "-s", "http://x", "--shell", "--", "echo {frame} | wc -c")
    assert result.exit_code == 0
    assert fake.last_json()["layers"][0]["args"] == {"command": "echo {frame} | wc -c", "shell": True}


def test_submit_cmd_without_command_is_a_usage_error(fake: FakeServer) -> None:
    result = run("submit-cmd", "-s", "http://x")
    assert result.exit_code == 2
    assert not fake.requests


def test_submit_file_and_dry_run(fake: FakeServer, tmp_path: Any) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: j\nlayers:\n  - name: a\n    args: {command: [echo, '{frame}']}\n")
    fake.routes[("POST", "/jobs")] = lambda req: (
        httpx.Response(200, json={"valid": True, "errors": [], "warnings": [], "total_tasks": 1, "tasks": [DRY_TASK]})
        if req.url.params.get("dry_run") == "true" else httpx.Response(201, json={**JOB, "id": 9}))
    result = run("submit", str(spec), "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "9\n"
    assert fake.last_json() == {"name": "j", "layers": [{"name": "a", "args": {"command": ["echo", "{frame}"]}}],
                                "owner": getpass.getuser()}  # the submitting person owns the job
    # with a person's token the job is that person's: the server makes it so (an artist whose login is
    # not the account's name was refused for submitting on behalf of the account)
    fake.routes[("GET", "/whoami")] = {"kind": "user", "name": "ana.silva", "node_id": None, "role": "artist"}
    assert run("submit", str(spec), "-s", "http://x").exit_code == 0
    assert "owner" not in fake.last_json()
    fake.routes[("GET", "/whoami")] = {"kind": "admin", "name": "admin", "node_id": None, "role": "admin"}
    assert run("submit", str(spec), "-s", "http://x").exit_code == 0
    assert fake.last_json()["owner"] == getpass.getuser()  # the farm's admin token is no one's: the account's
    result = run("submit", str(spec), "-s", "http://x", "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "errors": [], "warnings": [], "total_tasks": 1,
                                         "tasks": [DRY_TASK], "layers": []}
    result = run("submit", str(spec), "-s", "http://x", "--dry-run")
    assert result.exit_code == 0 and "echo 1" in result.stdout and "1 task" in result.stdout
    fake.routes[("POST", "/jobs")] = lambda req: httpx.Response(200, json={
        "valid": True, "errors": [], "warnings": [], "total_tasks": 1_000_000, "tasks": [DRY_TASK]})
    shown = run("submit", str(spec), "-s", "http://x", "--dry-run").stdout
    assert "the first 1 of 1,000,000" in shown and "1 task\n" not in shown  # not "1 task", under a list it cut


def test_submit_reads_stdin(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = {**JOB, "id": 3}
    result = run("submit", "-", "-s", "http://x", input='{"name": "j", "layers": [{"name": "a"}]}')
    assert result.exit_code == 0 and result.stdout == "3\n"


def test_bad_yaml_is_one_clear_error(fake: FakeServer, tmp_path: Any) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: [unclosed\n")
    result = run("submit", str(spec), "-s", "http://x")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: {spec}, line" in result.stderr
    assert "Traceback" not in result.output
    assert not fake.requests


def test_api_error_prints_detail_and_fields(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = lambda req: httpx.Response(422, json={
        "detail": "the job spec is not valid",
        "errors": [{"field": "layers.0.frames", "message": "cannot read frame spec 'x'"}]})
    result = run("submit-cmd", "-s", "http://x", "-t", "t", "--frames", "x", "--", "true")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["error: the job spec is not valid",
                                          "  layers.0.frames: cannot read frame spec 'x'"]


def test_missing_token_gets_a_hint(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs")] = lambda req: httpx.Response(401, json={"detail": "missing token", "errors": []})
    result = run("jobs", "-s", "http://x")
    assert result.exit_code == 1
    assert "error: missing token" in result.stderr
    assert "hint:" in result.stderr


def test_unreachable_server_is_one_line(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    result = run("jobs", "--server", "http://127.0.0.1:9", "--token", "t")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach Thresher server at http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_jobs_json_is_the_api_answer_and_passes_filters(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs")] = page(SUMMARY)
    result = run("jobs", "-s", "http://x", "--state", "running", "--project", "demo", "--owner", "ana",
                 "--name", "sh", "--limit", "5", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == page(SUMMARY)
    params = dict(fake.requests[-1].url.params)
    assert params == {"state": "running", "project": "demo", "owner": "ana", "name": "sh", "limit": "5",
                      "sort": "-id"}
    # --mine: the logged-in person's jobs; with the farm's admin token (no one's), this account's
    fake.routes[("GET", "/whoami")] = {"kind": "user", "name": "ana.silva", "node_id": None, "role": "artist"}
    assert run("jobs", "-s", "http://x", "--mine", "--json").exit_code == 0
    assert fake.requests[-1].url.params["owner"] == "ana.silva"
    fake.routes[("GET", "/whoami")] = {"kind": "admin", "name": "admin", "node_id": None, "role": "admin"}
    assert run("jobs", "-s", "http://x", "--mine", "--json").exit_code == 0
    assert fake.requests[-1].url.params["owner"] == getpass.getuser()
    both = run("jobs", "-s", "http://x", "--mine", "--owner", "bob")
    assert both.exit_code == 2 and "give --mine or --owner, not both" in both.output


def test_jobs_table(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs")] = page(SUMMARY)
    result = run("jobs", "-s", "http://x")
    assert result.exit_code == 0
    assert "shot" in result.stdout and "running" in result.stdout and "2/4" in result.stdout


def test_job_view_and_json(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/7")] = JOB
    result = run("job", "7", "-s", "http://x")
    assert result.exit_code == 0
    assert "main" in result.stdout and "50%" in result.stdout
    assert "stopped after 4 failed attempts" in result.stdout and "n1 blocked" in result.stdout
    assert "about 25 min, from 2 finished tasks, rough" in result.stdout and "~2 min/task" in result.stdout
    assert json.loads(run("job", "7", "-s", "http://x", "--json").stdout) == JOB


def test_blocklist_shows_and_clears(fake: FakeServer) -> None:
    listed = {"job_id": 7, "items": JOB["blocklist"]}
    fake.routes[("GET", "/jobs/7/blocklist")] = listed
    fake.routes[("DELETE", "/jobs/7/blocklist/n1")] = {"job_id": 7, "items": []}
    result = run("blocklist", "7", "-s", "http://x")
    assert result.exit_code == 0 and "n1" in result.stdout and "1 of 1 nodes blocked" in result.stdout
    assert json.loads(run("blocklist", "7", "-s", "http://x", "--json").stdout) == listed
    cleared = run("blocklist", "7", "--clear", "--node", "n1", "-s", "http://x", "--json")
    assert cleared.exit_code == 0 and json.loads(cleared.stdout) == {"job_id": 7, "items": []}


def test_a_job_is_an_id_or_a_name(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs")] = page()
    result = run("tasks", "abc", "-s", "http://x")  # a command on one job takes its exact name too
    assert result.exit_code == 1 and "no job is named 'abc'" in result.stderr
    named = run("job", "abc", "-s", "http://x")  # `job` takes names too (tests/unit/test_cli_watch.py)
    assert named.exit_code == 1 and "no job matches the name 'abc'" in named.stderr


def test_tasks(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/7/tasks")] = page(TASK)
    result = run("tasks", "7", "-s", "http://x", "--layer", "main", "--state", "succeeded", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == page(TASK)
    assert dict(fake.requests[-1].url.params) == {"layer": "main", "state": "succeeded"}
    assert "n1" in run("tasks", "7", "-s", "http://x").stdout


@pytest.mark.parametrize("state,code", [("succeeded", 0), ("failed", 1), ("killed", 1)])
def test_wait_exit_codes(fake: FakeServer, state: str, code: int) -> None:
    fake.routes[("GET", "/jobs/7")] = {**JOB, "state": state}
    result = run("wait", "7", "-s", "http://x")
    assert result.exit_code == code
    assert result.stdout == f"job 7 {state}\n"


def test_wait_timeout_exits_2(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/7")] = JOB
    result = run("wait", "7", "-s", "http://x", "--timeout", "0.2")
    assert result.exit_code == 2
    assert "timeout" in result.stderr


@pytest.mark.parametrize("command,path", [("kill", "/jobs/7/kill"), ("pause", "/jobs/7/pause"),
                                          ("resume", "/jobs/7/resume")])
def test_job_actions(fake: FakeServer, command: str, path: str) -> None:
    fake.routes[("POST", path)] = {**JOB, "state": "killed"}
    result = run(command, "7", "-s", "http://x")
    assert result.exit_code == 0
    assert result.stdout.startswith("job 7: killed")
    assert fake.requests[-1].url.path == "/api/v1" + path


def test_a_killed_paused_job_reads_killed_and_a_layer_action_names_the_layer(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/kill")] = {**JOB, "state": "killed", "paused": True}
    assert run("kill", "7", "-s", "http://x").stdout == "job 7: killed, priority 50\n"  # the pause no longer matters
    paused_layer = {**JOB["layers"][0], "state": "paused", "paused": True}
    fake.routes[("POST", "/jobs/7/layers/main/pause")] = {**JOB, "layers": [paused_layer]}
    assert run("pause", "7", "--layer", "main", "-s", "http://x").stdout == "job 7 layer main: paused; job running\n"


def test_retry_with_and_without_tasks(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/retry")] = JOB
    assert run("retry", "7", "-s", "http://x").exit_code == 0
    assert fake.last_json() == {}
    assert run("retry", "7", "--task", "11", "--task", "12", "-s", "http://x").exit_code == 0
    assert fake.last_json() == {"task_ids": [11, 12]}


def test_priority(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/priority")] = {**JOB, "priority": 90}
    result = run("priority", "7", "90", "-s", "http://x", "--json")
    assert result.exit_code == 0
    assert fake.last_json() == {"priority": 90}
    assert json.loads(result.stdout)["priority"] == 90


def test_a_refused_action_names_the_field_the_server_names(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/priority")] = lambda req: httpx.Response(422, json={
        "detail": "invalid request", "errors": [{"field": "priority",
                                                 "message": "Input should be less than or equal to 1000"}]})
    result = run("priority", "7", "5000", "-s", "http://x")
    assert result.exit_code == 1
    assert "error: job 7: invalid request (priority: Input should be less than or equal to 1000)" in result.output


def test_skip(fake: FakeServer) -> None:
    fake.routes[("POST", "/tasks/11/skip")] = {**TASK, "state": "skipped", "attempts": [ATTEMPT]}
    result = run("skip", "11", "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "task 11: skipped\n"


def test_nodes_and_node_actions(fake: FakeServer) -> None:
    fake.routes[("GET", "/nodes")] = page(NODE)
    fake.routes[("POST", "/nodes/n1/drain")] = {**NODE, "admin_state": "draining"}
    fake.routes[("GET", "/nodes/n1")] = NODE
    assert json.loads(run("nodes", "-s", "http://x", "--json").stdout) == {"items": [NODE], "total": 1}  # every page
    assert dict(fake.requests[-1].url.params) == {"limit": "1000", "offset": "0"}
    assert "n1" in run("nodes", "-s", "http://x").stdout
    result = run("node", "drain", "n1", "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "node n1: draining (up)\n"
    shown = run("node", "show", "n1", "-s", "http://x").stdout
    assert "linux" in shown and "1.25x the farm (on 3 layers, 40 tasks)" in shown
    assert run("node", "n1", "-s", "http://x").stdout == shown  # a group with `show` shows what it is given
    typo = run("node", "disabel", "n1", "-s", "http://x")  # close to a command: click says which was meant
    assert typo.exit_code == 2 and "Did you mean 'disable'?" in typo.output


def test_nodes_asks_the_server_for_a_state_and_a_name(fake: FakeServer) -> None:
    """The server filters as the nodes page does (tests/api/test_nodes_page_http.py); the CLI asks for it
    and shows what comes back, and refuses a state no node can be in before asking."""
    down = {**NODE, "id": 4, "name": "rn-b2", "hostname": "blade2", "state": "down"}
    fake.routes[("GET", "/nodes")] = page(down)
    result = run("nodes", "--state", "down", "--name", "rn", "--json", "-s", "http://x")
    assert result.exit_code == 0, result.output
    assert [n["name"] for n in json.loads(result.stdout)["items"]] == ["rn-b2"]
    assert dict(fake.requests[-1].url.params) == {"state": "down", "name": "rn", "limit": "1000", "offset": "0"}
    asked = len(fake.requests)
    bad = run("nodes", "--state", "sleeping", "-s", "http://x")
    assert bad.exit_code == 2 and "unknown state 'sleeping'" in bad.output and "use one of up, busy" in bad.output
    assert len(fake.requests) == asked


def test_node_names_are_quoted_in_paths(fake: FakeServer) -> None:
    fake.routes[("POST", "/nodes/a b/enable")] = NODE
    assert run("node", "enable", "a b", "-s", "http://x").exit_code == 0
    assert fake.requests[-1].url.raw_path == b"/api/v1/nodes/a%20b/enable"


def test_log_of_a_task_uses_its_latest_attempt(fake: FakeServer) -> None:
    fake.routes[("GET", "/tasks/11/attempts")] = page(ATTEMPT, {**ATTEMPT, "id": 22, "number": 2})
    fake.routes[("GET", "/attempts/22/log")] = lambda req: httpx.Response(200, json=(
        {"attempt_id": 22, "offset": 0, "data": "hello\n", "next_offset": 6, "complete": True}
        if req.url.params.get("offset") == "0" else
        {"attempt_id": 22, "offset": 6, "data": "", "next_offset": 6, "complete": True}))
    result = run("log", "11", "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "hello\n"


def test_log_by_attempt_number_and_id(fake: FakeServer) -> None:
    fake.routes[("GET", "/tasks/11/attempts")] = page(ATTEMPT, {**ATTEMPT, "id": 22, "number": 2})
    fake.routes[("GET", "/attempts/21/log")] = {"attempt_id": 21, "offset": 0, "data": "", "next_offset": 0,
                                                "complete": True}
    assert run("log", "11", "--attempt", "1", "-s", "http://x").exit_code == 0
    assert fake.requests[-1].url.path == "/api/v1/attempts/21/log"
    assert run("log", "a21", "-s", "http://x").exit_code == 0
    assert fake.requests[-1].url.path == "/api/v1/attempts/21/log"
    result = run("log", "11", "--attempt", "5", "-s", "http://x")
    assert result.exit_code == 1 and "no attempt 5" in result.stderr


def test_log_follow_reads_until_complete(fake: FakeServer) -> None:
    pieces = iter([
        {"attempt_id": 21, "offset": 0, "data": "a\n", "next_offset": 2, "complete": False},
        {"attempt_id": 21, "offset": 2, "data": "", "next_offset": 2, "complete": False},
        {"attempt_id": 21, "offset": 2, "data": "b\n", "next_offset": 4, "complete": True},
    ])
    fake.routes[("GET", "/attempts/21/log")] = lambda req: httpx.Response(200, json=next(pieces))
    result = run("log", "a21", "-f", "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "a\nb\n"
    assert [r.url.params["offset"] for r in fake.requests] == ["0", "2", "2"]


def test_log_of_a_task_that_never_ran(fake: FakeServer) -> None:
    fake.routes[("GET", "/tasks/11/attempts")] = page()
    result = run("log", "11", "-s", "http://x")
    assert result.exit_code == 1 and "has not run yet" in result.stderr


def test_log_bad_target_is_usage_error() -> None:
    assert run("log", "xyz", "-s", "http://x").exit_code == 2


def test_templates(fake: FakeServer) -> None:
    template = {"name": "command", "description": "Any command",
                "args": {"properties": {"command": {}}, "required": ["command"]}, "apps": {}, "tiles": False}
    fake.routes[("GET", "/templates")] = page(template)
    assert "command*" in run("templates", "-s", "http://x").stdout
    assert json.loads(run("templates", "-s", "http://x", "--json").stdout) == {"items": [template], "total": 1}


def test_env_and_saved_config_are_used(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from thresher.client.config import save_client_config

    fake.routes[("GET", "/jobs")] = page()
    save_client_config("http://saved:1", "saved-token")
    assert run("jobs", "--json").exit_code == 0
    assert str(fake.requests[-1].url).startswith("http://saved:1/api/v1/jobs")
    assert fake.requests[-1].headers["Authorization"] == "Bearer saved-token"
    monkeypatch.setenv("THRESHER_SERVER", "http://env:2")
    monkeypatch.setenv("THRESHER_TOKEN", "env-token")
    assert run("jobs", "--json").exit_code == 0
    assert str(fake.requests[-1].url).startswith("http://env:2/api/v1/jobs")
    assert fake.requests[-1].headers["Authorization"] == "Bearer env-token"


def test_submit_cmd_unknown_option_is_a_usage_error(fake: FakeServer) -> None:
    result = run("submit-cmd", "-s", "http://x", "--frmes", "1-3", "--", "true")
    assert result.exit_code == 2
    assert "--frmes" in result.output
    assert not fake.requests


def test_submit_cmd_dry_run(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs")] = lambda req: httpx.Response(200, json={
        "valid": True, "errors": [], "warnings": [], "total_tasks": 1, "tasks": [{**DRY_TASK, "layer": "main"}]})
    result = run("submit-cmd", "-s", "http://x", "--dry-run", "--json", "--", "echo", "{frame}")
    assert result.exit_code == 0
    assert fake.requests[-1].url.params["dry_run"] == "true"
    assert json.loads(result.stdout)["valid"] is True


def test_submit_dry_run_of_a_refused_spec_prints_its_errors(fake: FakeServer, tmp_path: Any) -> None:
    """The server refuses an invalid spec with 422, dry run or not; `--dry-run` shows that verdict the
    way it shows a valid one: `--json` prints `{"valid": false, "errors": [...]}` on stdout, exit 1."""
    spec = tmp_path / "job.yaml"
    spec.write_text("name: j\nlayers:\n  - name: a\n    resources: {cores: 64}\n    args: {command: [echo]}\n")
    errors = [{"field": "layers.0.resources", "message": "no node can run this layer"},
              {"field": "depends_on.0", "message": "no job with id 7"}]
    fake.routes[("POST", "/jobs")] = lambda req: httpx.Response(422, json={"detail": "invalid job spec", "errors": errors})
    result = run("submit", str(spec), "-s", "http://x", "--dry-run", "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer == {"valid": False, "detail": "invalid job spec", "errors": errors, "warnings": [],
                      "total_tasks": 0, "tasks": [], "layers": []}
    result = run("submit", str(spec), "-s", "http://x", "--dry-run")
    assert result.exit_code == 1
    assert "spec is NOT valid" in result.stdout and "layers.0.resources: no node can run this layer" in result.stdout
    result = run("submit-cmd", "-s", "http://x", "--dry-run", "--json", "--", "echo")
    assert result.exit_code == 1 and json.loads(result.stdout)["valid"] is False
    # without --dry-run a refusal stays an error on stderr
    result = run("submit", str(spec), "-s", "http://x", "--json")
    assert result.exit_code == 1 and result.stdout == "" and "no job with id 7" in result.stderr


def test_why_says_what_each_layer_waits_for(fake: FakeServer) -> None:
    waiting = {**JOB, "state": "queued", "pending": "licence nuke 20/20 in use",
               "layers": [{**JOB["layers"][0], "pending": "licence nuke 20/20 in use"}]}
    fake.routes[("GET", "/jobs/7")] = waiting
    result = run("why", "7", "-s", "http://x")
    assert result.exit_code == 0 and "licence nuke 20/20 in use" in result.stdout and "main" in result.stdout
    assert json.loads(run("why", "7", "-s", "http://x", "--json").stdout) == {
        "job_id": 7, "state": "queued", "pending": "licence nuke 20/20 in use",
        "layers": {"main": "licence nuke 20/20 in use"}}


def test_attempts_lists_a_tasks_tries_and_says_out_of_memory(fake: FakeServer) -> None:
    oom = {**ATTEMPT, "id": 20, "number": 1, "state": "failed", "exit_code": None, "peak_rss_mb": 612.0,
           "memory_mb": 100, "out_of_memory": True,
           "reason": "out of memory: used 612 MB of 100 MB reserved; retrying with 918 MB"}
    fake.routes[("GET", "/tasks/11/attempts")] = page(oom, {**ATTEMPT, "number": 2, "memory_mb": 918})
    result = run("attempts", "11", "--server", "http://farm")
    assert result.exit_code == 0, result.output
    assert "failed out of memory" in result.stdout and "retrying with 918 MB" in result.stdout
    result = run("attempts", "11", "--json", "--server", "http://farm")
    assert [a["out_of_memory"] for a in json.loads(result.stdout)["items"]] == [True, False]


def test_release_lets_a_layer_go_and_answers_json(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/release")] = {"job_id": 7, "layers": ["render"]}
    result = run("release", "7", "render", "--server", "http://s", "--token", "t")
    assert result.exit_code == 0, result.output
    assert "released render" in result.stdout
    assert fake.last_json() == {"layer": "render"}
    result = run("release", "7", "--json", "--server", "http://s", "--token", "t")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"job_id": 7, "layers": ["render"]}
    assert fake.last_json() == {}


def test_release_of_nothing_held_says_why(fake: FakeServer) -> None:
    fake.routes[("POST", "/jobs/7/release")] = lambda req: httpx.Response(
        409, json={"detail": "job 7 holds no tasks to release", "errors": []})
    result = run("release", "7", "--server", "http://s", "--token", "t")
    assert result.exit_code == 1 and "holds no tasks to release" in result.stderr


def test_scout_picks_a_layers_frames_again(fake: FakeServer) -> None:
    fake.routes[("PUT", "/jobs/7/layers/main/scout")] = JOB
    result = run("scout", "7", "main", "1,4", "--manual", "--json", "--server", "http://s", "--token", "t")
    assert result.exit_code == 0, result.output
    assert fake.last_json() == {"scout": "1,4", "release": "manual"} and json.loads(result.stdout)["id"] == 7


def test_every_command_sums_itself_up_in_one_line_and_says_what_each_option_does() -> None:
    """`thresher --help` lists each command with the first paragraph of its help; one that runs over a
    line break shows the break in the middle of the list, so the summary stays one line. An option
    without help is a blank line in `-h`."""
    import typer.main

    def walk(command: Any, path: str) -> list[str]:
        found = [] if "\n" not in (command.help or "").strip().split("\n\n")[0] else [path]
        found += [f"{path} {p.opts[0]}" for p in command.params if p.param_type_name == "option" and not p.help]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    assert walk(typer.main.get_command(app), "thresher") == []


def test_help_shows_no_value_for_a_flag_and_one_value_for_a_repeatable_option() -> None:
    """typer names option values by their Python type: `--json <bool>` read as if the flag took a value
    and `--output <list[str]>` as if it took a list (`common.plain_value_names`, applied as each
    command is looked up for its help)."""
    import typer.main

    def shown_values(group: Any, ctx: typer.Context, path: str) -> dict[str, str]:
        found = {}
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            sub = typer.Context(command, parent=ctx, info_name=name)
            for p in command.get_params(sub):
                found[f"{path} {name} {p.opts[0]}"] = p.display_type_rich(sub) or ""
            if hasattr(command, "commands"):
                found |= shown_values(command, sub, f"{path} {name}")
        return found

    top = typer.main.get_command(app)
    values = shown_values(top, typer.Context(top, info_name="thresher"), "thresher")
    assert len(values) > 300
    assert {k: v for k, v in values.items() if "bool" in v or "list[" in v} == {}
    assert values["thresher submit-cmd --shell"] == "" and values["thresher submit-cmd --output"] == "<str>"
    shown = run("submit-cmd", "--help").output
    options = [line for line in shown.splitlines() if re.match(r"│ +--[a-z]", line)]
    assert any("--output" in line and "<str>" in line for line in options)
    assert [line for line in options if "<bool>" in line or "list[" in line] == []
    # Positional arguments that take several: `{JOB}...` in the usage line, one value's type in the list.
    assert values["thresher kill job_ids"] == "<str>..." and values["thresher skip task_id"] == "<int>..."
    assert values["thresher submit-cmd argv"] == ""  # `-- COMMAND [ARG...]` names it
    kill = run("kill", "--help").output
    assert "Usage: thresher kill [OPTIONS] {JOB}..." in kill and "JOB...}" not in kill
