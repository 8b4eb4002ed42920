"""LDAP logins against the suite's own OpenLDAP (tests/conftest.py `slapd`): one real server, started
with the README's kind of `[server]` section (a DN template, groups searched by `member` and
`memberUid`), serves the module; an in-process server covers the search-and-service-account way with
Active Directory's `memberOf`, and LDAP servers that are down or silent.

Through the API, the dashboard's form and `thresher login`: each person's groups give their role (first login makes the
user, every login refreshes the role), a wrong password and a user in no mapped group are refused,
a user disabled in Thresher stays refused, local accounts win over LDAP's, wrong directory passwords
lock the name like local ones, and an LDAP user's password is not Thresher's to change."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.api.test_sessions_http import dashboard_login
from tests.support.farm import Farm
from tests.support.shared_farm import attach_logs
from tests.support.slapd import GROUPS, PEOPLE, ROOT_DN, SlapdServer
from typer.testing import CliRunner

from thresher.server.app import create_app
from thresher.server.ldap_auth import Directory, LdapUnavailable
from thresher.server.main import prepare
from thresher.server.settings import ServerSettings

API = "/api/v1"
ROLES = {"farm-admins": "admin", "wranglers": "wrangler", "Artists": "artist"}  # names match without case
PEOPLE_GROUPS = {"ada": ["farm-admins", "artists"], "wes": ["wranglers"], "art": ["artists"], "cook": ["cooks"],
                 "dora": ["artists"], "rolf": ["artists"], "lena": ["artists"], "pia": ["wranglers"],
                 "lou": ["artists"], "dash": ["wranglers"]}


def _password(name: str) -> str:
    return f"{name}-ldap-pw"


@pytest.fixture(scope="module")
def directory(slapd: SlapdServer) -> SlapdServer:
    """The module's people and groups (artists is a posixGroup: memberUid; the others groupOfNames)."""
    for name in PEOPLE_GROUPS:
        slapd.add_user(name, _password(name))
    for group in ("farm-admins", "wranglers", "artists", "cooks"):
        members = sorted(n for n, gs in PEOPLE_GROUPS.items() if group in gs)
        slapd.add_group(group, members, posix=group == "artists")
    return slapd


@pytest.fixture(scope="module")
def farm(directory: SlapdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("ldap")
    config = root / "thresher.toml"
    roles = ", ".join(f'"{group}" = "{role}"' for group, role in ROLES.items())
    config.write_text(f'[server]\nldap_urls = ["{directory.url}"]\nldap_user_dn = "uid={{user}},{PEOPLE}"\n'
                      f'ldap_group_search_base = "{GROUPS}"\nldap_roles = {{{roles}}}\nldap_timeout_s = 5\n')
    made = Farm(f"sqlite:///{root / 'thresher.db'}", root, server_args=["--config", str(config)]).start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def api(farm: Farm, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    attach_logs(request, farm)
    with httpx.Client(base_url=farm.server_url + API, timeout=30, trust_env=False) as client:
        yield client


def _login(api: httpx.Client, name: str, password: str | None = None, status: int = 200) -> Any:
    answer = api.post("/login", json={"user": name, "password": password or _password(name)})
    assert answer.status_code == status, answer.text
    return answer.json()


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(api: httpx.Client, farm: Farm, name: str) -> Any:
    return api.get(f"/users/{name}", headers=_as(farm.admin_token)).json()


def test_ldap_people_log_in_with_the_role_their_groups_give(api: httpx.Client, farm: Farm) -> None:
    for name, role in (("ada", "admin"), ("wes", "wrangler"), ("art", "artist")):
        token = _login(api, name)["secret"]
        me = api.get("/whoami", headers=_as(token)).json()
        assert (me["name"], me["role"]) == (name, role)
        user = _user(api, farm, name)
        assert (user["source"], user["role"], user["has_password"]) == ("ldap", role, False)
    # ada is in farm-admins and artists: the highest role wins, and she may act as one.
    ada = _login(api, "ada")["secret"]
    assert api.get("/users", headers=_as(ada)).status_code == 200


def test_a_wrong_password_or_an_unknown_name_is_refused_alike(api: httpx.Client) -> None:
    wrong = _login(api, "art", "not-it", status=401)
    unknown = _login(api, "nobody", "whatever", status=401)
    assert wrong["detail"] == unknown["detail"] == "wrong user name or password"


def test_a_user_in_no_mapped_group_is_refused_and_told_why(api: httpx.Client, farm: Farm) -> None:
    answer = _login(api, "cook", status=403)
    assert "cook logged in to LDAP but is in no group that gives a Thresher role" in answer["detail"]
    assert api.get("/users/cook", headers=_as(farm.admin_token)).status_code == 404  # nobody made


def test_a_user_disabled_in_thresher_stays_refused(api: httpx.Client, farm: Farm) -> None:
    _login(api, "dora")
    assert api.patch("/users/dora", headers=_as(farm.admin_token), json={"disabled": True}).status_code == 200
    assert _login(api, "dora", status=401)["detail"] == "wrong user name or password"
    assert api.patch("/users/dora", headers=_as(farm.admin_token), json={"disabled": False}).status_code == 200
    _login(api, "dora")


def test_a_role_changed_in_ldap_is_picked_up_at_the_next_login(api: httpx.Client, directory: SlapdServer) -> None:
    first = _login(api, "rolf")["secret"]
    assert api.get("/whoami", headers=_as(first)).json()["role"] == "artist"
    wranglers = sorted(n for n, groups in PEOPLE_GROUPS.items() if "wranglers" in groups)
    directory.set_members("wranglers", [*wranglers, "rolf"])
    try:
        second = _login(api, "rolf")["secret"]
        assert api.get("/whoami", headers=_as(second)).json()["role"] == "wrangler"
        assert api.get("/whoami", headers=_as(first)).json()["role"] == "wrangler"  # the user's role, at once
    finally:
        directory.set_members("wranglers", wranglers)
    assert api.get("/whoami", headers=_as(_login(api, "rolf")["secret"])).json()["role"] == "artist"


def test_local_accounts_win_and_ldap_takes_over_only_a_passwordless_one(api: httpx.Client, farm: Farm) -> None:
    admin = _as(farm.admin_token)
    made = api.post("/users", headers=admin, json={"name": "lena", "role": "viewer", "password": "lena-local-pw"})
    assert made.status_code == 201, made.text
    _login(api, "lena", status=401)  # LDAP's password does not open a local account
    assert api.get("/whoami", headers=_as(_login(api, "lena", "lena-local-pw")["secret"])).json()["role"] == "viewer"
    assert _user(api, farm, "lena")["source"] == "local"
    # pia: made for a job's owner before she ever logged in (no password): her first LDAP login takes it over.
    assert api.post("/users", headers=admin, json={"name": "pia", "role": "artist"}).status_code == 201
    _login(api, "pia")
    assert (_user(api, farm, "pia")["source"], _user(api, farm, "pia")["role"]) == ("ldap", "wrangler")


def test_thresher_login_saves_a_token_of_the_ldap_user(farm: Farm, directory: SlapdServer, tmp_path: Path) -> None:
    from thresher.cli.main import app

    env = {"THRESHER_HOME": str(tmp_path), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    runner = CliRunner()
    result = runner.invoke(app, ["login", "--server", farm.server_url, "--user", "wes"], input=_password("wes") + "\n",
                           env=env)
    assert result.exit_code == 0, result.output
    assert "as wes (wrangler)" in result.output
    refused = runner.invoke(app, ["login", "--server", farm.server_url, "--user", "cook"],
                            input=_password("cook") + "\n", env=env)
    assert refused.exit_code != 0 and "no group that gives a Thresher role" in refused.output


def test_wrong_ldap_passwords_lock_the_name_like_local_ones(api: httpx.Client, farm: Farm) -> None:
    _login(api, "lou")  # a user the farm knows, so that an admin can unlock them
    for _ in range(5):  # login_max_failures
        _login(api, "lou", "not-lous", status=401)
    locked = _login(api, "lou", status=429)  # the right password, but locked
    assert "too many failed logins" in locked["detail"]
    assert api.post("/users/lou/unlock", headers=_as(farm.admin_token)).status_code == 200
    assert api.get("/whoami", headers=_as(_login(api, "lou")["secret"])).json()["role"] == "artist"


def test_the_dashboard_form_takes_ldap_passwords_and_says_why_it_refuses(farm: Farm) -> None:
    with httpx.Client(base_url=farm.server_url, timeout=30, trust_env=False) as web:
        answer = dashboard_login(web, "dash", _password("dash"))
        assert answer.status_code == 303 and answer.headers["location"] == "/jobs", answer.text
        assert 'title="logged in as dash, wrangler"' in web.get("/jobs").text
    with httpx.Client(base_url=farm.server_url, timeout=30, trust_env=False) as web:
        refused = dashboard_login(web, "cook", _password("cook"))
        assert refused.status_code == 403
        assert "Cook logged in to LDAP but is in no group that gives a Thresher role" in refused.text


def test_an_ldap_users_password_is_changed_in_the_directory(api: httpx.Client, farm: Farm) -> None:
    token = _login(api, "wes")["secret"]
    own = api.put("/password", headers=_as(token), json={"old_password": _password("wes"), "password": "new-wes-pw1"})
    assert own.status_code == 409 and "kept by the LDAP directory" in own.json()["detail"], own.text
    by_admin = api.put("/users/wes/password", headers=_as(farm.admin_token), json={"password": "new-wes-pw1"})
    assert by_admin.status_code == 409, by_admin.text
    _login(api, "wes")  # the directory's password still opens it


# ---------------------------------------------------------------- in process: other settings

def _in_process(tmp_path: Path, **ldap: Any) -> tuple[TestClient, Any]:
    settings = ServerSettings(ldap_roles=ROLES, **ldap)
    server = prepare(None, tmp_path / "data", settings)
    return TestClient(create_app(server)), server


def test_a_service_account_search_and_memberof_groups(directory: SlapdServer, tmp_path: Path) -> None:
    """The Active Directory way: find the user with a service account, groups from their memberOf only
    (the memberof overlay fills it for groupOfNames groups; artists is a posixGroup, so not there)."""
    settings: dict[str, Any] = {"ldap_urls": [directory.url], "ldap_user_search_base": PEOPLE,
                                "ldap_user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))",
                                "ldap_bind_dn": ROOT_DN, "ldap_bind_password": directory.root_password}
    client, server = _in_process(tmp_path, **settings)
    with client:
        ada = client.post(API + "/login", json={"user": "ada", "password": _password("ada")})
        assert ada.status_code == 200, ada.text
        assert client.get(API + "/whoami", headers=_as(ada.json()["secret"])).json()["role"] == "admin"
        art = client.post(API + "/login", json={"user": "art", "password": _password("art")})
        assert art.status_code == 403  # only in the posixGroup, which memberOf does not list
    server.db.dispose()
    found = Directory(ServerSettings(ldap_roles=ROLES, **settings))
    assert found.authenticate("*", _password("ada")) is None  # a filter value is escaped: no wildcard
    assert found.authenticate("ada", "") is None  # never an anonymous bind


def test_ldap_down_or_silent_is_a_clear_503_and_local_accounts_still_log_in(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connects (the kernel's backlog) and never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    urls = [f"ldap://127.0.0.1:{closed.getsockname()[1]}", f"ldap://127.0.0.1:{silent.getsockname()[1]}"]
    client, server = _in_process(tmp_path, ldap_urls=urls, ldap_user_dn=f"uid={{user}},{PEOPLE}",
                                 ldap_timeout_s=0.5)
    admin = _as((tmp_path / "data" / "admin.token").read_text().strip())
    try:
        with client:
            answer = client.post(API + "/login", json={"user": "art", "password": _password("art")})
            assert answer.status_code == 503, answer.text
            detail = answer.json()["detail"]
            assert "LDAP server does not answer" in detail and urls[0] in detail and urls[1] in detail
            made = client.post(API + "/users", headers=admin, json={"name": "loc", "role": "artist",
                                                                  "password": "loc-local-pw"})
            assert made.status_code == 201
            assert client.post(API + "/login", json={"user": "loc", "password": "loc-local-pw"}).status_code == 200
    finally:
        silent.close()
        closed.close()
        server.db.dispose()


def test_ldaps_and_starttls_verify_the_certificate(directory: SlapdServer) -> None:
    def person(url: str, **tls: Any) -> Any:
        return Directory(ServerSettings(ldap_urls=[url], ldap_user_dn=f"uid={{user}},{PEOPLE}",
                                        ldap_group_search_base=GROUPS, ldap_roles=ROLES, **tls)
                         ).authenticate("wes", _password("wes"))

    assert "wranglers" in person(directory.ldaps_url, ldap_ca_file=directory.ca_file).groups
    assert "wranglers" in person(directory.url, ldap_start_tls=True, ldap_ca_file=directory.ca_file).groups
    with pytest.raises(LdapUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        person(directory.ldaps_url)  # the private CA is not among the system's
    with pytest.raises(LdapUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        person(directory.url, ldap_start_tls=True)
