"""An idle agent's long poll that carries its heartbeat counts as one (`model/heartbeat_rule.py`): a
node that only polls so stays up with its figures recorded, while a node whose agent sends an old,
empty poll and no heartbeat goes down; the poll's answer says a drain; a kill reaches it at once."""

from __future__ import annotations

import time
from typing import Any, Callable

BEAT = {"heartbeat": {"cpu_percent": 7.0, "memory_used_mb": 512, "load": 0.25, "running": [], "pending_reports": []}}


def test_a_node_that_only_polls_with_its_heartbeat_stays_up(make_farm: Callable[..., Any]) -> None:
    farm = make_farm(node_timeout=3)
    enroll = farm.client(token=farm.enroll_token)
    quiet = enroll.post("/agent/register", {"name": "quiet", "cores": 2, "memory_mb": 2048})
    enroll.post("/agent/register", {"name": "old", "cores": 2, "memory_mb": 2048})
    assert quiet["poll_heartbeat"] is True
    agent = farm.client(token=quiet["token"])
    # a kill reaches it at once, whatever the poll's wait
    job = farm.api.post("/jobs", {"name": "one", "layers": [
        {"name": "render", "frames": "1", "args": {"command": ["echo", "{start}"]}}]})
    (assignment,) = agent.post("/agent/work", BEAT, wait=5)["assignments"]
    attempt = assignment["attempt_id"]
    farm.api.post(f"/jobs/{job['id']}/kill")
    running = {"heartbeat": {**BEAT["heartbeat"], "running": [{"attempt_id": attempt, "progress": 10.0}]}}
    who = farm.api.get("/whoami")["name"]
    assert agent.post("/agent/work", running, wait=30) == {"assignments": [], "kill": [attempt], "kill_reasons": {
        str(attempt): f"job killed by {who}"}, "admin_state": "enabled"}
    agent.post("/agent/finish", {"reports": [{"attempt_id": attempt, "status": "killed", "log_size": 0}]})
    # "old" says nothing more (an old agent's `{}` poll is no heartbeat): it goes down; "quiet" polls
    deadline = time.monotonic() + 30
    while farm.api.get("/nodes/old")["state"] != "down":
        assert time.monotonic() < deadline, "a silent node was never declared down"
        assert agent.post("/agent/work", BEAT, wait=0.3) == {"assignments": [], "kill": [], "admin_state": "enabled"}
        assert farm.api.get("/nodes/quiet")["state"] == "up"
    assert farm.api.get("/nodes/quiet")["load"] == 0.25
    # a drain reaches the idle agent in its poll's answer
    farm.api.post("/nodes/quiet/drain")
    assert agent.post("/agent/work", BEAT, wait=0.1)["admin_state"] == "draining"
    # an empty poll (what older agents send) is answered as before
    assert agent.post("/agent/work", {}, wait=0.1) == {"assignments": [], "kill": []}


def test_an_idle_poll_that_skips_its_look_still_finds_what_was_announced(make_farm: Callable[..., Any]) -> None:
    """An idle poll skips its first look when nothing was announced since the node's last fruitless
    look (`notify.Notifier.news_since_look`); work submitted or a kill asked between two polls of no
    wait at all is still found by the next one."""
    farm = make_farm()
    reg = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "idle", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=reg["token"])
    empty = {"assignments": [], "kill": [], "admin_state": "enabled"}
    for _ in range(3):  # fruitless looks, then skipped ones
        assert agent.post("/agent/work", BEAT, wait=0) == empty
    job = farm.api.post("/jobs", {"name": "gap", "layers": [
        {"name": "render", "frames": "1", "args": {"command": ["echo", "{start}"]}}]})
    (assignment,) = agent.post("/agent/work", BEAT, wait=0)["assignments"]
    assert assignment["job_id"] == job["id"]
    running = {"heartbeat": {**BEAT["heartbeat"], "running": [{"attempt_id": assignment["attempt_id"]}]}}
    assert agent.post("/agent/work", running, wait=0)["assignments"] == []
    farm.api.post(f"/jobs/{job['id']}/kill")
    assert agent.post("/agent/work", running, wait=0)["kill"] == [assignment["attempt_id"]]
