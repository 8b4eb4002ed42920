"""Chaos on both databases: the server killed -9 again and again, agents killed -9 and restarted, in the
middle of one job. At the end the job succeeded, every task succeeded exactly once (rule 1), every
success has its whole log (no gaps: the first and the last line of the task are there), and every frame
ran at least once (execution is at least once: a frame may run twice, never zero times).

Bounded: a few rounds of faults two seconds apart, then the job is waited for.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.e2e

TASKS = 40
ROUNDS = 6          # faults: server, agent, server, agent, ...
AGENTS = ("c1", "c2", "c3")


def _job(out: Path) -> dict[str, Any]:
    script = ("import os, sys, time; d, f = sys.argv[1], sys.argv[2]; print('start frame', f, flush=True); "
              "time.sleep(0.4); open(os.path.join(d, 'frame_%s.%d' % (f, os.getpid())), 'w').write('x'); "
              "print('done frame', f, flush=True)")
    return {"name": "chaos", "layers": [{"name": "render", "frames": f"1-{TASKS}", "retries": 0,
                                         "resources": {"cores": 1, "memory_mb": 64},
                                         "args": {"command": [sys.executable, "-c", script, str(out), "{frame}"]}}]}


def test_server_and_agents_killed_again_and_again_lose_nothing(make_farm: Callable[..., Any], db_url: str,
                                                                tmp_path: Path) -> None:
    farm = make_farm(db_url, node_timeout=4.0)
    out = tmp_path / "out"
    out.mkdir()
    for name in AGENTS:
        farm.start_agent(name, cores=2)
    job_id = farm.api.post("/jobs", _job(out))["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["running"] >= 2, timeout=60,
                  message="tasks to start")
    for round_ in range(ROUNDS):
        time.sleep(2.0)
        if round_ % 2 == 0:
            farm.restart_server(signal.SIGKILL)
        else:
            farm.restart_agent(AGENTS[round_ // 2 % len(AGENTS)], signal.SIGKILL)
    job = farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job_id}"))["state"] in ("succeeded", "failed") and j,
                        timeout=240, interval=0.5, message="the job to end")
    assert job["state"] == "succeeded", job
    tasks = farm.api.get(f"/jobs/{job_id}/tasks?limit=1000")["items"]
    assert len(tasks) == TASKS
    for task in tasks:
        attempts = farm.api.get(f"/tasks/{task['id']}/attempts")["items"]
        ok = [a for a in attempts if a["state"] == "succeeded"]
        assert len(ok) == 1, (task, attempts)
        log = farm.api.get(f"/attempts/{ok[0]['id']}/log")
        assert log["complete"] and "start frame" in log["data"] and "done frame" in log["data"], log
    ran = {p.name.split(".")[0] for p in out.iterdir()}
    assert ran == {f"frame_{i}" for i in range(1, TASKS + 1)}
