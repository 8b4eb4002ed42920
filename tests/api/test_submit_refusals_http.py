"""Specs a real server (both databases) refuses at submit, naming the field, with nothing created: a body
with a key given twice (JSON keeps the last one unseen), an owner that is no user name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from thresher.client import Thresher
from thresher.client.http import ApiError


def _post(farm: Any, body: str, **params: str) -> httpx.Response:
    return httpx.post(f"{farm.server_url}/api/v1/jobs", content=body, params=params,
                      headers={"Authorization": f"Bearer {farm.admin_token}", "Content-Type": "application/json"})


def test_a_body_with_a_key_given_twice_is_refused_at_it(farm: Any) -> None:
    layer = '{"name": "r", "frames": "1-2", "args": {"command": ["echo", "{frame}"]}}'
    twice = '{\n"name": "j",\n"layers": [' + layer + '],\n"layers": []\n}'
    for params in ({}, {"dry_run": "true"}):
        answer = _post(farm, twice, **params)
        assert answer.status_code == 422, answer.text  # it was "layers: List should have at least 1 item"
        assert answer.json()["errors"] == [{"field": "layers", "message": "duplicate key 'layers' (line 4; first "
                                                                          "at line 3)"}]
    inner = '{"name": "j", "layers": [' + layer.replace('"frames": "1-2"', '"frames": "1-2", "frames": "1-900"') + ']}'
    assert _post(farm, inner).json()["errors"][0]["field"] == "layers.0.frames"
    assert farm.api.get("/jobs")["total"] == 0
    assert _post(farm, '{"name": "j", "layers": [' + layer + ']}').status_code == 201
    assert "invalid JSON" in _post(farm, '{"name": "j",').json()["errors"][0]["message"]  # as before


def test_an_owner_that_is_no_user_name_is_refused_by_the_user_name_rule(farm: Any) -> None:
    spec = {"name": "j", "layers": [{"name": "r", "frames": "1-2", "args": {"command": ["echo", "{frame}"]}}]}
    with pytest.raises(ApiError) as made:
        farm.api.post("/users", {"name": "bad!!"})
    rule = made.value.errors[0]["message"]  # "String should match pattern '^[A-Za-z0-9_.@-]{1,100}$'"
    for dry in (None, "true"):
        with pytest.raises(ApiError) as info:
            farm.api.post("/jobs", {**spec, "owner": "nobody!!"}, dry_run=dry)
        assert info.value.status == 422 and info.value.errors == [{"field": "owner", "message": rule}]
    users = {u["name"] for u in farm.api.get("/users")["items"]}
    assert "nobody!!" not in users and farm.api.get("/jobs")["total"] == 0  # it made a user `nobody!!` and the job
    with Thresher(farm.server_url, farm.admin_token) as admin:  # a valid name is made a user, as before
        assert admin.submit({**spec, "owner": "new.artist"}).owner == "new.artist"
        assert admin.submit({**spec, "owner": " "}).owner != " "  # blank: no one named, as before
    assert "new.artist" in {u["name"] for u in farm.api.get("/users")["items"]}
