"""A network cut longer than the node timeout: the work finished during it is kept, nothing is lost.

The agents reach the server only through a real haproxy, which the test stops (the cut) while every
task runs and starts again after the server has declared the silent nodes down and their attempts
lost. The tasks end during the cut; when the agents are back, their late successes are accepted
(`model/late_report.py`) instead of the frames being rendered again: every frame ran exactly once, and
every task succeeded exactly once with its log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from tests.support.haproxy import HAProxy, haproxy_binary

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(haproxy_binary() is None, reason="haproxy is not installed (scripts/setup.sh)")]

NODE_TIMEOUT = 3.0
TASKS = 4
TASK_S = 3.0


def _job(out: Path) -> dict[str, Any]:
    script = ("import os, sys, time; d, f = sys.argv[1], sys.argv[2]; print('start frame', f, flush=True); "
              f"time.sleep({TASK_S}); open(os.path.join(d, 'frame_%s.%d' % (f, os.getpid())), 'w').write('x'); "
              "print('done frame', f, flush=True)")
    return {"name": "cut", "layers": [{"name": "render", "frames": f"1-{TASKS}", "retries": 0,
                                       "resources": {"cores": 1, "memory_mb": 64},
                                       "args": {"command": [sys.executable, "-c", script, str(out), "{frame}"]}}]}


def test_work_finished_during_a_cut_longer_than_the_node_timeout_is_kept(
        make_farm: Callable[..., Any], tmp_path: Path) -> None:
    farm = make_farm(node_timeout=NODE_TIMEOUT)
    proxy = HAProxy(tmp_path / "lb", [f"127.0.0.1:{farm.port}"]).start()
    direct = farm.server_url
    try:
        farm.server_url = proxy.url  # the agents know only the balancer
        for name in ("n1", "n2"):
            farm.start_agent(name, cores=2)
        farm.server_url = direct      # the test's own calls go straight to the server
        out = tmp_path / "out"
        out.mkdir()
        job_id = farm.api.post("/jobs", _job(out))["id"]
        farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["running"] == TASKS, timeout=60,
                      message="every task to run")
        proxy.stop()                                   # the cut
        farm.wait_for(lambda: all(n["state"] == "down" for n in farm.api.get("/nodes")["items"]), timeout=30,
                      message="the cut-off nodes to be declared down")
        time.sleep(TASK_S)                             # the tasks end while their nodes are cut off
        proxy.start()
        job = farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job_id}"))["state"] in ("succeeded", "failed") and j,
                            timeout=90, interval=0.3, message="the job to end")
        assert job["state"] == "succeeded", job
        for task in farm.api.get(f"/jobs/{job_id}/tasks")["items"]:
            attempts = farm.api.get(f"/tasks/{task['id']}/attempts")["items"]
            ok = [a for a in attempts if a["state"] == "succeeded"]
            assert len(ok) == 1, attempts
            log = farm.api.get(f"/attempts/{ok[0]['id']}/log")
            assert "start frame" in log["data"] and "done frame" in log["data"], log
        runs = sorted(p.name.split(".")[0] for p in out.iterdir())
        assert runs == sorted(f"frame_{i}" for i in range(1, TASKS + 1))  # each frame rendered once: none again
    finally:
        proxy.stop()
