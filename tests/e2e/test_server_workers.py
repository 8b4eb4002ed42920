"""`thresher server --workers 2` on the suite's PostgreSQL: one address, two server processes, real agents.

A worker is killed -9 in the middle of a job (the one holding most of the agents' connections): the parent
says so and starts another, the agents ride through, every task succeeds exactly once. SIGTERM to the
parent then stops every worker.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest
from sqlalchemy import create_engine, text

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TASKS = 24


def _workers(farm: Any) -> list[psutil.Process]:
    return psutil.Process(farm.server.pid).children()


def _agent_connections(worker: psutil.Process, port: int) -> int:
    return sum(1 for c in worker.net_connections(kind="tcp")
               if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port)


def _log(farm: Any) -> str:
    return str(farm.server.log_path.read_text(errors="replace"))


def _successes(pg_url: str, job_id: int) -> list[Any]:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT t.id, count(a.id) AS n FROM tasks t LEFT JOIN attempts a"
                " ON a.task_id = t.id AND a.state = 'succeeded' WHERE t.job_id = :job GROUP BY t.id"),
                {"job": job_id}).all())
    finally:
        engine.dispose()


def test_a_worker_killed_mid_job_is_started_again_and_loses_nothing(
        make_farm: Callable[..., Any], pg_url: str, tmp_path: Path) -> None:
    farm = make_farm(pg_url, node_timeout=6.0, server_args=["--workers", "2"])
    assert farm.wait_for(lambda: len(_workers(farm)) == 2, timeout=30)
    for i in range(2):  # both start at once
        farm.start_agent(f"w-{i}", cores=2, wait=False)
    for i in range(2):
        farm.wait_for_node(f"w-{i}")
    job = farm.api.post("/jobs", {"name": "through-two-workers", "layers": [{
        "name": "r", "frames": f"1-{TASKS}", "resources": {"cores": 1, "memory_mb": 64},
        "args": {"command": [sys.executable, "-c",
                             "import time, sys; print('frame', sys.argv[1], flush=True); time.sleep(0.3)",
                             "{frame}"]}}]})

    def counts() -> dict[str, int]:
        return dict(farm.api.get(f"/jobs/{job['id']}")["counts"])

    assert farm.wait_for(lambda: counts().get("succeeded", 0) >= TASKS // 4, timeout=120)
    workers = _workers(farm)
    victim = max(workers, key=lambda w: _agent_connections(w, farm.port))
    victim.kill()
    assert farm.wait_for(lambda: len([w for w in _workers(farm) if w.pid != victim.pid]) == 2, timeout=30)
    assert farm.wait_for(lambda: f"(pid {victim.pid}) was killed by SIGKILL" in _log(farm), timeout=10)

    assert farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["state"] == "succeeded", timeout=120)
    successes = _successes(pg_url, job["id"])
    assert len(successes) == TASKS
    assert all(row.n == 1 for row in successes), [tuple(r) for r in successes if r.n != 1]

    last = _workers(farm)
    assert farm.kill_server(signal.SIGTERM) == 0
    assert not [w.pid for w in last if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert "every worker stopped" in _log(farm)
