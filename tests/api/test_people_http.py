"""People through the API, in process on a real database: a job is its submitter's (a wrangler
may submit on someone's behalf, an artist may not), artists' priority ceiling, projects' members,
and a user disabled, a role changed, a token revoked or expired taking effect at once. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from thresher.server import auth
from thresher.server.app import create_app
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext
from thresher.server.main import prepare

API = "/api/v1"


class Api:
    def __init__(self, server: ServerContext, client: TestClient, admin: str) -> None:
        self.server, self.client, self.admin = server, client, admin

    def call(self, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.client.request(method, API + path, headers=headers, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        return answer.json()

    def user(self, name: str, role: str) -> str:
        """A user made by the admin, and a token of theirs from the password login."""
        self.call("POST", "/users", self.admin, 201, json={"name": name, "role": role, "password": f"{name}-password"})
        return str(self.call("POST", "/login", None, 200, json={"user": name, "password": f"{name}-password"})["secret"])


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    server = prepare(db_url, tmp_path / "data")
    admin = (tmp_path / "data" / "admin.token").read_text().strip()
    enroll = (tmp_path / "data" / "enroll.token").read_text().strip()
    with TestClient(create_app(server)) as client:
        made = Api(server, client, admin)
        made.call("POST", "/agent/register", enroll, 200, json={"name": "n1", "cores": 2, "memory_mb": 4096,
                                                                 "instance_id": "one"})
        yield made
    server.db.dispose()


def _spec(**fields: Any) -> dict[str, Any]:
    return {"name": "shot", "project": "default", **fields,
            "layers": [{"name": "render", "frames": "1-2", "args": {"command": ["true"]}}]}


def test_a_job_is_its_submitters_or_whom_a_wrangler_names(api: Api) -> None:
    alice, wendy = api.user("alice", "artist"), api.user("wendy", "wrangler")
    own = api.call("POST", "/jobs", alice, 201, json=_spec())
    assert (own["owner"], own["submitted_by"]) == ("alice", None)
    refused = api.call("POST", "/jobs", alice, 403, json=_spec(owner="bob"))
    assert refused["detail"] == "artist alice may not submit jobs on behalf of bob"
    api.call("POST", "/jobs?dry_run=true", alice, 403, json=_spec(owner="bob"))
    behalf = api.call("POST", "/jobs", wendy, 201, json=_spec(owner="bob"))
    assert (behalf["owner"], behalf["submitted_by"]) == ("bob", "wendy")
    assert api.call("GET", "/users/bob", api.admin, 200)["role"] == "artist"  # the owner became a user
    detail = api.call("POST", f"/jobs/{behalf['id']}/kill", alice, 403)["detail"]
    assert detail == f"artist alice may not kill job {behalf['id']} of bob"
    task = api.call("GET", f"/jobs/{behalf['id']}/tasks", alice, 200)["items"][0]["id"]
    assert api.call("POST", f"/tasks/{task}/skip", alice, 403)["detail"] == (
        f"artist alice may not skip a task of job {behalf['id']} of bob")
    api.call("POST", f"/jobs/{own['id']}/pause", alice, 200)
    api.call("POST", f"/jobs/{behalf['id']}/pause", wendy, 200)


def test_an_artist_sets_priorities_up_to_the_ceiling(api: Api) -> None:
    alice = api.user("alice", "artist")
    ceiling = api.server.settings.artist_max_priority
    api.call("POST", "/jobs", alice, 403, json=_spec(priority=ceiling + 1))
    job = api.call("POST", "/jobs", alice, 201, json=_spec(priority=ceiling))
    refused = api.call("POST", f"/jobs/{job['id']}/priority", alice, 403, json={"priority": ceiling + 1})
    assert str(ceiling) in refused["detail"]
    api.call("POST", f"/jobs/{job['id']}/priority", alice, 200, json={"priority": ceiling - 1})
    api.call("POST", f"/jobs/{job['id']}/priority", api.admin, 200, json={"priority": 900})


def test_a_project_with_members_takes_jobs_from_them_and_wranglers_only(api: Api) -> None:
    alice, bob, wendy = api.user("alice", "artist"), api.user("bob", "artist"), api.user("wendy", "wrangler")
    api.call("POST", "/projects", api.admin, 201, json={"name": "closed"})
    api.call("POST", "/jobs", bob, 201, json=_spec(project="closed"))  # no members yet: open
    api.call("POST", "/projects/closed/members", alice, 403, json={"user": "alice"})
    members = api.call("POST", "/projects/closed/members", api.admin, 200, json={"user": "alice"})
    assert members == {"project": "closed", "members": ["alice"]}
    assert api.call("POST", "/jobs", bob, 403, json=_spec(project="closed"))["detail"] == (
        "artist bob is not a member of project closed")
    api.call("POST", "/jobs", alice, 201, json=_spec(project="closed"))
    api.call("POST", "/jobs", wendy, 201, json=_spec(project="closed"))


def test_disabling_a_user_or_changing_a_role_takes_effect_at_once(api: Api) -> None:
    wendy = api.user("wendy", "wrangler")
    job = api.call("POST", "/jobs", api.admin, 201, json=_spec())
    assert api.call("GET", "/whoami", wendy, 200)["role"] == "wrangler"  # now cached
    api.call("PATCH", "/users/wendy", api.admin, 200, json={"role": "viewer"})
    assert api.call("GET", "/whoami", wendy, 200)["role"] == "viewer"
    api.call("POST", f"/jobs/{job['id']}/pause", wendy, 403)
    api.call("PATCH", "/users/wendy", api.admin, 200, json={"disabled": True})
    api.call("GET", "/jobs", wendy, 401)
    api.call("POST", "/login", None, 401, json={"user": "wendy", "password": "wendy-password"})
    api.call("PATCH", "/users/admin", api.admin, 422, json={"disabled": True})  # never locks itself out


def test_tokens_revoked_expired_and_read_only(api: Api) -> None:
    alice = api.user("alice", "artist")
    job = api.call("POST", "/jobs", alice, 201, json=_spec())
    reader = api.call("POST", "/tokens", alice, 201, json={"name": "review", "read_only": True})
    assert reader["secret"].startswith("thr_user_") and reader["user"] == "alice"
    api.call("GET", f"/jobs/{job['id']}", reader["secret"], 200)
    assert "read-only" in api.call("POST", f"/jobs/{job['id']}/kill", reader["secret"], 403)["detail"]
    listed = api.call("GET", "/tokens", alice, 200)["items"]
    assert {t["name"] for t in listed} == {"cli", "review"} and not any("secret" in t for t in listed)
    everyone = {t["user"] for t in api.call("GET", "/tokens", api.admin, 200, params={"all": "true"})["items"]}
    assert everyone == {"admin", "alice"}
    api.call("DELETE", f"/tokens/{reader['id']}", alice, 200)
    api.call("GET", "/jobs", reader["secret"], 401)
    with api.server.db.write() as conn:
        user_id = auth.lookup(conn, alice)
        assert user_id is not None
        expired = auth.create_token(conn, "user", "old", user_id=user_id.user_id,
                                    expires_at=utcnow() - timedelta(seconds=1))
    api.call("GET", "/jobs", expired, 401)
    api.call("POST", "/logout", alice, 200)
    api.call("GET", "/jobs", alice, 401)


def test_a_dashboard_session_acts_as_its_tokens_user_and_ends_when_they_are_disabled(api: Api) -> None:
    alice = api.user("alice", "artist")
    made = api.server.sessions.login(api.server.db, alice)
    assert made is not None
    cookie, session = made
    assert (session.caller.name, session.caller.role) == ("alice", "artist")
    checked = api.server.sessions.check(api.server.db, cookie)
    assert checked is not None and checked.caller.role == "artist"
    api.call("PATCH", "/users/alice", api.admin, 200, json={"disabled": True})
    assert api.server.sessions.check(api.server.db, cookie) is None
    with api.server.db.read() as conn:
        assert auth.lookup(conn, alice) is None


def test_the_dashboard_shows_the_user_and_only_the_actions_they_may_take(api: Api) -> None:
    alice, bob, vic = api.user("alice", "artist"), api.user("bob", "artist"), api.user("vic", "viewer")
    job = api.call("POST", "/jobs", alice, 201, json=_spec())["id"]

    def page(token: str) -> str:
        made = api.server.sessions.login(api.server.db, token)
        assert made is not None
        api.client.cookies.set("thresher_session", made[0])
        try:
            answer = api.client.get(f"/jobs/{job}")
        finally:
            api.client.cookies.clear()
        assert answer.status_code == 200
        return answer.text

    for token, name, role, kill, urgent in ((alice, "alice", "artist", True, False), (bob, "bob", "artist", False, False),
                                            (vic, "vic", "viewer", False, False), (api.admin, "admin", "admin", True, True)):
        html = page(token)
        assert f'{name} <span class="role">{role}</span>' in html
        assert ('id="kill-job"' in html) == kill, name
        assert ('id="urgent-job"' in html) == urgent, name
