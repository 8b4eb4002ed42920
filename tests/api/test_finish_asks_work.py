"""A finish report that also asks for work (`POST /agent/finish?work=1`, protocol 1.1) over real HTTP:
the answer carries the freed core's next task, claimed in the same write batch after the report, and
a report without `work` is answered as before (no assignments: older agents see no change)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
from tests.support.farm import Farm
from tests.support.shared_farm import attach_logs, shared_farm

from thresher.agent.connectivity import Connectivity
from thresher.agent.reporter import Reporter
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool
from thresher.client.http import ApiError


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    yield from shared_farm(request, tmp_path_factory, "finish-work")


@pytest.fixture(autouse=True)
def _farm_logs_on_failure(request: pytest.FixtureRequest, farm: Farm) -> None:
    attach_logs(request, farm)


def _done(attempt_id: int) -> dict[str, Any]:
    return {"reports": [{"attempt_id": attempt_id, "status": "succeeded", "exit_code": 0}]}


def test_a_finish_report_asking_for_work_gets_the_next_task_and_a_plain_one_gets_none(farm: Farm) -> None:
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "one-core", "cores": 1,
                                                                          "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    job = farm.api.post("/jobs", {"name": "three", "project": "default", "layers": [
        {"name": "render", "frames": "1-3", "resources": {"cores": 1}, "args": {"command": ["true"]}}]})
    (first,) = agent.post("/agent/work", {}, wait=5)["assignments"]  # one core: one task at a time

    answer = agent.post("/agent/finish", _done(first["attempt_id"]), work=1)
    assert [r["accepted"] for r in answer["results"]] == [True]
    (second,) = answer["assignments"]  # the core the report freed, handed out in the same call
    assert second["job_id"] == job["id"] and second["attempt_id"] != first["attempt_id"]
    assert answer["kill"] == []

    plain = agent.post("/agent/finish", _done(second["attempt_id"]))
    assert [r["accepted"] for r in plain["results"]] == [True]
    assert "assignments" not in plain  # as before protocol 1.1
    (third,) = agent.post("/agent/work", {}, wait=5)["assignments"]

    last = agent.post("/agent/finish", _done(third["attempt_id"]), work=1)
    assert last["assignments"] == [] and [r["accepted"] for r in last["results"]] == [True]
    # The check of the reported job runs after that answer (the agent's next task waits on neither).
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["state"] == "succeeded", timeout=10,
                  message="the job to be derived succeeded after the last report")


def test_a_node_keeping_tasks_ahead_gets_that_many_more_and_never_more_than_itself(farm: Farm) -> None:
    """`WorkAsk.ahead` / `?ahead=` (agent setting `tasks_ahead`): a full node is handed tasks to keep
    waiting, up to the cores' worth it asks for and never more than one more node's worth."""
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "ahead", "cores": 2,
                                                                          "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    job = farm.api.post("/jobs", {"name": "ahead", "project": "default", "layers": [
        {"name": "render", "frames": "1-9", "resources": {"cores": 1, "memory_mb": 512},
         "args": {"command": ["true"]}}]})
    running = agent.post("/agent/work", {}, wait=5)["assignments"]
    assert len(running) == 2  # what the node can start
    assert agent.post("/agent/work", {}, wait=0)["assignments"] == []  # full, and nothing kept waiting
    waiting = agent.post("/agent/work", {"ahead": 2}, wait=5)["assignments"]
    assert len(waiting) == 2 and {a["job_id"] for a in waiting} == {job["id"]}
    assert agent.post("/agent/work", {"ahead": 2}, wait=0)["assignments"] == []  # two are waiting already
    assert agent.post("/agent/work", {"ahead": 50}, wait=0)["assignments"] == []  # at most the node's cores

    answer = agent.post("/agent/finish", _done(running[0]["attempt_id"]), work=1, ahead=2)
    assert len(answer["assignments"]) == 1  # the freed core's worth, so that two still wait
    detail = farm.api.get(f"/jobs/{job['id']}")
    assert detail["counts"]["running"] == 4 and detail["counts"]["succeeded"] == 1, detail["counts"]

    with pytest.raises(ApiError) as refused:
        agent.post("/agent/work", {"ahead": -1}, wait=0)
    assert refused.value.status == 422 and "ahead" in str(refused.value)


def test_the_agents_reporter_asks_for_work_with_its_reports(farm: Farm, tmp_path: Path) -> None:
    """The real `agent/reporter.py` against the real server: its finish call carries `work` and
    `ahead` (a query written into the path was once dropped by the HTTP client, and reports asked for
    nothing), so the answer hands it the freed core's next task."""
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "reporter", "cores": 1,
                                                                          "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    farm.api.post("/jobs", {"name": "two", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "resources": {"cores": 1}, "args": {"command": ["true"]}}]})
    (first,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    spool = Spool(tmp_path / "state")
    spool.put_report({"attempt_id": first["attempt_id"], "status": "succeeded", "exit_code": 0, "log_size": 0})
    reporter = Reporter(farm.client(token=node["token"]), spool, Connectivity(), AgentSettings(tasks_ahead=1))
    answers: list[dict[str, Any]] = []
    reporter.on_work = answers.append
    reporter.run_once()
    assert spool.pending() == []  # accepted
    (answer,) = answers
    # the freed core's next task, and (ahead 1) one to wait: this job's second, or what other tests left
    assert 1 <= len(answer["assignments"]) <= 2, answer
    tasks = farm.api.get(f"/jobs/{first['job_id']}/tasks?limit=100")["items"]
    assert [t["state"] for t in tasks if t["attempt_id"] == first["attempt_id"]] == ["succeeded"]


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_report_that_waited_for_room_moves_the_start_to_the_process_start(farm: Farm) -> None:
    """`waited_s` (`tasks_ahead`: the task waited on its node for room) moves the attempt's and the task's
    start that much later, so a duration is the run's; never past the end; a negative wait is refused."""
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "waits", "cores": 2,
                                                                          "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    farm.api.post("/jobs", {"name": "waited", "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "resources": {"cores": 1}, "args": {"command": ["true"]}}]})
    first, second = agent.post("/agent/work", {}, wait=5)["assignments"]

    def attempt(a: dict[str, Any]) -> dict[str, Any]:
        (row,) = farm.api.get(f"/tasks/{a['task_id']}/attempts")["items"]
        return row

    assigned = _when(attempt(first)["started_at"])
    with pytest.raises(ApiError) as refused:
        agent.post("/agent/finish", {"reports": [{"attempt_id": first["attempt_id"], "status": "succeeded",
                                                  "exit_code": 0, "waited_s": -1}]})
    assert refused.value.status == 422 and "waited_s" in str(refused.value)
    time.sleep(0.4)  # the attempt has existed longer than it says it waited
    agent.post("/agent/finish", {"reports": [
        {"attempt_id": first["attempt_id"], "status": "succeeded", "exit_code": 0, "waited_s": 0.25},
        {"attempt_id": second["attempt_id"], "status": "succeeded", "exit_code": 0, "waited_s": 3600}]})
    moved = attempt(first)
    assert abs(_when(moved["started_at"]) - (assigned + 0.25)) < 0.002, moved
    assert abs(_when(farm.api.get(f"/tasks/{first['task_id']}")["started_at"]) - (assigned + 0.25)) < 0.002
    too_long = attempt(second)  # a wait longer than the attempt has existed: it started when it ended
    assert too_long["started_at"] == too_long["ended_at"], too_long


def test_a_report_the_server_refuses_is_sent_again_with_how_it_ended_alone(farm: Farm, tmp_path: Path) -> None:
    """Rule 2: a value the server refuses (here a negative `waited_s`) costs that value, not the result:
    the agent sends the attempt's id, state and exit code alone, and the task is done, not run again.
    One refused in that form too is given up (and said so in the agent's log)."""
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "refused", "cores": 1,
                                                                          "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    farm.api.post("/jobs", {"name": "refused", "project": "default", "layers": [
        {"name": "render", "frames": "1", "resources": {"cores": 1}, "args": {"command": ["true"]}}]})
    (work,) = agent.post("/agent/work", {}, wait=5)["assignments"]  # this job's, or one other tests left
    spool = Spool(tmp_path / "state")
    spool.put_report({"attempt_id": work["attempt_id"], "status": "succeeded", "exit_code": 0, "log_size": 0,
                      "cpu_s": 0.1, "reason": None, "waited_s": -5.0, "ended_at": "2026-01-01T00:00:00+00:00"})
    reporter = Reporter(farm.client(token=node["token"]), spool, Connectivity(), AgentSettings())
    reporter.run_once()
    assert spool.pending() == []
    task = farm.api.get(f"/tasks/{work['task_id']}")
    assert task["state"] == "succeeded", task  # done, not run again
    (attempt,) = [a for a in farm.api.get(f"/tasks/{task['id']}/attempts")["items"] if a["id"] == work["attempt_id"]]
    assert attempt["state"] == "succeeded" and "the server refused the full report (HTTP 422" in attempt["reason"]

    spool.put_report({"attempt_id": 10**12, "status": "succeeded", "exit_code": 0, "log_size": 0, "waited_s": -1})
    reporter.run_once()  # not this node's attempt in any form: dropped after its second refusal
    assert spool.pending() == []
