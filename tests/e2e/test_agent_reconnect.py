"""The agent against a real server: runs work, streams logs, rides through outages, cleans up.

Real `python -m thresher.server` and `python -m thresher.agent` subprocesses (tests/support/farm.py).
The tests whose outcome rests on what the database records (reports after an outage, reconciling after an
agent restart, the GPUs picked by the dispatcher) run on SQLite and on PostgreSQL (`db_url`).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

pytestmark = pytest.mark.e2e

PY = sys.executable


def submit(farm: Any, command: list[str] | str, *, frames: str = "1", shell: bool = False, **layer: Any) -> int:
    args: dict[str, Any] = {"command": command}
    if shell:
        args["shell"] = True
    for key in ("outputs", "progress_pattern", "error_patterns"):
        if key in layer:
            args[key] = layer.pop(key)
    spec = {"name": "agent e2e", "layers": [{"name": "work", "frames": frames, "args": args,
                                             "resources": {"cores": 1, "memory": "64M"}, **layer}]}
    return farm.api.post("/jobs", spec)["id"]


def job_state(farm: Any, job_id: int) -> str:
    return farm.api.get(f"/jobs/{job_id}")["state"]


def wait_job(farm: Any, job_id: int, state: str, timeout: float = 30) -> dict[str, Any]:
    return farm.wait_for(lambda: (job := farm.api.get(f"/jobs/{job_id}"))["state"] == state and job,
                         timeout=timeout, message=f"job {job_id} {state}")


def tasks_of(farm: Any, job_id: int) -> list[dict[str, Any]]:
    return farm.api.get(f"/jobs/{job_id}/tasks")["items"]


def full_log(farm: Any, attempt_id: int) -> dict[str, Any]:
    return farm.api.get(f"/attempts/{attempt_id}/log")


def running_pid_file(tmp_path: Path) -> Path:
    return tmp_path / "task.pid"


def pid_script(path: Path, seconds: float) -> list[str]:
    """A task that writes its pid (and its child's) and then sleeps."""
    code = (f"import os, subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({seconds})'])\n"
            f"open({str(path)!r} + '.tmp', 'w').write(f'{{os.getpid()}} {{c.pid}}')\n"
            f"os.replace({str(path)!r} + '.tmp', {str(path)!r})\n"
            f"print('started', flush=True)\n"
            f"time.sleep({seconds})\n"
            f"print('finished', flush=True)\n")
    return [PY, "-c", code]


def read_pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


def all_gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def test_runs_work_and_streams_logs(make_farm: Callable[..., Any], tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("n1", cores=2)
    out = tmp_path / "out"
    out.mkdir()
    job_id = submit(farm, [PY, "-c", "import sys; print('frame', sys.argv[1], 'é 50%', flush=True); "
                                     "open(sys.argv[2] % int(sys.argv[1]), 'w').write('px')",
                           "{frame}", str(out / "f_%04d.png")],
                    frames="1-4", outputs=[str(out / "f_####.png")], progress_pattern=r"(?P<pct>\d+)%")
    job = wait_job(farm, job_id, "succeeded")
    assert job["counts"]["succeeded"] == 4
    for task in tasks_of(farm, job_id):
        attempt = farm.api.get(f"/tasks/{task['id']}/attempts")["items"][-1]
        assert attempt["state"] == "succeeded"
        assert attempt["exit_code"] == 0
        log = full_log(farm, attempt["id"])
        assert log["complete"] is True
        assert f"frame {task['frames']} é 50%" in log["data"]
        assert attempt["log_size"] == len(log["data"].encode("utf-8"))


def test_failure_reasons_reach_server(make_farm: Callable[..., Any], tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("n1", cores=2)
    missing = tmp_path / "never.png"
    job_id = submit(farm, ["echo", "hi"], outputs=[str(missing)], retries=0)
    wait_job(farm, job_id, "failed")
    attempt = farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"][-1]
    assert attempt["state"] == "failed"
    assert attempt["reason"] == f"missing output: {missing}"

    job_id = submit(farm, ["sh", "-c", "echo 'ERROR: license'; exit 0"], error_patterns=["^ERROR"], retries=0)
    wait_job(farm, job_id, "failed")
    attempt = farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"][-1]
    assert attempt["reason"] == "error line: ERROR: license"


def test_kill_job_ends_process_tree(make_farm: Callable[..., Any], tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("n1", cores=2)
    pid_file = running_pid_file(tmp_path)
    job_id = submit(farm, pid_script(pid_file, 60))
    farm.wait_for(pid_file.exists, timeout=20, message="task started")
    pids = read_pids(pid_file)
    farm.api.post(f"/jobs/{job_id}/kill")
    farm.wait_for(lambda: all_gone(pids), timeout=15, message="task tree gone")
    farm.wait_for(lambda: farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"][-1]["state"]
                  == "killed", timeout=15, message="attempt killed")


def test_a_helper_that_left_the_tasks_session_is_gone_before_the_success(make_farm: Callable[..., Any],
                                                                           tmp_path: Path) -> None:
    """A task daemonises a helper (its own session, its parent exits) and exits 0: by the time the
    server hears of the success, the agent has ended the helper (cgroup, or subreaper)."""
    farm = make_farm()
    farm.start_agent("n1", cores=2)
    pid_file = tmp_path / "helper.pid"
    job_id = submit(farm, f"setsid sh -c 'sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}'; exit 0",
                    shell=True)
    try:
        wait_job(farm, job_id, "succeeded")
        assert all_gone(read_pids(pid_file)), "the helper outlived its attempt"
    finally:
        if pid_file.exists() and not all_gone(read_pids(pid_file)):
            psutil.Process(read_pids(pid_file)[0]).kill()


def test_task_finishes_while_server_is_down(make_farm: Callable[..., Any], db_url: str, tmp_path: Path) -> None:
    """Rule 2 and 6: the report and log of a task that ends during an outage arrive afterwards."""
    farm = make_farm(db_url)
    farm.start_agent("n1", cores=2)
    pid_file = running_pid_file(tmp_path)
    job_id = submit(farm, pid_script(pid_file, 2))
    farm.wait_for(pid_file.exists, timeout=20, message="task started")
    farm.kill_server(signal.SIGKILL)
    pids = read_pids(pid_file)
    farm.wait_for(lambda: all_gone(pids), timeout=15, message="task finished during the outage")
    time.sleep(0.5)
    farm.start_server()
    job = wait_job(farm, job_id, "succeeded", timeout=40)
    assert job["counts"]["succeeded"] == 1
    attempts = farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"]
    assert len(attempts) == 1  # it ran once; the outage did not cost a retry
    log = full_log(farm, attempts[0]["id"])
    assert "started\n" in log["data"] and "finished\n" in log["data"]
    assert farm.agents["n1"].alive()
    agent_log = farm.agents["n1"].tail(200)
    assert "Traceback" not in agent_log
    assert "server unreachable" in agent_log and "server back" in agent_log


def test_agent_shutdown_reports_lost_and_task_runs_again(make_farm: Callable[..., Any], tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("n1", cores=2)
    pid_file = running_pid_file(tmp_path)
    job_id = submit(farm, pid_script(pid_file, 60))
    farm.wait_for(pid_file.exists, timeout=20, message="task started")
    pids = read_pids(pid_file)
    assert farm.kill_agent("n1", signal.SIGTERM) == 0
    assert all_gone(pids)
    task = tasks_of(farm, job_id)[0]
    attempt = farm.api.get(f"/tasks/{task['id']}/attempts")["items"][-1]
    assert attempt["state"] == "lost"
    assert attempt["reason"] == "agent shutdown"
    assert task["state"] == "ready" and task["tries"] == 0
    assert farm.api.get("/nodes/n1")["state"] == "down"  # it said goodbye: no waiting for the timeout
    pid_file.unlink()
    farm.start_agent("n1", cores=2)
    farm.wait_for(pid_file.exists, timeout=20, message="task started again")
    assert farm.api.get("/nodes")["items"][0]["name"] == "n1"
    assert len(farm.api.get("/nodes")["items"]) == 1  # same identity after the restart


def test_agent_crash_leftovers_killed_on_restart(make_farm: Callable[..., Any], db_url: str, tmp_path: Path) -> None:
    """kill -9 of the agent: the task dies with it (PDEATHSIG), its orphaned child is found and
    ended when the agent comes back, and the attempt is reported lost."""
    farm = make_farm(db_url)
    farm.start_agent("n1", cores=2)
    pid_file = running_pid_file(tmp_path)
    job_id = submit(farm, pid_script(pid_file, 60))
    farm.wait_for(pid_file.exists, timeout=20, message="task started")
    pids = read_pids(pid_file)
    farm.kill_agent("n1", signal.SIGKILL)
    farm.wait_for(lambda: all_gone(pids[:1]), timeout=5, message="task process died with the agent")
    pid_file.unlink()
    farm.start_agent("n1", cores=2)
    farm.wait_for(lambda: all_gone(pids), timeout=10, message="orphaned child ended by the new agent")
    farm.wait_for(pid_file.exists, timeout=30, message="task started again")
    attempts = farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"]
    assert attempts[0]["state"] == "lost"
    assert attempts[-1]["state"] == "running"


def test_gpu_mask_follows_assignment(make_farm: Callable[..., Any], db_url: str) -> None:
    """A task sees only the GPUs it was given (the dispatcher's pick, stored with the attempt); on a GPU
    node a CPU task sees none."""
    farm = make_farm(db_url)
    farm.start_agent("g1", cores=2, gpus=2)  # placeholders when the machine has no NVIDIA GPU
    show = [PY, "-c", "import os; print('cvd=[' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset') + ']')"]
    gpu_job = submit(farm, show, resources={"cores": 1, "memory": "64M", "gpus": 1})
    cpu_job = submit(farm, show)
    for job_id, expected in ((gpu_job, {"cvd=[0]", "cvd=[1]"}), (cpu_job, {"cvd=[]"})):
        wait_job(farm, job_id, "succeeded")
        attempt = farm.api.get(f"/tasks/{tasks_of(farm, job_id)[0]['id']}/attempts")["items"][-1]
        assert full_log(farm, attempt["id"])["data"].strip() in expected


def test_a_server_stopped_while_agents_and_dashboards_wait_answers_them_and_logs_no_traceback(
        make_farm: Callable[..., Any]) -> None:
    """SIGTERM while an agent long-polls and a dashboard tab listens: both are answered at once and the
    server stops. (uvicorn held the stop for its graceful timeout, then cancelled them, a traceback
    each in the log.)"""
    import httpx

    farm = make_farm()
    farm.start_agent("n1", cores=1)
    farm.wait_for_node("n1")
    headers = {"Authorization": f"Bearer {farm.admin_token}"}
    with httpx.stream("GET", f"{farm.server_url}/events", headers=headers, timeout=30) as tab:
        lines = tab.iter_lines()
        assert next(lines).startswith("retry:")
        time.sleep(0.5)  # the agent is back in its long poll after registering (polls last 20 s)
        assert farm.kill_server(signal.SIGTERM, wait=15) is not None  # uvicorn ends on the signal again
        list(lines)  # the stream ends cleanly (a cancelled one breaks off mid-chunk)
    log = farm.server.log_path.read_text()
    assert "Traceback" not in log and "graceful shutdown exceeded" not in log, log[-3000:]
    assert "Traceback" not in farm.agents["n1"].tail(200)
