"""A farm that keeps going: kill -9 of the server or of an agent mid-job loses nothing.

Real server process, real agents, real subprocesses. Each task writes a marker file per run so the
tests can count how often a frame really ran, next to what the server recorded.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _job(out: Path, frames: str, seconds: float, chunk: int = 1) -> dict[str, Any]:
    script = (f"import os,sys,time; d=sys.argv[1]; f=sys.argv[2]; print('start frame', f, flush=True); "
              f"time.sleep({seconds}); open(os.path.join(d, 'frame_%s.%d' % (f, os.getpid())), 'w').write('x'); "
              "print('done frame', f, flush=True)")
    return {"name": "faults", "layers": [{"name": "render", "frames": frames, "chunk": chunk, "retries": 0,
                                          "args": {"command": [sys.executable, "-c", script, str(out), "{frame}"]}}]}


def _succeeded_attempts(api: Any, job_id: int) -> dict[int, list[dict[str, Any]]]:
    out = {}
    for task in api.get(f"/jobs/{job_id}/tasks")["items"]:
        attempts = api.get(f"/tasks/{task['id']}/attempts")["items"]
        out[task["id"]] = [a for a in attempts if a["state"] == "succeeded"]
    return out


def _wait_job(farm: Any, job_id: int, timeout: float = 90) -> dict[str, Any]:
    return farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job_id}"))["state"] in ("succeeded", "failed", "killed") and j,
                         timeout=timeout, interval=0.2, message=f"job {job_id} to finish")


def test_server_kill_9_mid_job_then_restart_completes_everything(farm, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    farm.start_agent("a1", cores=2)
    farm.start_agent("a2", cores=2)
    job_id = farm.api.post("/jobs", _job(out, "1-8", 1.5))["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["running"] >= 3, timeout=30,
                  message="tasks to start")
    farm.kill_server(signal.SIGKILL)
    time.sleep(2.0)  # tasks finish while the server is gone; agents keep their reports
    farm.restart_server()
    job = _wait_job(farm, job_id)
    assert job["state"] == "succeeded", job
    per_task = _succeeded_attempts(farm.api, job_id)
    assert all(len(ok) == 1 for ok in per_task.values()), per_task
    for ok in per_task.values():
        log = farm.api.get(f"/attempts/{ok[0]['id']}/log")
        assert log["complete"] and "start frame" in log["data"] and "done frame" in log["data"], log
    frames_run = sorted(p.name.split(".")[0] for p in out.iterdir())
    assert frames_run == sorted(f"frame_{i}" for i in range(1, 9))


def test_agent_kill_9_requeues_its_tasks_on_another_node(make_farm, db_url: str, tmp_path: Path) -> None:
    """Node liveness: the silent node is declared down and its tasks run again elsewhere (SQLite and
    PostgreSQL)."""
    farm = make_farm(db_url, node_timeout=3.0)
    out = tmp_path / "out"
    out.mkdir()
    farm.start_agent("doomed", cores=2)
    job_id = farm.api.post("/jobs", _job(out, "1-2", 4.0))["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["running"] == 2, timeout=30,
                  message="both tasks running on the doomed node")
    farm.kill_agent("doomed", signal.SIGKILL)
    farm.start_agent("survivor", cores=2)
    farm.wait_for_node("doomed", state="down", timeout=30)
    job = _wait_job(farm, job_id)
    assert job["state"] == "succeeded"
    tasks = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    assert all(t["node"] == "survivor" and t["lost"] == 1 and t["tries"] == 0 for t in tasks), tasks
    for task in tasks:
        states = [a["state"] for a in farm.api.get(f"/tasks/{task['id']}/attempts")["items"]]
        assert states == ["lost", "succeeded"]
    # the killed agent's children died with it (PDEATHSIG): only the survivor's runs wrote frames
    assert len(list(out.iterdir())) == 2

