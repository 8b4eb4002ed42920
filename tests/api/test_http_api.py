"""The HTTP API of a real server process: auth, clear 4xx errors, nothing half-created, listings, logs."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from thresher.client.api import Thresher
from thresher.client.http import ApiError, HttpClient
from thresher.server.db.engine import Database, normalize_url
from thresher.server.db.tables import tokens
from thresher.server.submit import check_spec, create_job


def _spec(**layer: Any) -> dict[str, Any]:
    return {"name": "shot010", "project": "demo", "layers": [
        {"name": "render", "frames": "1-10", "chunk": 2, "args": {"command": ["echo", "{start}", "{end}"]}, **layer}]}


def _job_count(api: HttpClient) -> int:
    return api.get("/jobs")["total"]


def test_every_call_needs_a_token_of_the_right_kind(farm) -> None:
    assert httpx.get(farm.server_url + "/api/v1/health").json()["status"] == "ok"
    assert httpx.get(farm.server_url + "/openapi.json").status_code == 401  # behind login
    assert httpx.get(farm.server_url + "/openapi.json", headers={"Authorization": f"Bearer {farm.admin_token}"}
                     ).json()["info"]["title"] == "Thresher"
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
    huge = 10**20  # no column holds it: a 422 naming the field, never a 500
    for path, body, field in [
        (f"/agent/attempts/{huge}/log", {"offset": 0, "data": "x"}, "attempt_id"),
        (f"/agent/attempts/{attempt}/log", {"offset": huge, "data": "x"}, "offset"),
        ("/agent/finish", {"reports": [{"attempt_id": huge, "status": "failed"}]}, "reports.0.attempt_id"),
        ("/agent/finish", {"reports": [{"attempt_id": attempt, "status": "failed", "exit_code": huge}]},
         "reports.0.exit_code"),
        ("/agent/heartbeat", {"running": [{"attempt_id": huge}]}, "running.0.attempt_id"),
        ("/agent/heartbeat", {"pending_reports": [huge]}, "pending_reports.0"),
    ]:
        with pytest.raises(ApiError) as info:
            agent.post(path, body)
        assert info.value.status == 422 and field in [e["field"] for e in info.value.body["errors"]], (path, info.value.body)


def test_a_second_agent_cannot_take_a_live_nodes_name(farm) -> None:
    enroll = farm.client(token=farm.enroll_token)
    enroll.post("/agent/register", {"name": "twin", "cores": 2, "memory_mb": 2048, "instance_id": "a"})
    with pytest.raises(ApiError) as info:
        enroll.post("/agent/register", {"name": "twin", "cores": 2, "memory_mb": 2048, "instance_id": "b"})
    assert info.value.status == 409 and "cloned" in info.value.detail


def test_a_node_keeps_the_hardware_address_its_agent_registers(farm) -> None:
    enroll = farm.client(token=farm.enroll_token)
    enroll.post("/agent/register", {"name": "inv", "cores": 2, "memory_mb": 2048, "mac": "52:54:00:ab:cd:ef"})
    assert farm.api.get("/nodes/inv")["mac"] == "52:54:00:ab:cd:ef"
    enroll.post("/agent/register", {"name": "old", "cores": 2, "memory_mb": 2048})  # an agent that sends none
    assert farm.api.get("/nodes/old")["mac"] is None
    with pytest.raises(ApiError) as refused:
        enroll.post("/agent/register", {"name": "bad", "cores": 2, "memory_mb": 2048, "mac": "not-a-mac"})
    assert refused.value.status == 422 and refused.value.body["errors"][0]["field"] == "mac"


def test_heartbeat_records_live_usage_and_progress(farm) -> None:
    job = farm.api.post("/jobs", _spec(frames="1", chunk=1))
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    (assignment,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    attempt = assignment["attempt_id"]
    beat: dict[str, Any] = {"cpu_percent": 50.0, "memory_used_mb": 900, "load": 1.5,
            "running": [{"attempt_id": attempt, "cpu_s": 3.5, "rss_mb": 120.0, "progress": 40.0}]}
    answer = agent.post("/agent/heartbeat", beat)
    assert answer == {"kill": [], "admin_state": "enabled"}
    beat["running"][0].update(rss_mb=80.0, progress=60.0)
    agent.post("/agent/heartbeat", beat)
    task = farm.api.get(f"/tasks/{assignment['task_id']}")
    assert task["progress"] == 60.0
    assert task["attempts"][0]["peak_rss_mb"] == 120.0 and task["attempts"][0]["cpu_s"] == 3.5
    assert farm.api.get("/nodes/n1")["load"] == 1.5
    # what the node runs, as a person reads it: the job's name, the layer, the frames, the progress
    (running,) = farm.api.get("/nodes/n1")["running"]
    assert {k: running[k] for k in ("job_id", "job_name", "layer", "frames", "progress")} == {
        "job_id": job["id"], "job_name": job["name"], "layer": job["layers"][0]["name"], "frames": "1", "progress": 60.0}
    # an attempt the agent runs that the server no longer wants is in the kill list
    farm.api.post(f"/jobs/{job['id']}/kill")
    who = farm.api.get('/whoami')['name']
    killed = agent.post("/agent/heartbeat", beat)
    assert (killed["kill"], killed["kill_reasons"]) == ([attempt], {str(attempt): f"job killed by {who}"})
    polled = agent.post("/agent/work", {}, wait=2)  # the long poll says it too, with why
    assert (polled["kill"], polled["kill_reasons"]) == ([attempt], {str(attempt): f"job killed by {who}"})
    # and it ends saying who stopped it, not what the agent knows ("killed by server")
    agent.post("/agent/finish", {"reports": [{"attempt_id": attempt, "status": "killed", "exit_code": -15,
                                              "reason": "killed by server", "log_size": 0}]})
    (ended,) = farm.api.get(f"/tasks/{assignment['task_id']}")["attempts"]
    assert (ended["state"], ended["reason"]) == ("killed", f"job killed by {who}")


def test_a_node_credential_acts_only_for_its_own_node_and_secrets_are_stored_hashed(farm) -> None:
    """Rule 5: node n2's token cannot write n1's log, end n1's attempt or call people's routes; the
    tokens table holds digests only."""
    job = farm.api.post("/jobs", _spec(frames="1", chunk=1))
    enroll = farm.client(token=farm.enroll_token)
    secrets = {"admin": farm.admin_token, "enroll": farm.enroll_token}
    agents = {}
    for name in ("n1", "n2"):
        secrets[name] = enroll.post("/agent/register", {"name": name, "cores": 2, "memory_mb": 2048})["token"]
        agents[name] = farm.client(token=secrets[name])
    (assignment,) = agents["n1"].post("/agent/work", {}, wait=5)["assignments"]
    attempt_id, task_id = assignment["attempt_id"], assignment["task_id"]
    assert agents["n1"].post(f"/agent/attempts/{attempt_id}/log", {"offset": 0, "data": "mine\n"})["next_offset"] == 5

    before = farm.api.get(f"/tasks/{task_id}")
    intruder = agents["n2"]
    with pytest.raises(ApiError) as info:
        intruder.post(f"/agent/attempts/{attempt_id}/log", {"offset": 5, "data": "forged\n"})
    assert info.value.status == 404
    forged = intruder.post("/agent/finish", {"reports": [{"attempt_id": attempt_id, "status": "failed",
                                                          "exit_code": 1, "log_size": 5, "reason": "forged"}]})
    assert forged["results"] == [{"attempt_id": attempt_id, "accepted": False, "next_offset": None,
                                  "reason": f"no attempt {attempt_id} on this node"}]
    intruder.post("/agent/heartbeat", {"running": [{"attempt_id": attempt_id, "progress": 99.0, "cpu_s": 1e6}]})
    task = farm.api.get(f"/tasks/{task_id}")
    assert task == before  # task and attempt unchanged: state, node, progress, usage, exit code, reason
    (attempt,) = task["attempts"]
    assert (task["state"], attempt["state"], attempt["node"], attempt["exit_code"]) == ("running", "running", "n1", None)
    assert farm.api.get(f"/attempts/{attempt_id}/log")["data"] == "mine\n"
    # the real owner still finishes it
    done = agents["n1"].post("/agent/finish", {"reports": [{"attempt_id": attempt_id, "status": "succeeded",
                                                            "exit_code": 0, "log_size": 5}]})
    assert done["results"][0]["accepted"] is True
    assert farm.api.get(f"/jobs/{job['id']}")["state"] == "succeeded"

    for method, path in [("GET", "/jobs"), ("POST", "/jobs"), ("GET", f"/jobs/{job['id']}"),
                         ("POST", f"/jobs/{job['id']}/retry"), ("GET", f"/tasks/{task_id}"),
                         ("GET", f"/attempts/{attempt_id}/log"), ("GET", "/nodes"), ("POST", "/nodes/n1/disable"),
                         ("GET", "/templates")]:
        with pytest.raises(ApiError) as info:
            intruder.request(method, path, json=_spec() if path == "/jobs" else ({} if method == "POST" else None))
        assert info.value.status == 403, (method, path)
    assert farm.api.get("/nodes/n1")["admin_state"] == "enabled"

    engine = create_engine(normalize_url(farm.db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(tokens)).all()
    finally:
        engine.dispose()
    stored = "\n".join(repr(tuple(row)) for row in rows)
    digests = {row.digest for row in rows}
    for kind, secret in secrets.items():
        random_part = secret.split("_", 2)[2]  # thr_<kind>_<random>; the random part may hold "_" itself
        assert secret not in stored and random_part not in stored, kind
        assert hashlib.sha256(secret.encode()).hexdigest() in digests, kind


def test_a_waiting_agent_gets_work_that_no_wake_up_announced(farm) -> None:
    """Work that reached the database without a wake-up (written by another server process, here by
    this test) still reaches an agent waiting in a long poll: the server looks for every waiting agent
    at once every couple of seconds. Without that look the 30 s poll would end empty."""
    enroll = farm.client(token=farm.enroll_token)
    agent = farm.client(token=enroll.post("/agent/register", {"name": "w1", "cores": 2, "memory_mb": 2048})["token"])
    answer: dict[str, Any] = {}
    poll = threading.Thread(target=lambda: answer.update(agent.post("/agent/work", {}, wait=30)))
    poll.start()
    time.sleep(1.0)  # the agent has looked once, found nothing and waits
    db = Database(farm.db_url)
    try:
        with db.write() as conn:
            job = create_job(conn, check_spec({"name": "elsewhere", "layers": [
                {"name": "l", "frames": "1", "args": {"command": ["true"]}}]}), "another-process")
    finally:
        db.dispose()
    poll.join(timeout=45)
    assert not poll.is_alive()
    assert [a["job_id"] for a in answer["assignments"]] == [job]


def test_the_api_address_thresher_up_prints_works_as_the_server_and_a_wrong_path_is_named(farm) -> None:
    for typed in (f"{farm.server_url}/api/v1", f"{farm.server_url}/api/v1/"):
        with Thresher(server=typed, token=farm.admin_token) as client:
            assert client.server == farm.server_url
            assert client.jobs().total == 0
    with Thresher(server=f"{farm.server_url}/thresher", token=farm.admin_token) as client:
        with pytest.raises(ApiError) as refused:
            client.jobs()
    assert refused.value.detail == (f"no Thresher API at {farm.server_url}/thresher: give the server's base "
                                    "address, as http://host:8642")
    with Thresher(server=farm.server_url, token=farm.admin_token) as client:
        with pytest.raises(ApiError) as missing:  # Thresher's own 404 about a thing is left as it is
            client.job(999999)
    assert missing.value.status == 404 and "999999" in missing.value.detail
