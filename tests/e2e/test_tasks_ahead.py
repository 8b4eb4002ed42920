"""A real agent that keeps tasks waiting on its node (agent setting `tasks_ahead`, `agent/room.py`):
it holds more attempts than it has cores, yet never runs more than its cores at once, each task runs
once, and a kill reaches the waiting ones before they ever start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

pytestmark = pytest.mark.e2e

AHEAD = {"THRESHER_AGENT_TASKS_AHEAD": "2"}
RUN_S = 1.0


def _most_at_once(events: list[tuple[int, int]]) -> int:
    at_once = most = 0
    for _, step in sorted(events):  # at equal times an end (-1) sorts before a start (+1)
        at_once += step
        most = max(most, at_once)
    return most


def test_tasks_kept_waiting_run_once_each_and_never_more_than_the_cores(make_farm: Callable[..., Any],
                                                                         tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("ahead", cores=2, env=AHEAD)
    marks = tmp_path / "marks"
    marks.mkdir()
    # Each task runs RUN_S, so the two that wait behind the first two wait about that long.
    script = f'echo "$(date +%s%N) 1" >> {marks}/$0; sleep {RUN_S}; echo "$(date +%s%N) -1" >> {marks}/$0'
    job = farm.api.post("/jobs", {"name": "short", "layers": [{
        "name": "l", "frames": "1-10", "resources": {"cores": 1, "memory_mb": 64}, "retries": 0,
        "args": {"command": ["sh", "-c", script, "frame{frame}"]}}]})
    seen_waiting = farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["counts"]["running"] > 2,
                                 timeout=30, interval=0.02, message="the node to hold tasks waiting")
    assert seen_waiting
    done = farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job['id']}"))["state"] in ("succeeded", "failed") and j,
                         timeout=60, interval=0.1, message="the job to end")
    assert done["state"] == "succeeded", done
    events = []
    for path in marks.iterdir():
        lines = path.read_text().split()
        assert len(lines) == 4, (path.name, lines)  # each frame ran exactly once
        events += [(int(lines[i]), int(lines[i + 1])) for i in (0, 2)]
    assert len(list(marks.iterdir())) == 10
    assert _most_at_once(events) <= 2  # two cores: never three at once, however many waited
    started = {path.name: int(path.read_text().split()[0]) / 1e9 for path in marks.iterdir()}
    for task in farm.api.get(f"/jobs/{job['id']}/tasks?limit=100")["items"]:
        attempts = farm.api.get(f"/tasks/{task['id']}/attempts")["items"]
        assert [a["state"] for a in attempts] == ["succeeded"], attempts
        # Its start is the process's, not the assignment's: a task that waited for room is not shown as
        # running longer than it ran. The server counts the agent's wait from its own assignment time, so
        # the shown start comes before the process's by the assignment's trip and the spawn (0.25 s seen
        # on a loaded 2-core CI machine), never after it; one counted from the assignment alone would be
        # about RUN_S early for the tasks that waited behind the first two.
        start = datetime.fromisoformat(attempts[0]["started_at"].replace("Z", "+00:00")).timestamp()
        early = started[f"frame{task['frames']}"] - start
        assert -0.05 < early < RUN_S * 0.6, (task, attempts[0], early)


def test_a_kill_ends_the_waiting_tasks_before_they_start(make_farm: Callable[..., Any]) -> None:
    farm = make_farm()
    agent = farm.start_agent("ahead", cores=2, env=AHEAD)
    job = farm.api.post("/jobs", {"name": "long", "layers": [{
        "name": "l", "frames": "1-4", "resources": {"cores": 1, "memory_mb": 64}, "retries": 0,
        "args": {"command": ["sleep", "60"]}}]})
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["counts"]["running"] == 4, timeout=30,
                  message="two tasks running and two waiting on the node")

    def sleeps() -> int:
        return sum(1 for p in psutil.Process(agent.pid).children(recursive=True) if p.name() == "sleep")

    farm.wait_for(lambda: sleeps() == 2, timeout=30, message="two sleeps running")
    assert sleeps() == 2  # the other two wait for room
    node = farm.api.get("/nodes/ahead")
    assert len(node["running"]) == 4 and node["free"]["cores"] == 0  # holding more than it has: none free
    farm.api.post(f"/jobs/{job['id']}/kill")
    killed = farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job['id']}"))["state"] == "killed" and j,
                           timeout=30, message="the job killed")
    assert killed["counts"]["running"] == 0
    def attempts() -> list[dict[str, Any]]:
        return [a for task in farm.api.get(f"/jobs/{job['id']}/tasks")["items"]
                for a in farm.api.get(f"/tasks/{task['id']}/attempts")["items"]]

    # "killing" until the agent says each ended
    ended = farm.wait_for(lambda: (all_ := attempts()) and all(a["state"] == "killed" for a in all_) and all_,
                          timeout=30, message="every attempt reported killed")
    assert len(ended) == 4
    logs = [farm.api.get(f"/attempts/{attempt['id']}/log")["data"] for attempt in ended]
    assert sum("not started" in log for log in logs) == 2, logs
    farm.wait_for(lambda: sleeps() == 0, timeout=30, message="no task process left")
