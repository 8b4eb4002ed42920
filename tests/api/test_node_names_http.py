"""A known node's name over real HTTP (both databases): an enrolment token cannot take over a node that is
down (its credential stays good); the node's own credential, an admin's removal or `replace` can."""

from __future__ import annotations

from typing import Any

import pytest

from thresher.client.http import ApiError

_NODE = {"cores": 2, "memory_mb": 2048}


def _refused(call: Any, status: int) -> str:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status, info.value.body
    return str(info.value.detail)


def test_an_enrolment_token_cannot_take_a_known_nodes_name(farm: Any) -> None:
    enroll = farm.client(token=farm.enroll_token)
    real = enroll.post("/agent/register", {"name": "n1", "instance_id": "real", **_NODE})
    agent = farm.client(token=real["token"])
    agent.post("/agent/heartbeat", {})
    agent.post("/agent/goodbye")
    assert farm.api.get("/nodes/n1")["state"] == "down"

    detail = _refused(lambda: enroll.post("/agent/register", {"name": "n1", "instance_id": "impostor", **_NODE}), 409)
    assert "node remove n1" in detail and "replace" in detail
    # the same instance id does not help once the node has spoken with its credential
    _refused(lambda: enroll.post("/agent/register", {"name": "n1", "instance_id": "real", **_NODE}), 409)
    _refused(lambda: enroll.post("/agent/register", {"name": "n1", "replace": True, **_NODE}), 403)
    # the real node's credential still works: its agent restarts with it
    again = agent.post("/agent/register", {"name": "n1", "instance_id": "real", **_NODE})
    assert again["node_id"] == real["node_id"] and again["token"] == real["token"]
    assert farm.api.get("/nodes/n1")["state"] == "up"


def test_an_admin_replaces_or_removes_a_node_to_give_its_name_away(farm: Any) -> None:
    enroll = farm.client(token=farm.enroll_token)
    first = enroll.post("/agent/register", {"name": "box", "instance_id": "one", **_NODE})
    old = farm.client(token=first["token"])
    old.post("/agent/heartbeat", {})
    old.post("/agent/goodbye")
    replaced = farm.api.post("/agent/register", {"name": "box", "instance_id": "two", "replace": True, **_NODE})
    assert replaced["node_id"] == first["node_id"]
    _refused(lambda: old.post("/agent/heartbeat", {}), 401)  # the replaced credential is revoked
    new = farm.client(token=replaced["token"])
    new.post("/agent/heartbeat", {})
    new.post("/agent/goodbye")
    farm.api.request("DELETE", "/nodes/box")
    back = enroll.post("/agent/register", {"name": "box", "instance_id": "three", **_NODE})
    assert back["node_id"] == first["node_id"]
    _refused(lambda: new.post("/agent/heartbeat", {}), 401)


def test_an_agent_whose_enrolment_answer_was_lost_enrols_again(farm: Any) -> None:
    enroll = farm.client(token=farm.enroll_token)
    lost = enroll.post("/agent/register", {"name": "fresh", "instance_id": "same", **_NODE})
    retried = enroll.post("/agent/register", {"name": "fresh", "instance_id": "same", **_NODE})
    assert retried["node_id"] == lost["node_id"] and retried["token"] != lost["token"]
    _refused(lambda: farm.client(token=lost["token"]).post("/agent/heartbeat", {}), 401)
    farm.client(token=retried["token"]).post("/agent/heartbeat", {})
    _refused(lambda: enroll.post("/agent/register", {"name": "fresh", "instance_id": "same", **_NODE}), 409)
