"""Work finished during a partition longer than the node timeout is kept (`model/late_report.py`), over
real HTTP on both databases, with agents played by hand so the order is exact: node A takes a task and
goes silent until the server declares it down; the task goes to node B; A's spooled success arrives."""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

NODE_TIMEOUT = 2.0
_NODE = {"cores": 1, "memory_mb": 1024}


def _spec() -> dict[str, Any]:
    return {"name": "cut", "project": "default", "layers": [
        {"name": "render", "frames": "1", "retries": 0, "resources": {"cores": 1, "memory": "64M"},
         "args": {"command": ["true"]}}]}


class _Beating:
    """Heartbeats for node B from a thread, so that only A goes silent; the last answer's kill list kept."""

    def __init__(self, farm: Any, token: str) -> None:
        self.client = farm.client(token=token)
        self.stop = threading.Event()
        self.kills: list[int] = []
        self.running: list[dict[str, int]] = []  # what B says it runs (else its attempt is lost as forgotten)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.kills = self.client.post("/agent/heartbeat", {"running": self.running})["kill"]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


@pytest.fixture
def cut(make_farm: Any, db_url: str) -> Iterator[tuple[Any, Any, Any, _Beating, dict[str, Any], dict[str, Any]]]:
    """A job's one task taken by A, A declared down, the task taken again by B: (farm, A, B, B's
    heartbeats, A's assignment, B's assignment)."""
    farm = make_farm(db_url, node_timeout=NODE_TIMEOUT)
    enroll = farm.client(token=farm.enroll_token)
    a = farm.client(token=enroll.post("/agent/register", {"name": "a", **_NODE})["token"])
    a.post("/agent/heartbeat", {})
    job = farm.api.post("/jobs", _spec())
    (first,) = a.post("/agent/work", {}, wait=5)["assignments"]
    b_token = enroll.post("/agent/register", {"name": "b", **_NODE})["token"]
    beating = _Beating(farm, b_token)
    try:
        farm.wait_for_node("a", state="down", timeout=30)  # A beats no more: declared down, its attempt lost
        b = farm.client(token=b_token)
        (second,) = farm.wait_for(lambda: b.post("/agent/work", {}, wait=2)["assignments"], timeout=30)
        beating.running = [{"attempt_id": second["attempt_id"]}]
        assert second["task_id"] == first["task_id"] and first["job_id"] == job["id"]
        yield farm, a, b, beating, first, second
    finally:
        beating.close()


def _report(agent: Any, attempt_id: int, status: str) -> dict[str, Any]:
    (result,) = agent.post("/agent/finish", {"reports": [
        {"attempt_id": attempt_id, "status": status, "exit_code": 0 if status == "succeeded" else None,
         "log_size": 0}]})["results"]
    return result


def _attempts(farm: Any, task_id: int) -> dict[int, dict[str, Any]]:
    return {a["id"]: a for a in farm.api.get(f"/tasks/{task_id}")["attempts"]}


def test_a_late_success_is_kept_and_the_rerun_is_stopped(cut: Any) -> None:
    farm, a, b, beating, first, second = cut
    assert _report(a, first["attempt_id"], "succeeded")["accepted"]
    task = farm.api.get(f"/tasks/{first['task_id']}")
    assert task["state"] == "succeeded" and task["attempt_id"] == first["attempt_id"]
    # B is told to stop its re-run: in its heartbeat's kill list (and its work poll's)
    farm.wait_for(lambda: second["attempt_id"] in beating.kills, timeout=30)
    assert _report(b, second["attempt_id"], "killed")["accepted"]
    beating.running = []
    farm.wait_for(lambda: farm.api.get(f"/jobs/{first['job_id']}")["state"] == "succeeded", timeout=30)
    attempts = _attempts(farm, first["task_id"])
    assert attempts[first["attempt_id"]]["state"] == "succeeded"
    assert "success was kept" in attempts[first["attempt_id"]]["reason"]
    assert attempts[second["attempt_id"]]["state"] == "killed"
    assert farm.api.get(f"/tasks/{first['task_id']}")["state"] == "succeeded"  # the kill changed nothing
    assert [n["running"] for n in farm.api.get("/nodes")["items"]] == [[], []]  # nothing booked any more
    assert [n["free"]["cores"] for n in farm.api.get("/nodes")["items"]] == [1, 1]


def test_a_late_success_after_the_rerun_succeeded_is_only_noted(cut: Any) -> None:
    farm, a, b, beating, first, second = cut
    assert _report(b, second["attempt_id"], "succeeded")["accepted"]
    beating.running = []
    assert _report(a, first["attempt_id"], "succeeded")["accepted"]  # the agent may drop it: it was heard
    task = farm.api.get(f"/tasks/{first['task_id']}")
    assert task["state"] == "succeeded" and task["attempt_id"] == second["attempt_id"]
    attempts = _attempts(farm, first["task_id"])
    assert attempts[first["attempt_id"]]["state"] == "lost"
    assert "succeeded meanwhile" in attempts[first["attempt_id"]]["reason"]
    assert attempts[second["attempt_id"]]["state"] == "succeeded"
    # the same late report again changes nothing
    assert _report(a, first["attempt_id"], "succeeded")["accepted"]
    assert _attempts(farm, first["task_id"]) == attempts
