"""`thresher up` keeps going: a crashed agent comes back, a second farm on the same data folder is refused,
the agents get the options `up` was given and share the machine; `thresher demo` keeps its farm up with a
one-time dashboard login link. Real processes, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest
from tests.e2e.test_cli_up import THRESHER, _env, _wait_for_line

from thresher.cli.localfarm import free_port
from thresher.client.api import Thresher
from thresher.model.states import NodeState, TaskState

pytestmark = pytest.mark.e2e


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return out


def _agent_pid(farm: subprocess.Popen[str], name: str) -> int:
    for child in psutil.Process(farm.pid).children(recursive=True):
        cmd = child.cmdline()
        if "agent" in cmd and "--name" in cmd and cmd[cmd.index("--name") + 1] == name:
            return child.pid
    raise AssertionError(f"no agent process named {name}")


T = TypeVar("T")


def _eventually(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """What `check` gives once it gives something (true), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_up_restarts_a_crashed_agent_and_the_other_keeps_working(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    port = free_port()
    proc = subprocess.Popen([*THRESHER, "up", "--agents", "2", "--port", str(port), "--tags", "lin,fast",
                             "--pool", "render", "--cores", "1", "--memory", "1G"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = "".join(_wait_for_line(proc, "admin token saved"))
        assert "1 core and 1024 MB each" in printed
        token = (home / "data" / "admin.token").read_text().strip()
        url = f"http://127.0.0.1:{port}"
        nodes = subprocess.run([*THRESHER, "nodes", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert nodes.returncode == 0, nodes.stderr
        listed = json.loads(nodes.stdout)["items"]
        assert len(listed) == 2
        for node in listed:  # what `up` was told reaches every agent
            assert sorted(node["tags"]) == ["fast", "lin"] and node["pool"] == "render"
            assert node["cores"] == 1 and node["memory_mb"] == 1024
        prefix = listed[0]["name"].rsplit("-", 1)[0]
        with Thresher(url, token) as client:
            client.add_project("p")
            job = client.submit({"name": "long", "project": "p", "layers": [{
                "name": "l", "template": "command", "frames": "1-2", "chunk": 1, "resources": {"cores": 1},
                "args": {"command": ["sleep", "25"]}, "pools": ["render"]}]})
            running = _eventually(lambda: [t for t in client.tasks(job.id).items if t.state == TaskState.RUNNING]
                                  if len([t for t in client.tasks(job.id).items
                                          if t.state == TaskState.RUNNING]) == 2 else None)
            by_node = {t.node: t for t in running}
            survivor = by_node[f"{prefix}-2"]
            old_pid = _agent_pid(proc, f"{prefix}-1")
            psutil.Process(old_pid).kill()  # SIGKILL: a crash
            lines = "".join(_wait_for_line(proc, "started again", timeout=30))
            assert f"agent-1 (node {prefix}-1) exited with code -9; starting it again in 1 s" in lines
            new_pid = _agent_pid(proc, f"{prefix}-1")
            assert new_pid != old_pid and proc.poll() is None

            def back_up() -> bool:
                return any(n.name == f"{prefix}-1" and n.state == NodeState.UP for n in client.all_nodes())

            _eventually(back_up)
            assert len(client.all_nodes()) == 2  # the same node came back, not a new one
            # The other agent's task ran on untouched, to its end, in its first attempt.
            done = _eventually(lambda: next((t for t in client.tasks(job.id).items
                                             if t.id == survivor.id and t.state == TaskState.SUCCEEDED), None),
                               timeout=60)
            assert done.attempt_id == survivor.attempt_id and done.node == f"{prefix}-2"
            assert client.health() is not None
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "farm stopped" in out


def test_a_second_up_on_a_served_data_folder_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    port = free_port()
    first = subprocess.Popen([*THRESHER, "up", "--agents", "0", "--port", str(port)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_line(first, "admin token saved")
        config = home / "config" / "client.json"
        saved = config.read_text()
        assert f"127.0.0.1:{port}" in saved
        server_pid = json.loads((home / "data" / "server.json").read_text())["pid"]
        other_port = free_port()
        second = subprocess.run([*THRESHER, "up", "--agents", "1", "--port", str(other_port)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"http://127.0.0.1:{port}" in second.stderr and f"pid {server_pid}" in second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        assert config.read_text() == saved  # the running farm's client config is left alone
        # `thresher server` on that folder is refused the same way.
        server = subprocess.run([*THRESHER, "server", "--port", str(other_port), "--data", str(home / "data")],
                                env=env, capture_output=True, text=True, timeout=60)
        assert server.returncode == 1 and f"pid {server_pid}" in server.stderr, server.stderr
        assert config.read_text() == saved
        assert first.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
    finally:
        _stop(first)


def test_local_agents_share_the_machine_memory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    proc = subprocess.Popen([*THRESHER, "up", "--agents", "2", "--port", str(free_port())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_line(proc, "admin token saved")
        nodes = subprocess.run([*THRESHER, "nodes", "--json"], env=env, capture_output=True, text=True, timeout=60)
        total = psutil.virtual_memory().total // (1024 * 1024)
        listed = json.loads(nodes.stdout)["items"]
        assert len(listed) == 2
        assert sum(n["memory_mb"] for n in listed) <= total
        assert all(n["memory_mb"] == total // 2 for n in listed)
    finally:
        _stop(proc)


def test_up_reads_agent_options_from_the_config_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    config = tmp_path / "thresher.toml"
    config.write_text('[agent]\ntags = ["cfg"]\npool = "fromfile"\ncores = 1\n')
    proc = subprocess.Popen([*THRESHER, "up", "--agents", "1", "--port", str(free_port()), "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_line(proc, "admin token saved")
        nodes = subprocess.run([*THRESHER, "nodes", "--json"], env=env, capture_output=True, text=True, timeout=60)
        [node] = json.loads(nodes.stdout)["items"]
        assert node["tags"] == ["cfg"] and node["pool"] == "fromfile" and node["cores"] == 1
    finally:
        _stop(proc)


def test_demo_stays_up_with_a_one_time_login_link(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen([*THRESHER, "demo", "--frames", "1-2", "--agents", "1", "--renderer", "python",
                             "--output", str(tmp_path / "frames")], env=_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = "".join(_wait_for_line(proc, "login?once=", timeout=180))
        assert "Ctrl+C stops the farm" in "".join(_wait_for_line(proc, "Ctrl+C"))
        link = next(word for word in lines.split() if "login?once=" in word)
        with httpx.Client(timeout=10) as browser:
            first = browser.get(link)
            assert first.status_code == 303 and first.headers["location"] == "/"
            assert "thresher_session" in browser.cookies
            base = link.split("/login")[0]
            page = browser.get(f"{base}/jobs/1")  # the demo's job, in the dashboard, logged in
            assert page.status_code == 200 and "demo animation" in page.text
            assert httpx.get(f"{base}/jobs/1", timeout=10).status_code in (302, 303, 401)  # not without it
        again = httpx.get(link, timeout=10)  # used once: a second browser gets the login form
        assert again.status_code == 401 and "thresher_session" not in again.cookies
        assert proc.poll() is None
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "2 of 2 frames written" in out
