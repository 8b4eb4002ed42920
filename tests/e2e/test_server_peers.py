"""Several real server processes on one PostgreSQL hear each other (server/peers.py, server/leader.py).

An agent waits on server B; work submitted and kills asked through server A must reach it at once,
and B's dashboards must see A's new job. The servers' own periodic look for news is set to ten minutes
here, so only the news A sends through the database can explain what B's agent gets. (That one
process leads the housekeeping and another takes over when it dies: tests/e2e/test_behind_haproxy.py.)
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any, Callable

import httpx
import pytest

pytestmark = pytest.mark.postgres

API = "/api/v1"
# No periodic look for news within a test, and long polls held longer than the test waits for an answer
# (a poll that ends looks once more: only a wake-up can answer it in time)
NO_LOOK = {"THRESHER_SERVER_NEWS_RECHECK_S": "600", "THRESHER_SERVER_WORK_WAIT_MAX_S": "60"}


def _node(url: str, enroll: str, name: str, tags: list[str] | None = None) -> httpx.Client:
    body = {"name": name, "hostname": name, "os": "linux", "cores": 2, "memory_mb": 4096, "gpus": [], "tags": tags or [],
            "instance_id": uuid.uuid4().hex}
    r = httpx.post(f"{url}{API}/agent/register", json=body, headers={"Authorization": f"Bearer {enroll}"})
    r.raise_for_status()
    return httpx.Client(base_url=url + API, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=60)


def _job(name: str, seconds: int = 0) -> dict[str, Any]:
    return {"name": name, "layers": [{"name": "l", "frames": "1", "resources": {"cores": 1, "memory_mb": 64},
                                      "args": {"command": [sys.executable, "-c", f"import time; time.sleep({seconds})"]}}]}


def _long_poll(node: httpx.Client, wait: float, out: list[dict[str, Any]]) -> threading.Thread:
    """Ask for work, waiting up to `wait` s, in a thread; the answer lands in `out`."""
    def ask() -> None:
        r = node.post(f"/agent/work?wait={wait}", json={})
        r.raise_for_status()
        out.append(r.json())

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def _waiting() -> None:
    time.sleep(0.5)  # the long poll is held by the server now (there is no answer to wait for)


def test_work_kills_and_dashboard_news_made_through_one_server_reach_another(
        make_farm: Callable[..., Any], pg_url: str) -> None:
    a = make_farm(pg_url, env=NO_LOOK)
    b = make_farm(pg_url, env=NO_LOOK)
    headers = {"Authorization": f"Bearer {b.admin_token}"}
    with httpx.stream("GET", f"{b.server_url}/events", headers=headers, timeout=30) as stream:
        lines = stream.iter_lines()
        hello = next(line for line in lines if line.startswith("data:"))
        assert json.loads(hello[5:])["hello"] is True
        node = _node(b.server_url, b.enroll_token, "on-b")
        answers: list[dict[str, Any]] = []
        asked = _long_poll(node, 45, answers)
        _waiting()
        job = a.api.post("/jobs", _job("through-a", seconds=60))
        asked.join(timeout=40)
        assert not asked.is_alive() and answers, "B's agent did not hear of A's job"
        (assignment,) = answers[0]["assignments"]
        assert assignment["job_id"] == job["id"]

        deadline = time.monotonic() + 30  # B's farm summary sends an event every 2 s, news or not
        for line in lines:
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event.get("new_jobs") and job["id"] in event.get("jobs", []):
                    break
            assert time.monotonic() < deadline, "B's dashboards were not told of A's new job"

    answers.clear()
    asked = _long_poll(node, 45, answers)
    _waiting()
    a.api.post(f"/jobs/{job['id']}/kill")
    asked.join(timeout=40)
    assert not asked.is_alive() and answers, "B's agent did not hear of the kill asked through A"
    assert answers[0]["kill"] == [assignment["attempt_id"]]
    node.close()

    # A job through A with a placement (tag set) B has not seen, while B's copy of the sets is fresh: B's
    # agent looked a moment ago, with a task ready that only another node may run. Its wake-up must make B
    # read the sets again, or the agent finds nothing and sleeps out its long poll.
    _node(b.server_url, b.enroll_token, "tagged", tags=["elsewhere"]).close()
    b.api.post("/jobs", {**_job("for-the-tagged-node"), "layers": [{**_job("x")["layers"][0], "tags": ["elsewhere"]}]})
    fresh = _node(b.server_url, b.enroll_token, "fresh-on-b")
    answers.clear()
    asked = _long_poll(fresh, 45, answers)
    _waiting()
    pooled = a.api.post("/jobs", {**_job("a-new-set"), "layers": [{**_job("x")["layers"][0], "pools": ["default"]}]})
    asked.join(timeout=40)
    assert not asked.is_alive() and answers, "B's agent did not get A's job of a tag set new to B"
    assert [x["job_id"] for x in answers[0]["assignments"]] == [pooled["id"]]
    fresh.close()
