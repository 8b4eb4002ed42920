"""Three real server processes on one PostgreSQL behind a real haproxy, real agents through it; one
server is killed -9 in the middle of a job, and nothing is lost.

The agents and the client only know the load balancer's address. The server killed is the leader (the
one doing the farm's housekeeping), so one of the two left must take that over too: a node that
registered and went silent is marked down. At the end every task succeeded exactly once, and every
success kept its log.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.support.haproxy import HAProxy, haproxy_binary

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(haproxy_binary() is None, reason="haproxy is not installed (scripts/setup.sh)")]

API = "/api/v1"
TASKS = 36


def _register(url: str, enroll: str, name: str) -> httpx.Client:
    body = {"name": name, "hostname": name, "os": "linux", "cores": 2, "memory_mb": 4096, "gpus": [], "tags": [],
            "instance_id": uuid.uuid4().hex}
    r = httpx.post(f"{url}{API}/agent/register", json=body, headers={"Authorization": f"Bearer {enroll}"})
    r.raise_for_status()
    return httpx.Client(base_url=url + API, headers={"Authorization": f"Bearer {r.json()['token']}"})


def _leader(farms: list[Any]) -> Any:
    for farm in farms:
        if httpx.get(f"{farm.server_url}{API}/health", timeout=10).json()["leader"]:
            return farm
    return None


def test_a_server_killed_behind_the_load_balancer_loses_nothing(
        make_farm: Callable[..., Any], pg_url: str, tmp_path: Path) -> None:
    farms = [make_farm(pg_url, node_timeout=6.0) for _ in range(3)]
    proxy = HAProxy(tmp_path / "lb", [f"127.0.0.1:{farm.port}" for farm in farms]).start()
    try:
        assert farms[0].wait_for(lambda: _leader(farms), timeout=30)
        leader = _leader(farms)
        front = make_farm(pg_url, start=False)  # agents and client through the balancer only
        front.server_url, front.admin_token, front.enroll_token = proxy.url, farms[0].admin_token, farms[0].enroll_token
        for i in range(3):
            front.start_agent(f"lb-{i}", cores=2)
        job = front.api.post("/jobs", {"name": "through-the-balancer", "layers": [{
            "name": "r", "frames": f"1-{TASKS}", "resources": {"cores": 1, "memory_mb": 64},
            "args": {"command": [sys.executable, "-c",
                                 "import time, sys; print('frame', sys.argv[1], flush=True); time.sleep(0.4)",
                                 "{frame}"]}}]})

        def succeeded() -> int:
            return int(front.api.get(f"/jobs/{job['id']}")["counts"].get("succeeded", 0))

        assert front.wait_for(lambda: succeeded() >= TASKS // 4, timeout=120)
        silent = _register(proxy.url, front.enroll_token, "silent")  # never heartbeats: the chores mark it down
        leader.kill_server()
        assert front.wait_for(lambda: front.api.get(f"/jobs/{job['id']}")["state"] == "succeeded", timeout=180)
        others = [farm for farm in farms if farm is not leader]
        assert front.wait_for(lambda: _leader(others), timeout=30)  # the chores went on elsewhere:
        assert front.wait_for(lambda: front.api.get("/nodes/silent")["state"] == "down", timeout=60)
        silent.close()

        engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                successes = conn.execute(text(
                    "SELECT t.id, count(a.id) AS n, min(a.log_size) AS log FROM tasks t LEFT JOIN attempts a"
                    " ON a.task_id = t.id AND a.state = 'succeeded' WHERE t.job_id = :job GROUP BY t.id"),
                    {"job": job["id"]}).all()
        finally:
            engine.dispose()
        assert len(successes) == TASKS
        assert all(row.n == 1 for row in successes), [tuple(r) for r in successes if r.n != 1]
        assert all(row.log > 0 for row in successes)  # every success kept its log
        for task in front.api.get(f"/jobs/{job['id']}/tasks?limit=5")["items"]:
            assert "frame " in str(front.api.get(f"/attempts/{task['attempt_id']}/log"))
    finally:
        proxy.stop()
