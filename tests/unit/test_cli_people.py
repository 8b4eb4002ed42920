"""The people commands against a fake server: what they send, `--json` printing the server's answer
back, and `thresher login` saving its token where the CLI looks for one (mode 0600). The calls
themselves run on a real server in tests/api/test_people_http.py."""

from __future__ import annotations

import json
import stat
from typing import Any

import httpx
from tests.unit.test_cli_commands import FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared

from thresher.client.config import client_config_path

USER = {"id": 2, "name": "alice", "role": "artist", "source": "local", "disabled": False, "has_password": True,
        "created_at": "2026-01-01T10:00:00Z", "locked_until": None, "sessions": 0}
TOKEN = {"id": 5, "name": "pipeline", "user": "alice", "kind": "user", "created_at": "2026-01-01T10:00:00Z",
         "expires_at": "2026-02-01T10:00:00Z", "read_only": True, "revoked_at": None}
MADE = {**TOKEN, "secret": "thr_user_secret"}
ME = {"kind": "user", "name": "alice", "node_id": None, "role": "artist", "read_only": False}


def _json(*args: str, input: str | None = None) -> Any:
    result = run(*args, "-s", "http://x", "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_the_people_commands() -> None:
    result = run("--help")
    for name in ("user", "token", "login", "logout"):
        assert name in result.stdout
    assert "member" in run("project", "--help").stdout


def test_users(fake: FakeServer) -> None:
    fake.routes[("GET", "/users")] = page(USER)
    fake.routes[("POST", "/users")] = lambda req: httpx.Response(201, json=USER)
    fake.routes[("PATCH", "/users/alice")] = {**USER, "disabled": True}
    fake.routes[("PUT", "/users/alice/password")] = USER
    assert _json("user", "list") == {"items": [USER], "total": 1}
    assert "alice" in run("user", "list", "-s", "http://x").stdout
    assert _json("user", "add", "alice", "--role", "artist", "--password", input="long-secret\nlong-secret\n") == USER
    assert fake.last_json() == {"name": "alice", "role": "artist", "password": "long-secret"}
    _json("user", "disable", "alice")
    assert fake.last_json() == {"disabled": True}
    _json("user", "set", "alice", "--role", "viewer")
    assert fake.last_json() == {"role": "viewer"}
    assert run("user", "set", "alice", "-s", "http://x").exit_code == 1  # nothing to change
    _json("user", "passwd", "alice", input="other-secret\nother-secret\n")
    assert fake.last_json() == {"password": "other-secret"}


SESSION = {"id": 3, "user": "alice", "created_at": "2026-01-01T10:00:00Z", "last_seen": "2026-01-01T11:00:00Z",
           "address": "10.0.0.1", "user_agent": "Firefox", "with_token": False, "ended_at": None, "end_reason": None}


def test_own_password_unlock_and_sessions(fake: FakeServer) -> None:
    fake.routes[("PUT", "/password")] = USER
    fake.routes[("POST", "/users/alice/unlock")] = USER
    fake.routes[("GET", "/users/alice/sessions")] = page(SESSION)
    fake.routes[("POST", "/users/alice/sessions/end")] = {"user": "alice", "ended": 2}
    fake.routes[("GET", "/whoami")] = ME
    _json("user", "passwd", input="old-secret\nnew-secret-1\nnew-secret-1\n")  # your own: the old one first
    assert fake.last_json() == {"old_password": "old-secret", "password": "new-secret-1"}
    assert _json("user", "unlock", "alice") == USER
    assert _json("user", "sessions", "alice") == {"items": [SESSION], "total": 1}
    listing = run("user", "sessions", "alice", "-s", "http://x").stdout
    assert "10.0.0.1" in listing and "password" in listing and "open" in listing
    assert _json("user", "logout-everywhere") == {"user": "alice", "ended": 2}  # yours: whoami names you
    assert "2 dashboard session(s) of alice ended" in run("user", "logout-everywhere", "alice", "-s", "http://x").stdout
    locked = {**USER, "locked_until": "2026-01-01T12:00:00Z", "sessions": 1}
    fake.routes[("GET", "/users")] = page(locked)
    assert "locked until 2026-01-01 12:00" in run("user", "list", "-s", "http://x").stdout


def test_tokens(fake: FakeServer) -> None:
    fake.routes[("POST", "/tokens")] = lambda req: httpx.Response(201, json=MADE)
    fake.routes[("GET", "/tokens")] = page(TOKEN)
    fake.routes[("DELETE", "/tokens/5")] = {**TOKEN, "revoked_at": "2026-01-02T10:00:00Z"}
    assert _json("token", "create", "pipeline", "--days", "30", "--read-only") == MADE
    assert fake.last_json() == {"name": "pipeline", "expires_in_days": 30.0, "read_only": True}
    assert "thr_user_secret" in run("token", "create", "pipeline", "-s", "http://x").stdout  # shown once
    assert _json("token", "list", "--all") == {"items": [TOKEN], "total": 1}
    assert fake.requests[-1].url.params["all"] == "true"
    assert _json("token", "revoke", "5")["revoked_at"]


def test_login_saves_the_token_for_the_cli_and_logout_revokes_it(fake: FakeServer) -> None:
    fake.routes[("POST", "/login")] = MADE
    fake.routes[("GET", "/whoami")] = ME
    fake.routes[("POST", "/logout")] = {**TOKEN, "revoked_at": "2026-01-02T10:00:00Z"}
    result = run("login", "--server", "http://farm:8642", "--user", "alice", input="alice-password\n")
    assert result.exit_code == 0, result.output
    assert fake.requests[-2].url.path == "/api/v1/login"
    assert json.loads(fake.requests[-2].content)["user"] == "alice"
    assert fake.requests[-1].headers["authorization"] == "Bearer thr_user_secret"  # checked before it is saved
    saved = client_config_path()
    assert json.loads(saved.read_text()) == {"server": "http://farm:8642", "token": "thr_user_secret"}
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    result = run("logout")
    assert result.exit_code == 0, result.output
    assert fake.requests[-1].headers["authorization"] == "Bearer thr_user_secret"
    result = run("login", "--server", "http://farm:8642", "--token", "thr_user_other")
    assert result.exit_code == 0 and json.loads(saved.read_text())["token"] == "thr_user_other"


def test_members(fake: FakeServer) -> None:
    fake.routes[("POST", "/projects/show/members")] = {"project": "show", "members": ["alice"]}
    fake.routes[("DELETE", "/projects/show/members/alice")] = {"project": "show", "members": []}
    assert _json("project", "member", "add", "show", "alice")["members"] == ["alice"]
    assert fake.last_json() == {"user": "alice"}
    assert _json("project", "member", "remove", "show", "alice")["members"] == []
