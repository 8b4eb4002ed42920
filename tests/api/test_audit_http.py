"""The audit log (`server/audit.py`) through the API, in process on a real database: a sample of each
kind of call is recorded (a person's submit and kill, an artist's refused kill of another's job, an
anonymous refusal, a node registration, an admin's user change), the agents' hot path only when
refused, the filters, who may read it, the prune by age, and the recorder's batching."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from thresher.server import audit
from thresher.server.app import create_app
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext
from thresher.server.main import prepare

API = "/api/v1"


class Api:
    def __init__(self, server: ServerContext, client: TestClient, admin: str, enroll: str) -> None:
        self.server, self.client, self.admin, self.enroll = server, client, admin, enroll

    def call(self, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.client.request(method, API + path, headers=headers, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        return answer.json()

    def user(self, name: str, role: str) -> str:
        self.call("POST", "/users", self.admin, 201, json={"name": name, "role": role, "password": f"{name}-password"})
        return str(self.call("POST", "/login", None, 200, json={"user": name, "password": f"{name}-password"})["secret"])

    def entries(self, query: str = "") -> list[dict[str, Any]]:
        self.server.audit.flush()  # what waits in the buffer, now (else within half a second)
        return list(self.call("GET", f"/audit{query}", self.admin, 200)["items"])


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    server = prepare(db_url, tmp_path / "data")
    admin = (tmp_path / "data" / "admin.token").read_text().strip()
    enroll = (tmp_path / "data" / "enroll.token").read_text().strip()
    with TestClient(create_app(server)) as client:
        yield Api(server, client, admin, enroll)
    server.db.dispose()


def _spec() -> dict[str, Any]:
    return {"name": "shot", "project": "default",
            "layers": [{"name": "render", "frames": "1-2", "args": {"command": ["true"]}}]}


def _one(entries: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    found = [e for e in entries if all(e[k] == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, entries)
    return found[0]


def test_each_kind_of_call_is_recorded_refusals_too(api: Api) -> None:
    node = api.call("POST", "/agent/register", api.enroll, 200, json={
        "name": "n1", "cores": 2, "memory_mb": 4096, "instance_id": "one"})
    alice, bob = api.user("alice", "artist"), api.user("bob", "artist")
    job = api.call("POST", "/jobs", bob, 201, json=_spec())["id"]
    detail = api.call("POST", f"/jobs/{job}/kill", alice, 403)["detail"]
    api.call("POST", f"/jobs/{job}/kill", bob, 200)
    api.call("POST", f"/jobs/{job}/kill", None, 401)
    api.call("PATCH", "/users/alice", api.admin, 200, json={"role": "viewer"})
    api.call("POST", "/agent/heartbeat", node["token"], 200, json={"running": []})  # hot path, allowed: not kept
    api.call("POST", "/agent/heartbeat", alice, 403, json={"running": []})          # refused: kept
    entries = api.entries()

    registered = _one(entries, operation="register_node")
    assert (registered["kind"], registered["who"], registered["allowed"]) == ("enroll", "enrollment", True)
    submitted = _one(entries, operation="submit_job")
    assert (submitted["who"], submitted["kind"], submitted["role"], submitted["status"]) == ("bob", "user", "artist", 201)
    assert submitted["target"] == {"job_id": str(job)}
    refused = _one(entries, operation="kill_job", who="alice")
    assert (refused["status"], refused["allowed"], refused["reason"]) == (403, False, detail)
    assert refused["target"] == {"job_id": str(job)} and refused["method"] == "POST"
    assert _one(entries, operation="kill_job", who="bob")["allowed"] is True
    anonymous = _one(entries, operation="kill_job", kind="anonymous")
    assert (anonymous["who"], anonymous["status"], anonymous["allowed"]) == (None, 401, False)
    assert anonymous["reason"]
    changed = _one(entries, operation="update_user")
    assert (changed["who"], changed["role"], changed["target"]) == ("admin", "admin", {"name": "alice"})
    heartbeat = _one(entries, operation="heartbeat")
    assert (heartbeat["who"], heartbeat["status"]) == ("alice", 403)
    assert all(e["operation"] != "list_audit" for e in api.entries())  # reads are not recorded


def test_the_filters_keep_what_they_name(api: Api) -> None:
    alice, wendy = api.user("alice", "artist"), api.user("wendy", "wrangler")
    mine = api.call("POST", "/jobs", alice, 201, json=_spec())["id"]
    other = api.call("POST", "/jobs", wendy, 201, json=_spec())["id"]
    api.call("POST", f"/jobs/{other}/kill", alice, 403)
    api.call("POST", f"/jobs/{mine}/pause", alice, 200)
    assert {e["who"] for e in api.entries("?who=alice")} == {"alice"}
    assert {e["operation"] for e in api.entries("?operation=pause_job")} == {"pause_job"}
    # Newest first; a submit names the job it made, so `--job` tells who submitted it.
    assert [(e["operation"], e["who"], e["allowed"]) for e in api.entries(f"?job={other}")] == [
        ("kill_job", "alice", False), ("submit_job", "wendy", True)]
    refused = api.entries("?allowed=false")
    assert [e["operation"] for e in refused] == ["kill_job"]
    later = (utcnow() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert api.entries(f"?since={later}") == []
    assert len(api.entries(f"?until={later}")) == api.call("GET", "/audit", api.admin, 200)["total"]
    page = api.call("GET", "/audit?limit=1&offset=1", api.admin, 200)
    assert len(page["items"]) == 1 and page["total"] > 2


def test_only_wranglers_and_admins_read_the_audit_log(api: Api) -> None:
    viewer, artist, wrangler = api.user("vic", "viewer"), api.user("alice", "artist"), api.user("wendy", "wrangler")
    api.call("GET", "/audit", viewer, 403)
    api.call("GET", "/audit", artist, 403)
    api.call("GET", "/audit", None, 401)
    assert api.call("GET", "/audit", wrangler, 200)["total"] >= 1


def test_the_prune_deletes_only_entries_older_than_kept(api: Api) -> None:
    api.server.settings.audit_keep_days = 0  # the housekeeping loop of this server keeps out of the way
    now = utcnow()
    for days in (200, 100, 10, 1):
        api.server.audit.record(audit.entry(None, at=now - timedelta(days=days), address=None, method="POST",
                                            operation=f"old_{days}", target={}, status=401, reason="no credential"))
    api.server.audit.flush()
    assert audit.prune(api.server.db, 90, now, most=1) == 1   # bounded: one at a time here
    assert audit.prune(api.server.db, 90, now) == 1
    assert audit.prune(api.server.db, 90, now) == 0
    assert audit.prune(api.server.db, 0, now + timedelta(days=10_000)) == 0  # 0: kept for ever
    left = {e["operation"] for e in api.entries() if e["operation"].startswith("old_")}
    assert left == {"old_10", "old_1"}


def test_the_recorder_writes_many_calls_in_few_transactions(api: Api) -> None:
    before_flushes, before_rows = api.server.audit.flushes, api.server.audit.written
    for _ in range(60):
        api.call("POST", "/jobs/1/kill", None, 401)
    api.server.audit.flush()
    rows = api.server.audit.written - before_rows
    assert rows == 60
    assert api.server.audit.flushes - before_flushes < rows / 5


def _page(api: Api, token: str, path: str) -> Any:
    import re

    with TestClient(api.client.app, follow_redirects=False) as browser:
        form = browser.get("/login").text
        nonce = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        assert browser.post("/login", data={"token": token, "csrf": nonce, "next": "/"}).status_code == 303
        return browser.get(path), browser.get("/jobs").text


def test_the_dashboard_page_is_for_wranglers_and_admins(api: Api) -> None:
    artist = api.user("alice", "artist")
    api.call("POST", "/jobs/1/kill", artist, 404)
    page, nav = _page(api, api.admin, "/audit?who=alice")
    assert page.status_code == 200 and "kill_job" in page.text and 'href="/audit"' in nav
    refused, nav = _page(api, artist, "/audit")
    assert refused.status_code == 403 and 'href="/audit"' not in nav


def test_what_waits_in_the_buffer_is_written_at_shutdown(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from thresher.server.db.tables import audit as audit_table

    server = prepare(db_url, tmp_path / "data")
    server.audit.flush_s = 3600.0  # nothing is written on the clock: only at shutdown
    with TestClient(create_app(server)) as client:
        for _ in range(3):
            assert client.post(f"{API}/jobs/1/kill").status_code == 401
    with server.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(audit_table)).scalar_one() == 3
    server.db.dispose()


def test_a_real_farm_records_its_agent_registering_but_not_its_heartbeats(make_farm: Any) -> None:
    import time

    import httpx

    farm = make_farm()
    farm.start_agent("a1")
    farm.wait_for_node("a1")
    assert httpx.post(f"{farm.server_url}{API}/jobs/1/kill", timeout=10).status_code == 401
    deadline = time.monotonic() + 30
    while True:  # entries are written within half a second of the answer
        entries = farm.api.get("/audit")["items"]
        if {"register_node", "kill_job"} <= {e["operation"] for e in entries} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    registered = _one(entries, operation="register_node")
    assert (registered["kind"], registered["status"], registered["address"]) == ("enroll", 200, "127.0.0.1")
    refused = _one(entries, operation="kill_job")
    assert (refused["kind"], refused["status"], refused["target"]) == ("anonymous", 401, {"job_id": "1"})
    assert not [e for e in entries if e["operation"] in ("heartbeat", "ask_for_work")]
