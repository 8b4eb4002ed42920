"""`thresher up` and `thresher demo` as a user runs them: real processes, stopped by a signal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from thresher.cli.localfarm import free_port

pytestmark = pytest.mark.e2e

THRESHER = [sys.executable, "-m", "thresher.cli"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THRESHER_")}
    env.update({"THRESHER_HOME": str(home), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; got:\n{''.join(lines)}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_runs_a_farm_the_cli_finds_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = _env(home)
    proc = subprocess.Popen([*THRESHER, "up", "--agents", "2", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: list[psutil.Process] = []
    try:
        lines = _wait_for_line(proc, "admin token saved")
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/api/v1" in text
        assert f"http://127.0.0.1:{port}/docs" in text
        assert (home / "data" / "admin.token").exists()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # server + 2 agents

        # No --server/--token: the CLI finds the farm through the saved client config.
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*THRESHER, *args], env=env, capture_output=True, text=True, timeout=60)

        nodes = run("nodes", "--json")
        assert nodes.returncode == 0, nodes.stderr
        assert json.loads(nodes.stdout)["total"] == 2
        job = run("submit-cmd", "--frames", "1-4", "--", "echo", "{frame}")
        assert job.returncode == 0, job.stderr
        assert run("wait", job.stdout.strip(), "--timeout", "60").returncode == 0
    finally:
        proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    assert "farm stopped" in out
    time.sleep(0.2)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"orphans left: {alive}"


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = subprocess.run([*THRESHER, "up", "--port", str(port)], env=_env(tmp_path / "home"),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("renderer", [
    "python",
    pytest.param("povray", marks=pytest.mark.skipif(not shutil.which("povray"), reason="povray not installed")),
])
def test_demo_renders_real_frames(tmp_path: Path, renderer: str) -> None:
    home = tmp_path / "home"
    out = tmp_path / "frames"
    result = subprocess.run([*THRESHER, "demo", "--frames", "1-3", "--agents", "2", "--renderer", renderer,
                             "--output", str(out), "--exit"], env=_env(home), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    frames = sorted(p.name for p in out.glob("frame_*.png"))
    assert frames == ["frame_0001.png", "frame_0002.png", "frame_0003.png"]
    for name in frames:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert f"3 of 3 frames written to {out}" in result.stdout
    # The demo farm must not replace the user's saved client config.
    assert not (home / "config" / "client.json").exists()
