"""The CLI a wrangler lives in: several jobs per command (ids, names, globs), `thresher task`, failure
summaries from `job` and `wait`, reasons and progress in `tasks`, `log --json`, `--server host:port`,
dates in times not from today, plural wording, shell completion, `from thresher.client import Thresher`.
Against the fake server of test_cli_commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.test_cli_commands import ATTEMPT, JOB, SUMMARY, TASK, FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared

from thresher.cli.views import short_time
from thresher.client.config import resolve, server_url

FAILURES = {"job_id": 7, "state": "failed", "failed_tasks": [4, 5, 6], "failed_attempts": 3, "truncated": False,
            "groups": [{"reason": "exit code 1", "attempts": 3, "tasks": [4, 5, 6], "nodes": ["node-a"],
                        "example": "exit code 1"}],
            "summary": "3 tasks failed — 'exit code 1' x3 on node-a (tasks 4, 5, 6)"}


def _job(job_id: int, name: str, **more: Any) -> dict[str, Any]:
    return {**JOB, "id": job_id, "name": name, **more}


def _listing(fake: FakeServer, *jobs: dict[str, Any]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        needle = request.url.params.get("name") or ""
        found = [{**SUMMARY, "id": j["id"], "name": j["name"]} for j in jobs if needle in j["name"]]
        return httpx.Response(200, json=page(*found))
    fake.routes[("GET", "/jobs")] = answer


def _actions(fake: FakeServer, verb: str, *ids: int) -> None:
    for job_id in ids:
        fake.routes[("POST", f"/jobs/{job_id}/{verb}")] = _job(job_id, f"j{job_id}", state="killed")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def _posted(fake: FakeServer) -> list[str]:
    return [r.url.path.removeprefix("/api/v1") for r in fake.requests if r.method == "POST"]


def test_kill_takes_several_ids(fake: FakeServer) -> None:
    _actions(fake, "kill", 3, 4, 5)
    result = run("kill", "3", "4", "5", "-s", "http://x")
    assert result.exit_code == 0, result.stderr
    assert _posted(fake) == ["/jobs/3/kill", "/jobs/4/kill", "/jobs/5/kill"]
    assert result.stdout.splitlines() == [f"job {i}: killed, priority 50" for i in (3, 4, 5)]
    as_json = run("kill", "3", "4", "-s", "http://x", "--json")
    assert [j["id"] for j in json.loads(as_json.stdout)] == [3, 4]
    assert json.loads(run("kill", "3", "-s", "http://x", "--json").stdout)["id"] == 3  # one job: one object


def test_one_refused_job_does_not_stop_the_others(fake: FakeServer) -> None:
    _actions(fake, "pause", 3, 5)
    result = run("pause", "3", "4", "5", "-s", "http://x")
    assert result.exit_code == 1 and "job 4:" in result.stderr
    assert _posted(fake) == ["/jobs/3/pause", "/jobs/4/pause", "/jobs/5/pause"]


def test_jobs_by_name_and_glob(fake: FakeServer) -> None:
    _listing(fake, _job(3, "shot010_comp"), _job(4, "shot010_light"), _job(8, "shot020_comp"))
    _actions(fake, "kill", 3, 4, 8)
    assert run("kill", "shot020_comp", "-s", "http://x").exit_code == 0
    assert _posted(fake) == ["/jobs/8/kill"]
    assert fake.requests[0].url.params["name"] == "shot020_comp"
    fake.requests.clear()
    many = run("kill", "shot010*", "-s", "http://x")
    assert many.exit_code == 1 and "matches 2 jobs (3 shot010_comp, 4 shot010_light)" in many.stderr
    assert "--yes" in many.stderr and _posted(fake) == []
    assert fake.requests[0].url.params["name"] == "shot010"  # the glob's literal part narrows the listing
    assert run("kill", "shot010*", "--yes", "-s", "http://x").exit_code == 0
    assert _posted(fake) == ["/jobs/3/kill", "/jobs/4/kill"]
    none = run("kill", "shot99*", "-s", "http://x")
    assert none.exit_code == 1 and "no job matches the glob 'shot99*'" in none.stderr


def test_resume_retry_and_priority_by_name(fake: FakeServer) -> None:
    _listing(fake, _job(3, "shot010_comp"))
    _actions(fake, "resume", 3)
    _actions(fake, "retry", 3, 4)
    fake.routes[("POST", "/jobs/3/priority")] = _job(3, "shot010_comp", priority=90)
    assert run("resume", "shot010_comp", "-s", "http://x").exit_code == 0
    assert run("retry", "3", "4", "-s", "http://x").exit_code == 0
    assert run("retry", "3", "4", "--task", "11", "-s", "http://x").exit_code == 2  # --task: one job
    assert run("priority", "shot010_*", "90", "-s", "http://x").stdout == "job 3: running, priority 90\n"
    assert fake.last_json() == {"priority": 90}


def test_task_actions_take_several_ids(fake: FakeServer) -> None:
    for task_id in (11, 12):
        fake.routes[("POST", f"/tasks/{task_id}/skip")] = {**TASK, "id": task_id, "state": "skipped", "attempts": []}
    result = run("skip", "11", "12", "-s", "http://x")
    assert result.exit_code == 0 and result.stdout == "task 11: skipped\ntask 12: skipped\n"


FAILED_TASK = {**TASK, "state": "failed", "tries": 2, "reason": "exit code 1", "progress": 40.0, "attempt_id": 22}
ATTEMPTS = [{**ATTEMPT, "state": "failed", "exit_code": 1, "reason": "exit code 1"},
            {**ATTEMPT, "id": 22, "number": 2, "node": "node-b", "state": "failed", "exit_code": 137,
             "out_of_memory": True, "peak_rss_mb": 7900.0, "reason": "out of memory: killed (peak 7.7 GB)",
             "log_size": 30}]


def test_task_shows_every_attempt_and_the_tail_of_the_last_log(fake: FakeServer) -> None:
    fake.routes[("GET", "/tasks/11")] = {**FAILED_TASK, "attempts": ATTEMPTS}
    log = "".join(f"line {i}\n" for i in range(1, 31))
    fake.routes[("GET", "/attempts/22/log")] = lambda req: httpx.Response(200, json=(
        {"attempt_id": 22, "offset": 0, "data": log, "next_offset": len(log), "complete": True}
        if req.url.params.get("offset") == "0" else
        {"attempt_id": 22, "offset": len(log), "data": "", "next_offset": len(log), "complete": True}))
    result = run("task", "11", "-s", "http://x")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("main", "failed", "node-b", "out of memory", "7900", "137", "2 attempts", "line 30", "line 11"):
        assert text in out, text
    assert "line 10\n" not in out  # the last 20 lines only
    answer = json.loads(run("task", "11", "--lines", "3", "--json", "-s", "http://x").stdout)
    assert answer["log_tail"] == ["line 28", "line 29", "line 30"] and answer["log_tail_attempt_id"] == 22
    assert [a["node"] for a in answer["attempts"]] == ["n1", "node-b"]


def test_tasks_show_the_last_reason_and_progress(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/7/tasks")] = page(FAILED_TASK, {**TASK, "id": 12, "state": "running", "progress": 60.0})
    out = run("tasks", "7", "-s", "http://x").stdout
    assert "exit code 1" in out and "PROGRESS" in out and "60%" in out and "REASON" in out
    assert "2 tasks" in out
    fake.routes[("GET", "/jobs/7/tasks")] = page(TASK)
    assert "1 task" in _lines(run("tasks", "7", "-s", "http://x").stdout)


def test_wait_and_job_end_a_failed_job_with_its_failures(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/7")] = {**JOB, "state": "failed"}
    fake.routes[("GET", "/jobs/7/failures")] = FAILURES
    result = run("wait", "7", "-s", "http://x")
    assert result.exit_code == 1
    assert result.stdout == "job 7 failed: 3 tasks failed — 'exit code 1' x3 on node-a (tasks 4, 5, 6)\n"
    shown = run("job", "7", "-s", "http://x").stdout
    assert "job 7 failed: 3 tasks failed" in shown and "node-a" in shown and "REASON" in shown


def test_wait_on_a_job_blocked_by_a_failed_dependency_says_why_that_one_failed(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs/8")] = {**JOB, "id": 8, "state": "blocked", "depends_on": [7], "failures": 0,
                                       "stop_reason": None, "pending": "job 7 failed: it will not start"}
    fake.routes[("GET", "/jobs/8/failures")] = {**FAILURES, "job_id": 8, "state": "blocked", "failed_tasks": [],
                                                "failed_attempts": 0, "groups": [], "summary": "0 tasks failed",
                                                "blocked_by": "job 7 failed", "upstream": [FAILURES]}
    result = run("wait", "8", "-s", "http://x")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "job 8 job 7 failed: it will not start",
        "  job 7 failed: 3 tasks failed — 'exit code 1' x3 on node-a (tasks 4, 5, 6)"]


def test_log_json(fake: FakeServer) -> None:
    fake.routes[("GET", "/tasks/11/attempts")] = page(ATTEMPT)
    fake.routes[("GET", "/attempts/21/log")] = lambda req: httpx.Response(200, json=(
        {"attempt_id": 21, "offset": 0, "data": "hello\n", "next_offset": 6, "complete": True}
        if req.url.params.get("offset") == "0" else
        {"attempt_id": 21, "offset": 6, "data": "", "next_offset": 6, "complete": True}))
    assert json.loads(run("log", "11", "--json", "-s", "http://x").stdout) == {"attempt_id": 21, "log": "hello\n"}
    lines = run("log", "a21", "--json", "--follow", "-s", "http://x").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [{"attempt_id": 21, "data": "hello\n"}]


def test_server_host_port_is_accepted(fake: FakeServer) -> None:
    assert server_url("farm:8642") == "http://farm:8642"
    assert server_url("https://farm.example/") == "https://farm.example"
    assert resolve("127.0.0.1:9000").server == "http://127.0.0.1:9000"
    fake.routes[("GET", "/jobs/7")] = JOB
    assert run("job", "7", "-s", "x:8642").exit_code == 0
    assert str(fake.requests[-1].url).startswith("http://x:8642/api/v1/jobs/7")


def test_times_not_from_today_show_their_date() -> None:
    now = datetime.now(timezone.utc)
    assert len(short_time(now)) == 8 and short_time(now).count(":") == 2
    other = datetime(2024, 12, 1, 14, 2, tzinfo=timezone.utc)
    assert short_time(other) == other.astimezone().strftime("%b %d %H:%M")
    assert short_time(now - timedelta(days=3)).split()[0].isalpha()


def test_one_of_a_thing_is_not_plural(fake: FakeServer) -> None:
    fake.routes[("GET", "/jobs")] = page(SUMMARY)
    assert "1 job" in _lines(run("jobs", "-s", "http://x").stdout)
    fake.routes[("GET", "/tasks/11/attempts")] = page(ATTEMPT)
    assert "1 attempt" in _lines(run("attempts", "11", "-s", "http://x").stdout)


def test_shell_completion_is_enabled(tmp_path: Path) -> None:
    help_text = run("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    thresher = Path(sys.executable).with_name("thresher")
    env = {**os.environ, "THRESHER_HOME": str(tmp_path)}
    script = subprocess.run([str(thresher)], env={**env, "_THRESHER_COMPLETE": "source_bash"},
                            capture_output=True, text=True, timeout=60)
    assert "_thresher_completion" in script.stdout and "complete " in script.stdout
    words = subprocess.run([str(thresher)], env={**env, "_THRESHER_COMPLETE": "complete_bash",
                                                 "COMP_WORDS": "thresher ki", "COMP_CWORD": "1"},
                           capture_output=True, text=True, timeout=60)
    assert words.stdout.split() == ["kill", "kill-task"]


def test_the_python_api_imports_from_the_package() -> None:
    code = "from thresher.client import Thresher, ApiError; print(Thresher.__name__, ApiError.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["Thresher", "ApiError"]


@pytest.mark.parametrize("words", [["kill"], ["pause"]])
def test_a_job_is_required(words: list[str]) -> None:
    assert run(*words, "-s", "http://x").exit_code == 2


def test_text_people_and_tasks_wrote_is_printed_as_written(fake: FakeServer) -> None:
    """Brackets in a reason, a name or an output line are no Rich markup: `[/tex/a.exr]` broke the table
    with a traceback, `[kick]` vanished."""
    reason = "exit code 1 (last line: [kick] error: cannot open [/tex/a.exr])"
    odd = {**FAILED_TASK, "reason": reason, "layer": "[bold]main"}
    fake.routes[("GET", "/jobs/7/tasks")] = page(odd)
    fake.routes[("GET", "/tasks/11")] = {**odd, "attempt_id": 21, "attempts": [{**ATTEMPTS[0], "reason": reason}]}
    fake.routes[("GET", "/attempts/21/log")] = {"attempt_id": 21, "offset": 0, "data": "[/] [red]x\n",
                                                "next_offset": 11, "complete": True}
    for args in (("tasks", "7"), ("task", "11")):
        result = run(*args, "-s", "http://x")
        assert result.exit_code == 0 and result.exception is None, result.output
        flat = " ".join(result.stdout.split())
        assert "[kick] error: cannot open [/tex/a.exr])" in flat and "[bold]main" in flat, flat
    assert "[/] [red]x" in run("task", "11", "-s", "http://x").stdout  # the log's tail too
