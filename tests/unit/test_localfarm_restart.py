"""`LocalFarm.check` starts a dead agent again with a growing delay, and only the server ends the farm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from thresher.cli.localfarm import RESTART_DELAYS_S, Child, LocalFarm, split_memory


def _dying() -> Child:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    return Child("agent-1", proc, None)


def test_an_agent_that_keeps_dying_waits_longer_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    farm = LocalFarm(data_dir=tmp_path, port=1, agents=1, node_prefix="n", say=said.append)
    spawned: list[int] = []

    def spawn(index: int) -> Child:
        spawned.append(index)
        return _dying()

    monkeypatch.setattr(farm, "_spawn_agent", spawn)
    farm.agent_children = [_dying()]
    delays = []
    for _ in range(len(RESTART_DELAYS_S) + 1):
        assert farm.check() is None  # a dead agent never ends the farm
        delays.append(said[-1].split(" again in ")[1].split(" s")[0])
        assert said[-1].startswith("agent-1 (node n-1) exited with code 3; starting it again in ")
        farm.agent_children[0].restart_at = 0.0  # its delay is over
        assert farm.check() is None
        assert said[-1].startswith("agent-1 started again (pid ")
    assert delays == ["1", "2", "5", "10", "30", "30"]
    assert spawned == [1] * (len(RESTART_DELAYS_S) + 1)


def test_the_server_dying_ends_the_farm(tmp_path: Path) -> None:
    farm = LocalFarm(data_dir=tmp_path, port=1)
    farm.server = _dying()
    problem = farm.check()
    assert problem is not None and problem.startswith("server exited with code 3")


def test_memory_is_shared_out_like_cores() -> None:
    assert split_memory(16000, 4) == 4000
    assert split_memory(1000, 0) == 1000
    assert split_memory(None, 1) > 0
