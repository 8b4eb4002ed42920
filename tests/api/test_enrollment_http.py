"""Enrollment tokens an admin manages (`server/enrollment.py`), over real HTTP on SQLite and PostgreSQL:
made (secret once), listed (uses, last use, state; no secret), revoked; a one-time token raced by
several agents enrols exactly one node; a used, revoked or expired token is refused with its reason;
the token's pool wins over the agent's; the first-start token keeps enrolling local agents."""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any, Iterator

import httpx
import pytest
from tests.support.farm import Farm
from tests.support.shared_farm import DATABASES, attach_logs, shared_farm

from thresher.client.http import API_PREFIX


@pytest.fixture(scope="module", params=DATABASES)
def farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One server per database: each test makes its own tokens and nodes, with names of its own."""
    yield from shared_farm(request, tmp_path_factory, "enrollment")


@pytest.fixture(autouse=True)
def _farm_logs_on_failure(request: pytest.FixtureRequest, farm: Farm) -> None:
    attach_logs(request, farm)


def _call(farm: Farm, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{farm.server_url}{API_PREFIX}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {token or farm.admin_token}"}, **kwargs)


def _make(farm: Farm, **body: Any) -> dict[str, Any]:
    answer = _call(farm, "POST", "/enroll-tokens", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _register(farm: Farm, token: str, name: str, **facts: Any) -> httpx.Response:
    return _call(farm, "POST", "/agent/register", token, json={"name": name, "cores": 2, "memory_mb": 2048,
                                                                 "instance_id": f"i-{name}", **facts})


def _listed(farm: Farm, token_id: int) -> dict[str, Any]:
    answer = _call(farm, "GET", "/enroll-tokens")
    assert answer.status_code == 200 and "secret" not in answer.text and "thr_enroll_" not in answer.text
    (found,) = [t for t in answer.json()["items"] if t["id"] == token_id]
    return dict(found)


def _node(farm: Farm, name: str) -> dict[str, Any]:
    return dict(_call(farm, "GET", f"/nodes/{name}").json())


def test_a_one_time_token_raced_by_agents_enrols_exactly_one_into_its_pool(farm: Farm) -> None:
    made = _make(farm, name="room b", one_time=True, pool="gpu")
    assert made["secret"].startswith("thr_enroll_") and made["one_time"] and made["state"] == "active"
    assert made["pool"] == "gpu" and made["used_count"] == 0
    answers: dict[str, httpx.Response] = {}
    start = threading.Barrier(6)

    def race(name: str) -> None:
        start.wait()
        answers[name] = _register(farm, made["secret"], name, pool="cpu")

    threads = [threading.Thread(target=race, args=(f"race-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, answer in answers.items() if answer.status_code == 200]
    assert len(winners) == 1, {n: (a.status_code, a.text) for n, a in answers.items()}
    for name, answer in answers.items():
        if name not in winners:
            assert answer.status_code == 401 and "one-time" in answer.json()["detail"], answer.text
    listed = _listed(farm, made["id"])
    assert listed["state"] == "used" and listed["used_count"] == 1 and listed["last_used_at"]
    # the token's pool won over the agent's --pool, and sticks when the node registers again itself
    assert _node(farm, winners[0])["pool"] == "gpu"
    credential = answers[winners[0]].json()["token"]
    assert _register(farm, credential, winners[0], pool="cpu").status_code == 200
    assert _node(farm, winners[0])["pool"] == "gpu"
    losers = [n for n in answers if n not in winners]
    assert all(_call(farm, "GET", f"/nodes/{n}").status_code == 404 for n in losers)
    # used up: a later agent is refused with the reason; the winner, its answer lost, may ask again
    late = _register(farm, made["secret"], "race-late")
    assert late.status_code == 401 and "one-time" in late.json()["detail"], late.text
    fresh = _make(farm, name="reissue", one_time=True)
    first = _register(farm, fresh["secret"], "lost-answer")
    again = _register(farm, fresh["secret"], "lost-answer")  # same instance id, credential never used
    assert first.status_code == again.status_code == 200 and first.json()["token"] != again.json()["token"]
    assert _listed(farm, fresh["id"])["used_count"] == 1


def test_revoked_and_expired_tokens_are_refused_with_their_reason(farm: Farm) -> None:
    reusable = _make(farm, name="racks")
    assert not reusable["one_time"] and reusable["expires_at"] is None
    assert _register(farm, reusable["secret"], "rack-1").status_code == 200
    assert _register(farm, reusable["secret"], "rack-2").status_code == 200
    assert _node(farm, "rack-1")["pool"] == "default"
    revoked = _call(farm, "DELETE", f"/enroll-tokens/{reusable['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = _register(farm, reusable["secret"], "rack-3")
    assert refused.status_code == 401 and "'racks' was revoked" in refused.json()["detail"], refused.text
    assert _listed(farm, reusable["id"])["used_count"] == 2
    # the nodes it enrolled keep their own credentials
    assert _register(farm, "x", "rack-1").status_code == 401
    assert _call(farm, "DELETE", "/enroll-tokens/999999").status_code == 404

    brief = _make(farm, name="brief", expires_in_days=0.000002)  # about 0.2 s
    farm.wait_for(lambda: _listed(farm, brief["id"])["state"] == "expired", timeout=10, interval=0.05)
    refused = _register(farm, brief["secret"], "late-1")
    assert refused.status_code == 401 and "'brief' expired at" in refused.json()["detail"], refused.text


def test_a_refused_registration_gives_the_one_use_back(farm: Farm) -> None:
    assert _register(farm, farm.enroll_token, "taken").status_code == 200
    once = _make(farm, name="once", one_time=True)
    conflict = _register(farm, once["secret"], "taken", instance_id="another machine")  # 409, rolled back
    assert conflict.status_code == 409, conflict.text
    assert _listed(farm, once["id"])["state"] == "active"
    assert _register(farm, once["secret"], "fresh").status_code == 200
    assert _listed(farm, once["id"])["state"] == "used"


def test_the_first_start_token_is_listed_and_keeps_enrolling(farm: Farm) -> None:
    answer = _call(farm, "GET", "/enroll-tokens").json()["items"]
    (first,) = [t for t in answer if t["name"] == "enrollment"]
    assert first["state"] == "active" and not first["one_time"] and first["pool"] is None
    assert _register(farm, farm.enroll_token, "local-1").status_code == 200
    assert _register(farm, farm.enroll_token, "local-2").status_code == 200


def test_only_admins_manage_enrollment_tokens_and_bad_input_names_its_field(farm: Farm) -> None:
    assert _call(farm, "POST", "/users", json={"name": "wes", "role": "wrangler", "password": "wes-password"}
                 ).status_code == 201
    wrangler = _call(farm, "POST", "/login", "-", json={"user": "wes", "password": "wes-password"}).json()["secret"]
    for token in (wrangler, farm.enroll_token):
        assert _call(farm, "GET", "/enroll-tokens", token).status_code == 403
        assert _call(farm, "POST", "/enroll-tokens", token, json={"name": "mine"}).status_code == 403
    bad = _call(farm, "POST", "/enroll-tokens", json={"name": "x", "pool": "not a pool"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["pool"]
    bad = _call(farm, "POST", "/enroll-tokens", json={"name": "x", "expires_in_days": 0})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["expires_in_days"]


def test_the_cli_makes_lists_and_revokes_enrollment_tokens(farm: Farm) -> None:
    from typer.testing import CliRunner

    from thresher.cli.main import app

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "-s", farm.server_url, "-t", farm.admin_token])
        assert result.exit_code == 0, result.output
        return result

    made = json.loads(cli("enroll-token", "create", "cli room", "--one-time", "--pool", "cli-pool", "--days", "2",
                          "--json").stdout)
    assert made["secret"].startswith("thr_enroll_") and made["one_time"] and made["pool"] == "cli-pool"
    text = cli("enroll-token", "create", "cli reusable").stdout
    assert "reusable" in text and "thr_enroll_" in text
    table = cli("enroll-token", "list").stdout
    assert "cli room" in table and "0/1" in table and "cli-pool" in table and "thr_enroll_" not in table
    listed = json.loads(cli("enroll-token", "list", "--json").stdout)["items"]
    assert {"cli room", "cli reusable", "enrollment"} <= {t["name"] for t in listed}
    assert all("secret" not in t for t in listed)
    revoked = json.loads(cli("enroll-token", "revoke", str(made["id"]), "--json").stdout)
    assert revoked["state"] == "revoked"
    assert "revoked" in cli("enroll-token", "list").stdout


def _dashboard(farm: Farm, token: str) -> httpx.Client:
    client = httpx.Client(base_url=farm.server_url, timeout=30, follow_redirects=False)
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"token": token, "csrf": nonce, "next": "/"}).status_code == 303
    return client


def _refusals_page(client: httpx.Client) -> str:
    """The audit page of refusals, once it marks one (the audit log is written a moment after the call)."""
    html = client.get("/audit", params={"refused": "1"}).text
    return html if '<tr class="refused">' in html else ""


def test_the_node_pages_show_each_role_its_actions_and_admins_the_enrollment_tokens(farm: Farm) -> None:
    assert _register(farm, farm.enroll_token, "page-node").status_code == 200
    node_id = _node(farm, "page-node")["id"]
    hidden = _make(farm, name="shown on the page")
    people = {}
    for name, role in (("pam", "viewer"), ("art", "artist"), ("wren", "wrangler")):
        assert _call(farm, "POST", "/users", json={"name": name, "role": role, "password": f"{name}-password"}
                     ).status_code == 201
        people[role] = _call(farm, "POST", "/login", "-", json={"user": name, "password": f"{name}-password"}
                             ).json()["secret"]
    people["admin"] = farm.admin_token
    assert _call(farm, "POST", "/enroll-tokens", people["viewer"], json={"name": "mine"}).status_code == 403
    for role, token in people.items():
        client = _dashboard(farm, token)
        try:
            listing, page = client.get("/nodes"), client.get(f"/nodes/{node_id}")
            assert listing.status_code == page.status_code == 200
            steers = role in ("wrangler", "admin")
            assert (f"/api/v1/nodes/{node_id}/drain" in listing.text) == steers, role
            for marker in (f"/api/v1/nodes/{node_id}/drain", 'id="node-tags"', 'id="remove-node"'):
                assert (marker in page.text) == steers, (role, marker)
            assert ('id="enroll-tokens"' in listing.text) == (role == "admin"), role
            assert ('id="enroll-create"' in listing.text) == (role == "admin"), role
            assert "thr_enroll_" not in listing.text
            if role == "admin":
                assert "shown on the page" in listing.text
                assert f'data-action="/api/v1/enroll-tokens/{hidden["id"]}"' in listing.text
                fragment = client.get("/nodes?fragment=1").text  # the live part keeps the list, not the form
                assert 'id="enroll-tokens"' in fragment and 'id="enroll-create"' not in fragment
                audit = farm.wait_for(functools.partial(_refusals_page, client), timeout=30)  # the viewer's refusal, marked
                assert 'class="refused-mark"' in audit and "create_enroll_token" in audit
        finally:
            client.close()
