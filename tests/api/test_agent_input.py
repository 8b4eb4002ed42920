"""Agent input is checked as people's input is (issue 13, defects 3 and 9), over real HTTP on SQLite and
PostgreSQL: raw JSON bodies carrying lone surrogates (`\\ud800`, valid JSON, no valid text) and
direction-changing characters (U+202E) get a 422 naming the field, the node listings keep answering,
and a log chunk with a lone surrogate is kept, shown with a replacement character."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
from tests.support.farm import Farm
from tests.support.shared_farm import DATABASES, attach_logs, shared_farm

from thresher.client.http import API_PREFIX, ApiError

RLO = "\u202e"


@pytest.fixture(scope="module", params=DATABASES)
def farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One server per database for the module: these calls are refused and change nothing, or add one node."""
    yield from shared_farm(request, tmp_path_factory, "agent-input")


@pytest.fixture(autouse=True)
def _farm_logs_on_failure(request: pytest.FixtureRequest, farm: Farm) -> None:
    attach_logs(request, farm)


def _raw(farm: Any, path: str, body: str, token: str) -> httpx.Response:
    """POST `body` exactly as written (httpx's `json=` cannot encode a lone surrogate)."""
    return httpx.post(f"{farm.server_url}{API_PREFIX}{path}", content=body.encode("ascii"), timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def _fields(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 422, (answer.status_code, answer.text)
    return [e["field"] for e in answer.json()["errors"]]


def _no_server_errors(farm: Any) -> None:
    log = farm.server.tail(400) if farm.server else ""
    assert "Traceback" not in log, log


REGISTRATION = '{"name": "refused", "cores": 2, "memory_mb": 2048, %s}'


@pytest.mark.parametrize("extra,field", [
    ('"tags": ["linux", "gpu\\ud800"]', "tags.1"),
    ('"apps": {"blender": "/usr/bin/blender\\udfff"}', "apps.blender"),
    ('"apps": {"blender\\ud800": "/usr/bin/blender"}', "apps.blender\\ud800"),
    ('"gpus": [{"index": 0, "name": "RTX \\ud83d"}]', "gpus.0.name"),
    ('"hostname": "box\\ud800"', "hostname"),
    ('"gpus": [{"index": 0, "name": "RTX \\u202e0904"}]', "gpus.0.name"),
    ('"tags": ["gpu\\u202e"]', "tags"),
    ('"hostname": "box\\u202e"', "hostname"),
])
def test_a_registration_with_text_no_list_could_show_is_refused(farm: Any, extra: str, field: str) -> None:
    answer = _raw(farm, "/agent/register", REGISTRATION % extra, farm.enroll_token)
    fields = _fields(answer)
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert "refused" not in [n["name"] for n in farm.api.get("/nodes")["items"]]  # nothing half-made
    _no_server_errors(farm)


def test_a_node_that_registered_well_stays_listed_and_a_bad_refresh_changes_nothing(farm: Any) -> None:
    node = farm.client(token=farm.enroll_token).post(
        "/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048, "tags": ["linux"],
                            "gpus": [{"index": 0, "name": "RTX 4090"}], "apps": {"blender": "/opt/blender"}})
    refresh = '{"name": "n1", "cores": 2, "memory_mb": 2048, "tags": ["linux\\ud800"]}'
    assert "tags.0" in _fields(_raw(farm, "/agent/register", refresh, node["token"]))
    (listed,) = [n for n in farm.api.get("/nodes")["items"] if n["name"] == "n1"]
    assert listed["tags"] == ["linux"] and listed["gpus"][0]["name"] == "RTX 4090"
    assert farm.api.get("/nodes/n1")["apps"] == {"blender": "/opt/blender"}
    _no_server_errors(farm)


def test_a_log_chunk_with_a_lone_surrogate_is_kept_visible(farm: Any) -> None:
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n2", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    farm.api.post("/jobs", {"name": "j", "project": "default",
                            "layers": [{"name": "render", "frames": "1", "args": {"command": ["true"]}}]})
    (assignment,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    attempt = assignment["attempt_id"]
    answer = _raw(farm, f"/agent/attempts/{attempt}/log", '{"offset": 0, "data": "a\\ud800b\\udce9c\\n"}', node["token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["next_offset"] == len("a\ufffdb".encode()) + len(b"\xe9c\n")
    log = farm.api.get(f"/attempts/{attempt}/log")
    assert log["data"] == "a\ufffdb\ufffdc\n"
    refused = _raw(farm, "/agent/finish", json.dumps({"reports": [{"attempt_id": attempt, "status": "succeeded",
                                                                   "ended_at": "\ud800"}]}), node["token"])
    assert "reports.0.ended_at" in _fields(refused)
    assert {"n2"} <= {n["name"] for n in farm.api.get("/nodes")["items"]}
    _no_server_errors(farm)


@pytest.mark.parametrize("path,body,field", [
    ("/jobs", {"name": f"shot{RLO}010", "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]},
     "name"),
    ("/jobs", {"name": "shot010", "project": f"demo{RLO}",
               "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]}, "project"),
    ("/jobs", {"name": "shot010", "shot": "sh\u200b010",
               "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]}, "shot"),
    ("/projects", {"name": f"show{RLO}"}, "name"),
    ("/projects/default/folders", {"name": f"lighting{RLO}"}, "name"),
    ("/limits", {"name": f"nuke{RLO}", "max_total": 4}, "name"),
    ("/services", {"name": f"maya{RLO}"}, "name"),
])
def test_names_with_direction_changing_characters_are_refused(farm: Any, path: str, body: dict, field: str) -> None:
    jobs, projects = farm.api.get("/jobs")["total"], len(farm.api.get("/projects")["items"])
    with pytest.raises(ApiError) as info:
        farm.api.post(path, body)
    assert info.value.status == 422, info.value
    assert field in [e["field"] for e in info.value.errors], info.value.errors
    assert (farm.api.get("/jobs")["total"], len(farm.api.get("/projects")["items"])) == (jobs, projects)
    _no_server_errors(farm)


def test_a_job_spec_with_a_lone_surrogate_is_refused_at_its_field(farm: Any) -> None:
    body = ('{"name": "j", "env": {"A": "\\ud800"}, "layers": [{"name": "r", "frames": "1", '
            '"args": {"command": ["echo", "\\udfff"]}}]}')
    before = farm.api.get("/jobs")["total"]
    fields = _fields(_raw(farm, "/jobs", body, farm.admin_token))
    assert "env.A" in fields and "layers.0.args.command.1" in fields, fields
    assert farm.api.get("/jobs")["total"] == before
    _no_server_errors(farm)

