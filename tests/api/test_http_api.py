"""The HTTP API of a real server process: auth, clear 4xx errors, nothing half-created, listings, logs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from thresher.client.http import ApiError, HttpClient


def _spec(**layer: Any) -> dict[str, Any]:
    return {"name": "shot010", "project": "demo", "layers": [
        {"name": "render", "frames": "1-10", "chunk": 2, "args": {"command": ["echo", "{start}", "{end}"]}, **layer}]}


def _job_count(api: HttpClient) -> int:
    return api.get("/jobs")["total"]


def test_every_call_needs_a_token_of_the_right_kind(farm) -> None:
    assert httpx.get(farm.server_url + "/api/v1/health").json()["status"] == "ok"
    assert httpx.get(farm.server_url + "/openapi.json").json()["info"]["title"] == "Thresher"
    response = httpx.get(farm.server_url + "/api/v1/jobs")
    assert response.status_code == 401 and "bearer token" in response.json()["detail"]
    with pytest.raises(ApiError) as info:
        farm.client(token="thr_admin_forged").get("/jobs")
    assert info.value.status == 401
    enroll = farm.client(token=farm.enroll_token)
    with pytest.raises(ApiError) as info:
        enroll.post("/jobs", _spec())
    assert info.value.status == 403
    node = enroll.post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    with pytest.raises(ApiError) as info:
        agent.get("/jobs")
    assert info.value.status == 403
    with pytest.raises(ApiError) as info:
        farm.api.post("/agent/heartbeat", {})
    assert info.value.status == 403


def test_dry_run_shows_commands_and_submits_nothing(farm) -> None:
    result = farm.api.post("/jobs", _spec(), dry_run="true")
    assert result["valid"] and result["total_tasks"] == 5
    assert result["tasks"][0]["argv"] == ["echo", "1", "2"]
    assert _job_count(farm.api) == 0


def test_listing_filters_and_paging(farm) -> None:
    ids = [farm.api.post("/jobs", {**_spec(), "name": f"job{i}", "project": "a" if i % 2 else "b"})["id"] for i in range(5)]
    page = farm.api.get("/jobs", limit=2, offset=0)
    assert page["total"] == 5 and [j["id"] for j in page["items"]] == ids[::-1][:2]
    assert {j["project"] for j in farm.api.get("/jobs", project="a")["items"]} == {"a"}
    assert [j["name"] for j in farm.api.get("/jobs", name="job3")["items"]] == ["job3"]
    assert farm.api.get("/jobs", state="queued")["total"] == 5
    job = farm.api.get(f"/jobs/{ids[0]}")
    assert job["counts"]["ready"] == 5 and job["layers"][0]["total_tasks"] == 5
    assert farm.api.get(f"/jobs/{ids[0]}/tasks", limit=2)["total"] == 5
    farm.api.post(f"/jobs/{ids[0]}/priority", {"priority": 99})
    assert farm.api.get("/jobs", sort="-priority")["items"][0]["id"] == ids[0]
    with pytest.raises(ApiError) as info:
        farm.api.post(f"/jobs/{ids[0]}/priority", {"priority": -1})
    assert info.value.errors[0]["field"] == "priority"


def test_agent_protocol_log_is_idempotent_and_finish_waits_for_the_log(farm) -> None:
    job = farm.api.post("/jobs", _spec(frames="1", chunk=1))
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    work = agent.post("/agent/work", {}, wait=5)
    (assignment,) = work["assignments"]
    attempt = assignment["attempt_id"]
    assert agent.post(f"/agent/attempts/{attempt}/log", {"offset": 0, "data": "héllo\n"})["next_offset"] == 7
    assert agent.post(f"/agent/attempts/{attempt}/log", {"offset": 0, "data": "héllo\nworld\n"})["next_offset"] == 13
    with pytest.raises(ApiError) as info:
        agent.post(f"/agent/attempts/{attempt}/log", {"offset": 50, "data": "x"})
    assert info.value.status == 409 and info.value.body["next_offset"] == 13
    early = agent.post("/agent/finish", {"reports": [{"attempt_id": attempt, "status": "succeeded", "exit_code": 0,
                                                      "log_size": 20}]})
    assert early["results"][0] == {"attempt_id": attempt, "accepted": False, "next_offset": 13}
    done = agent.post("/agent/finish", {"reports": [{"attempt_id": attempt, "status": "succeeded", "exit_code": 0,
                                                     "log_size": 13}]})
    assert done["results"][0]["accepted"]
    log = farm.api.get(f"/attempts/{attempt}/log")
    assert log["data"] == "héllo\nworld\n" and log["complete"]
    assert farm.api.get(f"/attempts/{attempt}/log", offset=7)["data"] == "world\n"
    assert farm.api.get(f"/jobs/{job['id']}")["state"] == "succeeded"


def test_a_second_agent_cannot_take_a_live_nodes_name(farm) -> None:
    enroll = farm.client(token=farm.enroll_token)
    enroll.post("/agent/register", {"name": "twin", "cores": 2, "memory_mb": 2048, "instance_id": "a"})
    with pytest.raises(ApiError) as info:
        enroll.post("/agent/register", {"name": "twin", "cores": 2, "memory_mb": 2048, "instance_id": "b"})
    assert info.value.status == 409 and "cloned" in info.value.detail


def test_heartbeat_records_live_usage_and_progress(farm) -> None:
    job = farm.api.post("/jobs", _spec(frames="1", chunk=1))
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    (assignment,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    attempt = assignment["attempt_id"]
    beat = {"cpu_percent": 50.0, "memory_used_mb": 900, "load": 1.5,
            "running": [{"attempt_id": attempt, "cpu_s": 3.5, "rss_mb": 120.0, "progress": 40.0}]}
    answer = agent.post("/agent/heartbeat", beat)
    assert answer == {"kill": [], "admin_state": "enabled"}
    beat["running"][0].update(rss_mb=80.0, progress=60.0)
    agent.post("/agent/heartbeat", beat)
    task = farm.api.get(f"/tasks/{assignment['task_id']}")
    assert task["progress"] == 60.0
    assert task["attempts"][0]["peak_rss_mb"] == 120.0 and task["attempts"][0]["cpu_s"] == 3.5
    assert farm.api.get("/nodes/n1")["load"] == 1.5
    # an attempt the agent runs that the server no longer wants is in the kill list
    farm.api.post(f"/jobs/{job['id']}/kill")
    assert agent.post("/agent/heartbeat", beat)["kill"] == [attempt]
