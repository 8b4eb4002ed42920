"""Dashboard session cookies: signed with the server secret from the data folder, never a database value.

What they promise: a database backup is no key to a session (a cookie signed with the token's stored
digest, as cookies once were, is refused); rotating the secret ends every session, also in a running
server; a session lives at most 12 hours idle and 7 days in all, and use keeps it open with a
database write every few minutes at most; the secret file is 0600. (Sessions ending by logout,
disabling and so on: tests/api/test_sessions_http.py.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import stat
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from thresher.cli.main import app as cli
from thresher.server.app import create_app
from thresher.server.context import ServerContext
from thresher.server.dashboard import session as sessions
from thresher.server.dashboard.secret import SECRET_FILE, SecretFileError, SessionSecret, rotate_secret
from thresher.server.dashboard.session import COOKIE, IDLE_S, LIFETIME_S, TOUCH_S
from thresher.server.db import tables
from thresher.server.db.tables import tokens
from thresher.server.main import prepare

T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(tmp_path: Path, data: Path) -> Iterator[ServerContext]:
    ctx = prepare(f"sqlite:///{tmp_path / 'sessions.db'}", data)
    ctx.sessions.clock = Clock()
    yield ctx
    ctx.db.dispose()


def clock(server: ServerContext) -> Clock:
    assert isinstance(server.sessions.clock, Clock)
    return server.sessions.clock


def admin_token(data: Path) -> str:
    return (data / "admin.token").read_text().strip()


def login(server: ServerContext, data: Path) -> str:
    made = server.sessions.login(server.db, admin_token(data))
    assert made is not None
    return made[0]


def check(server: ServerContext, cookie: str) -> sessions.Session | None:
    return server.sessions.check(server.db, cookie)


def test_the_secret_file_is_private_and_kept_across_restarts(server: ServerContext, data: Path,
                                                             tmp_path: Path) -> None:
    path = data / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", path.read_text().strip())
    cookie = login(server, data)
    again = prepare(f"sqlite:///{tmp_path / 'sessions.db'}", data)  # a restart, or a second process
    again.sessions.clock = server.sessions.clock
    assert again.sessions.check(again.db, cookie) is not None
    again.db.dispose()
    rotated = rotate_secret(data)
    assert rotated == path and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_cookie_signed_with_the_token_digest_is_refused(server: ServerContext, data: Path) -> None:
    """What a database backup gives away (the token's digest and row id) makes no session."""
    cookie = login(server, data)
    assert check(server, cookie) is not None
    with server.db.read() as conn:
        row = conn.execute(select(tokens.c.id, tokens.c.digest).where(tokens.c.kind == "admin")).one()

    def mac(key: str, message: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()).decode() \
            .rstrip("=")

    now = int(T0)
    old_payload = f"v1.{row.id}.{now + 3600}.csrf"  # the cookies of before, keyed by the stored digest
    assert check(server, f"{old_payload}.{mac(row.digest, old_payload)}") is None
    payload = f"v2.{row.id}.{now}.{now}.csrf"  # today's layout, keyed by what the backup holds
    for key, message in ((row.digest, payload), (row.digest, f"{payload}\n{row.digest}")):
        assert check(server, f"{payload}.{mac(key, message)}") is None
    # and a real cookie changed in any field is refused
    parts = cookie.split(".")
    for i, value in ((1, "999"), (2, str(now + 1)), (3, str(now + 1)), (4, "other")):
        assert check(server, ".".join(parts[:i] + [value] + parts[i + 1:])) is None
    for junk in ("", "v2", "v2.1.2.3.4.5.6", "v2.x.1.1.c.s", "v2.1.²." + ".".join(parts[3:]),
                 f"v2.{10 ** 30}.{now}.{now}.c.s"):
        assert check(server, junk) is None


def test_rotating_the_secret_ends_every_session_in_a_running_server(server: ServerContext, data: Path) -> None:
    first, second = login(server, data), login(server, data)
    assert check(server, first) is not None and check(server, second) is not None
    rotate_secret(data)  # another process (the CLI) writes the file; this store notices
    assert check(server, first) is None and check(server, second) is None
    fresh = login(server, data)
    assert check(server, fresh) is not None


def test_the_rotate_command(server: ServerContext, data: Path, tmp_path: Path) -> None:
    cookie = login(server, data)
    result = CliRunner().invoke(cli, ["secret", "rotate", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert str(data / SECRET_FILE) in result.output and check(server, cookie) is None
    assert stat.S_IMODE((data / SECRET_FILE).stat().st_mode) == 0o600
    missing = CliRunner().invoke(cli, ["secret", "rotate", "--data-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "no server data folder" in missing.output
    assert "every dashboard session" in CliRunner().invoke(cli, ["secret", "rotate", "--help"]).output


def test_a_session_ends_after_twelve_idle_hours(server: ServerContext, data: Path) -> None:
    cookie = login(server, data)
    clock(server).now = T0 + IDLE_S - 1
    assert check(server, cookie) is not None
    clock(server).now = T0 + IDLE_S + 1
    assert check(server, cookie) is None


def test_use_keeps_a_session_open_for_at_most_seven_days(server: ServerContext, data: Path) -> None:
    cookie = login(server, data)
    session = check(server, cookie)
    assert session is not None
    assert server.sessions.refreshed(session) is None  # a cookie stamped a moment ago is not sent again
    assert server.sessions.max_age(session) == IDLE_S
    while clock(server).now + IDLE_S - 60 < T0 + LIFETIME_S:  # somebody uses the dashboard twice a day
        clock(server).now += IDLE_S - 60
        session = check(server, cookie)
        assert session is not None, clock(server).now - T0
        refreshed = server.sessions.refreshed(session)
        assert refreshed is not None and refreshed != cookie
        cookie = refreshed
        assert server.sessions.max_age(session) == min(IDLE_S, int(T0 + LIFETIME_S - clock(server).now))
    clock(server).now = T0 + LIFETIME_S + 1  # used an hour ago, but a week old
    assert clock(server).now - int(cookie.split(".")[3]) < IDLE_S
    assert check(server, cookie) is None


def test_a_revoked_token_ends_its_sessions(server: ServerContext, data: Path) -> None:
    cookie = login(server, data)
    with server.db.write() as conn:
        conn.execute(delete(tokens).where(tokens.c.kind == "admin"))
    server.forget_tokens()
    assert check(server, cookie) is None


def test_a_damaged_secret_file_is_refused_at_start_and_kept_out_while_running(data: Path) -> None:
    data.mkdir(parents=True)
    path = data / SECRET_FILE
    path.write_text("not hex\n")
    with pytest.raises(SecretFileError, match="thresher secret rotate"):
        SessionSecret.in_folder(data)
    rotate_secret(data)
    secret = SessionSecret.in_folder(data)
    key = secret.key()
    path.write_text("damaged\n")
    assert secret.key() == key  # the last good key, never none
    assert SessionSecret().key() != SessionSecret().key()  # no folder: a random key per store


# ---------------------------------------------------------------- over HTTP (no lifespan needed)

@pytest.fixture
def client(server: ServerContext) -> Iterator[TestClient]:
    with TestClient(create_app(server), base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def http_login(client: TestClient, data: Path) -> None:
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"token": admin_token(data), "csrf": nonce, "next": "/jobs"})
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
    assert f"Max-Age={IDLE_S}" in answer.headers["set-cookie"]


def test_pages_send_a_fresh_cookie_as_they_are_used(server: ServerContext, client: TestClient, data: Path) -> None:
    http_login(client, data)
    first = client.cookies[COOKIE]
    answer = client.get("/jobs")
    assert answer.status_code == 200 and "set-cookie" not in answer.headers  # stamped a moment ago
    for path in ("/jobs?fragment=1", "/ui/jobs/1/grid"):
        clock(server).now += TOUCH_S + 1
        answer = client.get(path)
        assert answer.status_code in (200, 404) and COOKIE in answer.headers.get("set-cookie", ""), path
        assert client.cookies[COOKIE] != first
    with server.db.read() as conn:  # each fresh cookie stamped the session row's last use
        (row,) = conn.execute(select(tables.sessions.c.created_at, tables.sessions.c.last_seen)).all()
    assert row.last_seen > row.created_at
    clock(server).now += IDLE_S - 60  # idle, but within twelve hours of the last refresh
    assert client.get("/jobs").status_code == 200
    clock(server).now += IDLE_S + 1
    assert client.get("/jobs").headers["location"] == "/login?next=%2Fjobs"
    assert client.get("/jobs?fragment=1").status_code == 401
    assert client.get("/ui/jobs/1/grid").status_code == 401
    assert client.get("/api/v1/whoami").status_code == 401


def test_every_page_needs_a_session(client: TestClient) -> None:
    for path in ("/", "/jobs", "/jobs/1", "/tasks/1", "/nodes", "/nodes/x"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
        assert client.get(path + "?fragment=1").status_code == 401, path
    for path in ("/ui/jobs/1/grid", "/ui/thumb/1/0", "/events"):
        assert client.get(path).status_code == 401, path
