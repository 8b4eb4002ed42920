"""`thresher job`, `why` and `wait` take the steering commands' targets: several ids, names and globs
(`cli/targets.py`), a glob matching several jobs without `--yes` (reading changes nothing). Against the
fake server of test_cli_commands."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.unit.test_cli_commands import JOB, SUMMARY, FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared


def _jobs(fake: FakeServer, *jobs: dict[str, Any]) -> None:
    """Each job answers GET /jobs/{id}; the listing answers the `name contains` filter."""
    for job in jobs:
        fake.routes[("GET", f"/jobs/{job['id']}")] = job

    def listing(request: httpx.Request) -> httpx.Response:
        needle = request.url.params.get("name") or ""
        found = [{**SUMMARY, "id": j["id"], "name": j["name"]} for j in jobs if needle in j["name"]]
        return httpx.Response(200, json=page(*found))
    fake.routes[("GET", "/jobs")] = listing


def _job(job_id: int, name: str, **more: Any) -> dict[str, Any]:
    return {**JOB, "id": job_id, "name": name, "failures": 0, "stop_reason": None, **more}


def _read(fake: FakeServer) -> list[str]:
    return [r.url.path.removeprefix("/api/v1") for r in fake.requests
            if r.method == "GET" and r.url.path.removeprefix("/api/v1").count("/") == 2]


def test_job_shows_several_jobs_by_id_and_glob(fake: FakeServer) -> None:
    _jobs(fake, _job(3, "shot010_comp"), _job(4, "shot010_light"), _job(8, "shot020_comp"))
    result = run("job", "8", "shot010*", "-s", "http://x")
    assert result.exit_code == 0, result.stderr
    assert _read(fake) == ["/jobs/8", "/jobs/3", "/jobs/4"]  # in the order named, a glob needs no --yes
    for name in ("shot020_comp", "shot010_comp", "shot010_light"):
        assert name in result.stdout
    as_json = json.loads(run("job", "shot010*", "--json", "-s", "http://x").stdout)
    assert [j["id"] for j in as_json] == [3, 4]
    assert json.loads(run("job", "8", "--json", "-s", "http://x").stdout)["id"] == 8  # one job: one object


def test_job_reports_an_unknown_job_and_shows_the_others(fake: FakeServer) -> None:
    _jobs(fake, _job(3, "a"))
    result = run("job", "3", "99", "-s", "http://x")
    assert result.exit_code == 1 and "job 99:" in result.stderr
    assert "a" in result.stdout and "main" in result.stdout
    none = run("job", "nosuch*", "-s", "http://x")
    assert none.exit_code == 1 and "no job matches the glob 'nosuch*'" in none.stderr


def test_why_says_it_for_each_job(fake: FakeServer) -> None:
    _jobs(fake, _job(3, "shot010_comp", state="waiting", pending="waits for job 2"),
          _job(4, "shot010_light", state="running"))
    result = run("why", "shot010*", "-s", "http://x")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["job 3 (waiting): waits for job 2", "job 4 (running): nothing waits"]
    answer = json.loads(run("why", "3", "4", "--json", "-s", "http://x").stdout)
    assert [(a["job_id"], a["pending"]) for a in answer] == [(3, "waits for job 2"), (4, None)]


def test_wait_waits_for_every_job_and_fails_if_one_did(fake: FakeServer) -> None:
    _jobs(fake, _job(3, "shot010_comp", state="succeeded"), _job(4, "shot010_light", state="killed"))
    both = run("wait", "shot010*", "-s", "http://x")
    assert both.exit_code == 1
    assert both.stdout.splitlines() == ["job 3 succeeded", "job 4 killed"]
    assert run("wait", "3", "-s", "http://x").exit_code == 0
    answer = json.loads(run("wait", "3", "4", "--json", "-s", "http://x").stdout)
    assert [(j["id"], j["state"]) for j in answer] == [(3, "succeeded"), (4, "killed")]


def test_wait_for_several_times_out_on_the_whole_wait(fake: FakeServer) -> None:
    _jobs(fake, _job(3, "done", state="succeeded"), _job(4, "busy", state="running"))
    result = run("wait", "3", "4", "--timeout", "0.3", "-s", "http://x")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["job 3 succeeded"]
    assert "timeout: job 4 still running after 0.3 s" in result.stderr


def test_wait_on_a_blocked_job_says_the_upstream_failures_and_its_own(fake: FakeServer) -> None:
    """The upstream's failures come from the server's summary (job, layer and task edges alike), and the
    job's own failures are said apart, not the whole blocked line again."""
    _jobs(fake, _job(5, "comp", state="blocked", pending="blocked: job 4 layer main frames 1-2 failed",
                     failures=1))
    up = {"job_id": 4, "state": "failed", "failed_tasks": [7, 8], "failed_attempts": 2, "groups": [],
          "summary": "2 tasks failed — 'exit code 1' x2 on n1 (tasks 7, 8)"}
    fake.routes[("GET", "/jobs/5/failures")] = {
        "job_id": 5, "state": "blocked", "failed_tasks": [], "failed_attempts": 1, "groups": [],
        "blocked_by": "job 4 layer main frames 1-2 failed", "upstream": [up],
        "summary": f"job 4 layer main frames 1-2 failed; job 4 failed: {up['summary']}; "
                   "its own failures: no task is failed now; 1 attempt failed before its task was retried"}
    result = run("wait", "5", "-s", "http://x")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "job 5 blocked: job 4 layer main frames 1-2 failed",
        f"  job 4 failed: {up['summary']}",
        "  its own failures: no task is failed now; 1 attempt failed before its task was retried"]


def test_json_shape_follows_the_words_not_how_many_jobs_matched(fake: FakeServer) -> None:
    """`job 'h*' --json` was an object while one job matched and a list once a second did; a job that
    does not exist printed `[]` on stdout."""
    _jobs(fake, _job(3, "hero", state="succeeded"), _job(4, "crowd", state="succeeded"))
    for command in ("job", "why", "wait"):
        glob = run(command, "h*", "--json", "-s", "http://x")
        assert glob.exit_code in (0, 1), glob.stderr
        assert isinstance(json.loads(glob.stdout), list), command  # one match, still a list
        named = json.loads(run(command, "hero", "--json", "-s", "http://x").stdout)
        assert isinstance(named, dict), command  # an exact name: one object
        assert isinstance(json.loads(run(command, "3", "--json", "-s", "http://x").stdout), dict), command
    fake.routes[("GET", "/jobs/99999")] = lambda _: httpx.Response(404, json={"detail": "no job with id 99999"})
    missing = run("job", "99999", "--json", "-s", "http://x")
    assert missing.exit_code == 1 and missing.stdout == "" and "no job with id 99999" in missing.stderr
    some = run("job", "3", "99999", "--json", "-s", "http://x")
    assert some.exit_code == 1 and [j["id"] for j in json.loads(some.stdout)] == [3]
    nothing = run("why", "nosuch", "--json", "-s", "http://x")
    assert nothing.exit_code == 1 and nothing.stdout == "" and "no job matches the name 'nosuch'" in nothing.stderr


def test_a_steering_commands_json_shape_follows_the_words_too(fake: FakeServer) -> None:
    """`kill 'h*' --json` was an object while one job matched, as `job` was."""
    _jobs(fake, _job(3, "hero"), _job(4, "crowd"))
    fake.routes[("POST", "/jobs/3/kill")] = _job(3, "hero", state="killed")
    glob = run("kill", "h*", "--yes", "--json", "-s", "http://x")
    assert glob.exit_code == 0, glob.stderr
    assert [j["id"] for j in json.loads(glob.stdout)] == [3]
    assert json.loads(run("kill", "3", "--json", "-s", "http://x").stdout)["id"] == 3


def test_wait_tells_a_job_that_does_not_exist_from_a_failed_one(fake: FakeServer) -> None:
    """`wait 99999` exited 1, as a failed job does, and `wait 1 99999 --json` lost job 1's result."""
    _jobs(fake, _job(3, "done", state="succeeded"), _job(4, "bad", state="failed"))
    fake.routes[("GET", "/jobs/99999")] = lambda _: httpx.Response(404, json={"detail": "no job with id 99999"})
    alone = run("wait", "99999", "-s", "http://x")
    assert alone.exit_code == 3 and alone.stdout == "" and "error: no job with id 99999" in alone.stderr
    both = run("wait", "3", "99999", "--json", "-s", "http://x")
    assert both.exit_code == 3 and [(j["id"], j["state"]) for j in json.loads(both.stdout)] == [(3, "succeeded")]
    text = run("wait", "3", "nosuch*", "-s", "http://x")
    assert text.exit_code == 3 and text.stdout.splitlines() == ["job 3 succeeded"]
    assert "no job matches the glob 'nosuch*'" in text.stderr
    assert run("wait", "4", "-s", "http://x").exit_code == 1  # a failed job: still 1
    assert "3 if one is unknown" in run("wait", "--help").stdout
