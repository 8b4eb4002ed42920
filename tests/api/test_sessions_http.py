"""Dashboard password logins, server-side sessions and the lockout, in process on one SQLite database
shared by two server contexts (two server processes would share it the same way): a password login
makes a session row; logging out (everywhere), disabling a user, changing their role or setting their
password ends sessions at once, also in the other process; failed logins lock a user name (known or
not) and an address, an admin lifts a user's lock; a person changes their own password giving the
old one. One module-wide pair of servers; each test uses its own user names and client address."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from thresher.server.app import create_app
from thresher.server.context import ServerContext
from thresher.server.dashboard.session import COOKIE
from thresher.server.main import prepare

API = "/api/v1"


class Farm:
    """Two server contexts on one database: `one` and `other`, and the admin's token."""

    def __init__(self, one: ServerContext, other: ServerContext, admin: str) -> None:
        self.one, self.other, self.admin = one, other, admin

    def client(self, address: str, other: bool = False) -> TestClient:
        return TestClient(create_app(self.other if other else self.one), client=(address, 5000),
                          follow_redirects=False)

    def call(self, client: TestClient, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.request(method, API + path, headers=headers, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        return answer.json()

    def user(self, client: TestClient, name: str, role: str = "artist") -> None:
        self.call(client, "POST", "/users", self.admin, 201,
                  json={"name": name, "role": role, "password": f"{name}-password"})


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    folder: Path = tmp_path_factory.mktemp("sessions")
    url, data = f"sqlite:///{folder / 'farm.db'}", folder / "data"
    one = prepare(url, data)
    other = prepare(url, data)  # a second server process on the same database and data folder
    yield Farm(one, other, (data / "admin.token").read_text().strip())
    one.db.dispose()
    other.db.dispose()


def lower_limits(farm: Farm, monkeypatch: pytest.MonkeyPatch, per_user: int, per_address: int) -> None:
    """Small limits for one test (every failed check costs an argon2 hash), in both processes."""
    for server in (farm.one, farm.other):
        monkeypatch.setattr(server.settings, "login_max_failures", per_user)
        monkeypatch.setattr(server.settings, "login_max_failures_per_address", per_address)


def dashboard_login(client: httpx.Client, user: str, password: str) -> httpx.Response:  # a TestClient or a real one
    form = client.get("/login?next=/jobs")
    nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert nonce is not None
    return client.post("/login", data={"user": user, "password": password, "csrf": nonce.group(1), "next": "/jobs"},
                       headers={"User-Agent": "test-browser/1.0"})


def logged_in(farm: Farm, client: TestClient, user: str) -> str:
    answer = dashboard_login(client, user, f"{user}-password")
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs", answer.text
    return str(client.cookies[COOKIE])


def whoami(client: TestClient, cookie: str) -> int:
    return client.get(API + "/whoami", cookies={COOKIE: cookie}).status_code


def test_a_password_login_makes_a_session_that_logging_out_ends(farm: Farm) -> None:
    with farm.client("10.0.0.1") as client:
        farm.user(client, "paula")
        wrong = dashboard_login(client, "paula", "not-her-password")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        cookie = logged_in(farm, client, "paula")
        page = client.get("/jobs")
        assert page.status_code == 200 and 'paula <span class="role">artist</span>' in page.text
        assert 'href="/users"' not in page.text  # the users page is for admins
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf is not None
        (listed,) = farm.call(client, "GET", "/users/paula/sessions", farm.admin, 200)["items"]
        assert (listed["address"], listed["user_agent"], listed["with_token"]) == ("10.0.0.1", "test-browser/1.0", False)
        assert listed["ended_at"] is None
        assert client.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
        assert whoami(client, cookie) == 401  # the cookie kept by someone is no session any more
        (ended,) = farm.call(client, "GET", "/users/paula/sessions", farm.admin, 200)["items"]
        assert ended["end_reason"] == "logout" and ended["ended_at"] is not None


def test_disabling_or_a_new_role_ends_sessions_at_once_in_every_process(farm: Farm) -> None:
    with farm.client("10.0.0.2") as client, farm.client("10.0.0.2", other=True) as elsewhere:
        farm.user(client, "rita", "wrangler")
        cookie = logged_in(farm, client, "rita")
        assert whoami(elsewhere, cookie) == 200  # the other process knows the session too
        assert farm.call(client, "GET", "/users/rita", farm.admin, 200)["sessions"] == 1
        farm.call(client, "PATCH", "/users/rita", farm.admin, 200, json={"role": "viewer"})
        assert whoami(elsewhere, cookie) == 401 and whoami(client, cookie) == 401
        again = logged_in(farm, client, "rita")
        assert elsewhere.get(API + "/whoami", cookies={COOKIE: again}).json()["role"] == "viewer"
        farm.call(elsewhere, "PATCH", "/users/rita", farm.admin, 200, json={"disabled": True})
        assert whoami(client, again) == 401
        reasons = [s["end_reason"] for s in farm.call(client, "GET", "/users/rita/sessions", farm.admin, 200)["items"]]
        assert reasons == ["disabled", "role"]


def test_log_out_everywhere_ends_every_session_of_the_user_only(farm: Farm) -> None:
    with farm.client("10.0.0.3") as phone, farm.client("10.0.0.4") as laptop:
        farm.user(phone, "eve")
        farm.user(phone, "ed")
        first, second, eds = logged_in(farm, phone, "eve"), logged_in(farm, laptop, "eve"), logged_in(farm, laptop, "ed")
        token = farm.call(phone, "POST", "/login", None, 200, json={"user": "eve", "password": "eve-password"})["secret"]
        farm.call(phone, "POST", "/users/ed/sessions/end", token, 404)  # another's: as if there were none
        assert farm.call(phone, "POST", "/users/eve/sessions/end", token, 200) == {"user": "eve", "ended": 2}
        assert whoami(phone, first) == 401 and whoami(laptop, second) == 401 and whoami(laptop, eds) == 200
        farm.call(phone, "GET", "/whoami", token, 200)  # tokens are not sessions
        third = logged_in(farm, phone, "eve")  # and from the dashboard's own button
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', phone.get("/jobs").text)
        assert csrf is not None and 'id="logout-everywhere"' in phone.get("/jobs").text
        phone.post("/logout", data={"csrf": csrf.group(1), "everywhere": "1"})
        assert whoami(phone, third) == 401
        assert farm.call(phone, "POST", "/users/ed/sessions/end", farm.admin, 200)["ended"] == 1


def test_failed_logins_lock_a_user_name_until_an_admin_unlocks_it(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    lower_limits(farm, monkeypatch, per_user=3, per_address=20)
    with farm.client("10.0.1.1") as client, farm.client("10.0.1.2", other=True) as elsewhere:
        farm.user(client, "lou")
        for attempt in range(3):  # from two addresses, through two processes: counted together
            farm.call(client if attempt % 2 else elsewhere, "POST", "/login", None, 401,
                      json={"user": "lou", "password": "guess"})
        locked = farm.call(client, "POST", "/login", None, 429, json={"user": "lou", "password": "lou-password"})
        assert "too many failed logins" in locked["detail"] and "unlock" in locked["detail"]
        page = dashboard_login(client, "lou", "lou-password")
        assert page.status_code == 429 and "Too many failed logins" in page.text
        for _ in range(4):  # a name that is nobody's is answered alike: the answers tell no names
            last = client.post(API + "/login", json={"user": "nobody-here", "password": "guess"})
        assert last.status_code == 429 and last.json()["detail"].split(":")[0] == locked["detail"].split(":")[0]
        listed = {u["name"]: u for u in farm.call(client, "GET", "/users", farm.admin, 200)["items"]}
        assert listed["lou"]["locked_until"] is not None and listed["admin"]["locked_until"] is None
        assert farm.call(client, "POST", "/users/lou/unlock", farm.admin, 200)["locked_until"] is None
        farm.call(client, "POST", "/login", None, 200, json={"user": "lou", "password": "lou-password"})


def test_failed_logins_from_one_address_lock_that_address(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    lower_limits(farm, monkeypatch, per_user=3, per_address=4)
    with farm.client("10.0.2.1") as attacker, farm.client("10.0.2.2") as colleague:
        farm.user(colleague, "amy")
        for n in range(4):  # different names each: no name reaches its own limit
            farm.call(attacker, "POST", "/login", None, 401, json={"user": f"guess{n}", "password": "guess"})
        farm.call(attacker, "POST", "/login", None, 429, json={"user": "amy", "password": "amy-password"})
        farm.call(colleague, "POST", "/login", None, 200, json={"user": "amy", "password": "amy-password"})


def test_a_person_changes_their_own_password_and_an_admin_sets_anyones(farm: Farm) -> None:
    with farm.client("10.0.3.1") as client, farm.client("10.0.3.2") as other_device:
        farm.user(client, "pat")
        here, there = logged_in(farm, client, "pat"), logged_in(farm, other_device, "pat")
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/jobs").text)
        assert csrf is not None
        headers = {"X-CSRF-Token": csrf.group(1)}
        wrong = client.put(API + "/password", json={"old_password": "nope", "password": "pat-new-password"},
                           headers=headers)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "old_password"
        changed = client.put(API + "/password", json={"old_password": "pat-password", "password": "pat-new-password"},
                             headers=headers)
        assert changed.status_code == 200, changed.text
        assert whoami(client, here) == 200 and whoami(other_device, there) == 401  # only the others end
        farm.call(client, "POST", "/login", None, 401, json={"user": "pat", "password": "pat-password"})
        farm.call(client, "POST", "/login", None, 200, json={"user": "pat", "password": "pat-new-password"})
        farm.call(client, "PUT", "/users/pat/password", farm.admin, 200, json={"password": "pat-third-password"})
        assert whoami(client, here) == 401
        farm.call(client, "POST", "/login", None, 200, json={"user": "pat", "password": "pat-third-password"})


def test_the_users_page_is_for_admins_and_offers_their_actions(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    lower_limits(farm, monkeypatch, per_user=1, per_address=20)
    with farm.client("10.0.4.1") as admin, farm.client("10.0.4.2") as artist:
        farm.user(admin, "una")
        farm.call(admin, "POST", "/login", None, 401, json={"user": "una", "password": "wrong"})  # locked at once
        made = farm.one.sessions.login(farm.one.db, farm.admin)
        assert made is not None
        admin.cookies.set(COOKIE, made[0])
        html = admin.get("/users").text
        assert 'href="/users" aria-current="page"' in html
        row = re.search(r'<tr data-user="una".*?</tr>', html, re.S)
        assert row is not None and "locked until" in row.group(0)
        assert "/api/v1/users/una/unlock" in row.group(0) and 'data-body=\'{"disabled": true}\'' in row.group(0)
        own = re.search(r'<tr data-user="admin".*?</tr>', html, re.S)
        assert own is not None and "Disable" not in own.group(0)  # an admin cannot lock themselves out
        assert "Sessions of admin" in admin.get("/users?user=admin").text
        farm.user(admin, "ulf", "wrangler")
        logged_in(farm, artist, "ulf")
        assert artist.get("/users").status_code == 403 and 'href="/users"' not in artist.get("/jobs").text


def test_the_address_behind_a_trusted_proxy_is_whom_it_forwards(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    """`X-Forwarded-For` counts only from `trusted_proxies` (127.0.0.1 and ::1 unless set)."""
    lower_limits(farm, monkeypatch, per_user=5, per_address=2)
    with farm.client("127.0.0.1") as proxy, farm.client("10.0.5.1") as stranger:
        for name in ("fx1", "fx2"):  # through the proxy, from 10.0.5.9
            proxy.post(API + "/login", json={"user": name, "password": "guess"},
                       headers={"X-Forwarded-For": "6.6.6.6, 10.0.5.9"})
        farm.user(stranger, "fay")
        locked = proxy.post(API + "/login", json={"user": "fay", "password": "fay-password"},
                            headers={"X-Forwarded-For": "10.0.5.9"})
        assert locked.status_code == 429  # 10.0.5.9 is locked ...
        assert proxy.post(API + "/login", json={"user": "fay", "password": "fay-password"},
                          headers={"X-Forwarded-For": "10.0.5.8"}).status_code == 200  # ... not the proxy
        farm.one.audit.flush()  # and the audit log records whom the proxy forwarded
        (entry,) = farm.call(proxy, "GET", "/audit", farm.admin, 200, params={"operation": "login", "limit": 1})["items"]
        assert (entry["address"], entry["status"]) == ("10.0.5.8", 200)
        for name in ("fx3", "fx4"):  # a stranger's header is ignored: counted against its own address
            stranger.post(API + "/login", json={"user": name, "password": "guess"},
                          headers={"X-Forwarded-For": "10.0.5.7"})
        assert stranger.post(API + "/login", json={"user": "fay", "password": "fay-password"},
                             headers={"X-Forwarded-For": "10.0.5.6"}).status_code == 429
        assert proxy.post(API + "/login", json={"user": "fay", "password": "fay-password"},
                          headers={"X-Forwarded-For": "10.0.5.7"}).status_code == 200
