"""The OpenAPI document is the contract, and it is true.

- Whole: every schema it refers to is in it (Swagger UI and ReDoc at /docs and /redoc render it; a
  dangling reference leaves the job spec's form empty).
- Complete: every route has a response model, a readable operation id and a tag; every error status is
  documented with the problem shape the server really sends; the bearer scheme makes /docs' Authorize work.
- True: real requests, good and bad, through the app answer only statuses their operation documents, with
  bodies that are exactly the documented models (no field missing from the model, none made up).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

from thresher.server.app import API_PREFIX, create_app
from thresher.server.main import prepare
from thresher.wire.common import Problem


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    data = tmp_path_factory.mktemp("openapi")
    server = prepare(None, data)
    app = create_app(server)
    app.state.tokens = {kind: (data / f"{kind}.token").read_text().strip() for kind in ("admin", "enroll")}
    try:
        yield app
    finally:
        server.db.dispose()


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers whole
            yield from _walk(route.original_router.routes)


def _api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the API (the dashboard's pages and /docs are left out of the document)."""
    return [r for r in _walk(app.routes) if r.include_in_schema]


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_reference_resolves_and_the_job_spec_is_described(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and not refs - set(schemas)
    assert "$defs" not in text
    body = document["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/JobSpec"
    assert {"name", "layers"} <= set(schemas["JobSpec"]["properties"])


def test_every_route_has_a_response_model_an_operation_id_and_a_tag(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert len(routes) > 25
    lacking = [f"{sorted(r.methods or ())} {r.path}" for r in routes if r.response_model is None]
    assert not lacking, f"routes without a response_model: {lacking}"
    unnamed = [r.path for r in routes if not r.operation_id or not re.fullmatch(r"[a-z][a-z_]*", r.operation_id)]
    assert not unnamed, f"routes without a readable operation_id: {unnamed}"
    assert not [r.path for r in routes if not r.tags]
    ids = [r.operation_id for r in routes]
    assert len(ids) == len(set(ids))
    assert {"submit_job", "list_jobs", "get_job", "kill_job", "register_node", "heartbeat",
            "ask_for_work"} <= set(ids)
    assert {tag for r in routes for tag in r.tags} == {"jobs", "tasks", "attempts", "nodes", "templates", "agent", "studio",
                                                       "meta", "people"}


def _schema_name(response: dict[str, Any]) -> str:
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_success_and_error_answers_have_their_shapes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in json.dumps(document), "FastAPI's 422 shape is not what the server sends"
    for method, path, operation in _operations(document):
        where = f"{method} {path}"
        successes = [s for s in operation["responses"] if s.startswith("2")]
        assert successes, where
        for status in successes:
            assert _schema_name(operation["responses"][status]), where  # a named model, not an empty schema
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                shape = schemas[_schema_name(response)]
                assert {"detail", "errors"} <= set(shape["properties"]), (where, status)
                assert {"detail", "errors"} <= set(shape["required"]), (where, status)
        if "security" not in operation:  # the document's bearer scheme applies: a missing token is a 401
            assert "401" in operation["responses"], where
    assert schemas["Problem"]["properties"]["errors"]["items"]["$ref"] == "#/components/schemas/FieldError"
    assert set(schemas["FieldError"]["required"]) == {"field", "message"}


def test_the_bearer_scheme_is_declared_for_authorize_in_docs(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []  # the one call without a token


# ---------------------------------------------------------------------------------- real requests

def _no_nulls(value: Any) -> Any:
    """JSON without null members: a field the server leaves out and one it sends as null read alike."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


class Caller:
    """Sends requests through the app and checks each answer against the operation that took it."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.client = client
        self.document = app.openapi()
        self.routes = {r.operation_id: r for r in _api_routes(app)}
        self.patterns = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                         for path in self.document["paths"]]
        self.seen: set[tuple[str, int]] = set()

    def __call__(self, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.client.request(method, API_PREFIX + path, headers=headers, **kwargs)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        template = next(t for pattern, t in self.patterns if pattern.match(API_PREFIX + path.split("?")[0])
                        and method.lower() in self.document["paths"][t])  # POST /jobs/archive, GET /jobs/{id}
        operation = self.document["paths"][template][method.lower()]
        documented = operation["responses"]
        assert str(status) in documented, f"{method} {template} answered {status}, documents {sorted(documented)}"
        self.seen.add((operation["operationId"], status))
        route = self.routes[operation["operationId"]]
        model = route.responses.get(status, {}).get("model") or (
            route.response_model if 200 <= status < 300 else Problem)
        body = answer.json()
        adapter: TypeAdapter[Any] = TypeAdapter(model)
        parsed = adapter.validate_python(body)
        assert _no_nulls(adapter.dump_python(parsed, mode="json")) == _no_nulls(body), (method, template, status)
        return body


def _spec(frames: str = "1-2", **layer: Any) -> dict[str, Any]:
    return {"name": "contract", "project": "default", "layers": [
        {"name": "render", "frames": frames, "args": {"command": ["echo", "{frame}"]}, **layer}]}


def test_real_answers_are_documented_and_have_their_models(app: FastAPI) -> None:
    admin, enroll = app.state.tokens["admin"], app.state.tokens["enroll"]
    with TestClient(app, raise_server_exceptions=False) as client:
        call = Caller(app, client)
        # meta
        call("GET", "/health", None, 200)
        call("GET", "/whoami", admin, 200)
        call("GET", "/whoami", None, 401)
        call("GET", "/whoami", "thr_admin_not-a-token", 401)
        # a node enrols; another agent under its name is refused while it lives
        node = {"name": "n1", "cores": 4, "memory_mb": 4096, "gpus": [{"index": 0, "name": "gpu"}],
                "instance_id": "one"}
        registered = call("POST", "/agent/register", enroll, 200, json=node)
        token = registered["token"]
        call("POST", "/agent/register", token, 200, json=node)
        call("POST", "/agent/register", enroll, 409, json={**node, "instance_id": "two"})
        call("POST", "/agent/register", enroll, 422, json={**node, "cores": 0})
        call("POST", "/agent/register", None, 401, json=node)
        # jobs
        call("POST", "/jobs", enroll, 403, json=_spec())
        call("POST", "/jobs", None, 401, json=_spec())
        call("POST", "/jobs", admin, 422, json=_spec(frames="1-"))
        call("POST", "/jobs?dry_run=true", admin, 200, json=_spec(frames="1-3"))
        call("POST", "/jobs?dry_run=true&os=plan9", admin, 422, json=_spec())
        job = call("POST", "/jobs", admin, 201, json=_spec(frames="1-2", resources={"gpus": 1}))
        call("GET", "/jobs", admin, 200, params={"state": "queued,running"})
        call("GET", "/jobs", admin, 200, params={"folder": "seq1"})
        call("GET", "/jobs", admin, 422, params={"state": "bogus"})
        call("GET", "/jobs", admin, 422, params={"sort": "bogus"})
        call("GET", f"/jobs/{job['id']}", admin, 200)
        call("GET", "/jobs/999999", admin, 404)
        call("GET", "/jobs/abc", admin, 422)
        call("GET", f"/jobs/{job['id']}", token, 403)
        tasks = call("GET", f"/jobs/{job['id']}/tasks", admin, 200, params={"limit": 1})
        assert tasks["total"] == 2 and len(tasks["items"]) == 1
        call("GET", "/jobs/999999/tasks", admin, 404)
        # the agent's side: heartbeat, work, log, finish
        call("POST", "/agent/heartbeat", token, 200, json={"cpu_percent": 1.0, "running": []})
        call("POST", "/agent/heartbeat", admin, 403, json={})
        call("POST", "/agent/heartbeat", token, 422, json={"running": "x"})
        work = call("POST", "/agent/work?wait=0", token, 200, json={})
        (assignment,) = work["assignments"]  # one GPU: one task at a time
        attempt_id = assignment["attempt_id"]
        call("POST", "/agent/work?wait=100", token, 422, json={})
        call("POST", f"/agent/attempts/{attempt_id}/log", token, 200, json={"offset": 0, "data": "hello\n"})
        call("POST", f"/agent/attempts/{attempt_id}/log", token, 409, json={"offset": 100, "data": "x"})
        call("POST", "/agent/attempts/999999/log", token, 404, json={"offset": 0, "data": "x"})
        call("POST", f"/agent/attempts/{attempt_id}/log", token, 422, json={"offset": -1, "data": "x"})
        call("POST", "/agent/heartbeat", token, 200, json={"running": [{"attempt_id": attempt_id, "progress": 50}]})
        call("GET", "/nodes", admin, 200)
        call("GET", "/nodes/n1", admin, 200)
        call("GET", f"/attempts/{attempt_id}/log", admin, 200)
        call("GET", "/attempts/999999/log", admin, 404)
        call("GET", f"/attempts/{attempt_id}/command", admin, 200)
        call("GET", "/attempts/999999/command", admin, 404)
        call("PATCH", "/nodes/n1", admin, 200, json={"tags": ["big"]})
        call("PATCH", "/nodes/n1", admin, 422, json={"tags": ["not a tag"]})
        call("PATCH", "/nodes/nobody", admin, 404, json={"tags": []})
        finished = call("POST", "/agent/finish", token, 200, json={"reports": [
            {"attempt_id": attempt_id, "status": "succeeded", "exit_code": 0, "log_size": 6},
            {"attempt_id": 999999, "status": "failed", "log_size": 0}]})
        assert [r["accepted"] for r in finished["results"]] == [True, False]
        call("POST", "/agent/finish", token, 422, json={"reports": [{"attempt_id": attempt_id, "status": "done"}]})
        # tasks and attempts
        done, other = (t["id"] for t in call("GET", f"/jobs/{job['id']}/tasks", admin, 200)["items"])
        call("GET", f"/tasks/{done}", admin, 200)
        call("GET", "/tasks/999999", admin, 404)
        attempts = call("GET", f"/tasks/{done}/attempts", admin, 200)
        assert attempts["total"] == 1 and attempts["items"][0]["id"] == attempt_id
        call("GET", "/tasks/999999/attempts", admin, 404)
        call("GET", f"/jobs/{job['id']}/failures", admin, 200)
        call("GET", "/jobs/999999/failures", admin, 404)
        call("GET", f"/tasks/{done}/attempts", admin, 422, params={"limit": 0})
        call("POST", f"/tasks/{done}/kill", admin, 409)
        call("POST", f"/tasks/{other}/skip", admin, 200)
        call("POST", f"/tasks/{other}/skip", admin, 409)
        call("POST", f"/tasks/{other}/retry", admin, 200)
        call("POST", f"/tasks/{other}/kill", admin, 200)
        call("POST", "/tasks/999999/retry", admin, 404)
        # steering the job
        call("POST", f"/jobs/{job['id']}/priority", admin, 200, json={"priority": 90})
        call("POST", f"/jobs/{job['id']}/priority", admin, 422, json={"priority": 9000})
        call("POST", f"/jobs/{job['id']}/retry", admin, 200, json={"task_ids": [other]})
        call("POST", f"/jobs/{job['id']}/layers/render/pause", admin, 200)
        call("POST", f"/jobs/{job['id']}/layers/render/pause", admin, 409)
        call("POST", f"/jobs/{job['id']}/layers/render/resume", admin, 200)
        call("POST", f"/jobs/{job['id']}/layers/nothing/kill", admin, 404)
        call("POST", f"/jobs/{job['id']}/layers/render/explode", admin, 422)
        call("POST", f"/jobs/{job['id']}/pause", admin, 200)
        call("POST", f"/jobs/{job['id']}/resume", admin, 200)
        call("POST", f"/jobs/{job['id']}/kill", admin, 200)
        call("POST", f"/jobs/{job['id']}/pause", admin, 409)
        call("POST", f"/jobs/{job['id']}/retry", admin, 404, json={"task_ids": [999999]})
        call("POST", "/jobs/999999/kill", admin, 404)
        # the job's blocklist
        call("GET", f"/jobs/{job['id']}/blocklist", admin, 200)
        call("GET", "/jobs/999999/blocklist", admin, 404)
        call("DELETE", f"/jobs/{job['id']}/blocklist/n1", admin, 404)  # never failed it
        call("DELETE", f"/jobs/{job['id']}/blocklist/nobody", admin, 404)
        call("DELETE", f"/jobs/{job['id']}/blocklist", admin, 200)
        call("GET", f"/jobs/{job['id']}/blocklist", token, 403)
        # the job's dependencies
        call("GET", f"/jobs/{job['id']}/dependencies", admin, 200)
        call("GET", "/jobs/999999/dependencies", admin, 404)
        call("POST", f"/jobs/{job['id']}/dependencies", admin, 409, json={"task": other, "on_task": done})
        call("POST", f"/jobs/{job['id']}/dependencies", admin, 422, json={"task": other})
        call("POST", "/jobs/999999/dependencies", admin, 404, json={"task": other, "on_task": done})
        call("DELETE", f"/jobs/{job['id']}/dependencies", admin, 422)
        call("DELETE", f"/jobs/{job['id']}/dependencies", admin, 409, params={"all": "true"})  # it has none
        call("DELETE", "/jobs/999999/dependencies", admin, 404, params={"all": "true"})
        # nodes and templates
        call("GET", "/nodes", admin, 422, params={"limit": 0})
        call("GET", "/nodes/nobody", admin, 404)
        for verb in ("drain", "disable", "enable"):
            call("POST", f"/nodes/n1/{verb}", admin, 200)
        call("POST", "/nodes/nobody/drain", admin, 404)
        templates = call("GET", "/templates", admin, 200, params={"limit": 2})
        assert len(templates["items"]) == 2 and templates["total"] > 2
        call("GET", "/templates", admin, 422, params={"offset": -1})
        # studio scheduling
        call("GET", "/projects", admin, 200)
        call("POST", "/projects", admin, 201, json={"name": "show", "weight": 2})
        call("POST", "/projects", admin, 409, json={"name": "show"})
        call("POST", "/projects", admin, 422, json={"name": "show2", "weight": -1})
        call("GET", "/projects/show", admin, 200)
        call("GET", "/projects/nothing", admin, 404)
        call("GET", "/projects/show/usage", admin, 200, params={"since": "2026-01-01T00:00:00Z"})
        call("GET", "/projects/show/usage", admin, 422, params={"since": "yesterday"})
        call("GET", "/projects/nothing/usage", admin, 404)
        call("PATCH", "/projects/show", admin, 200, json={"max_cores": 10})
        call("PATCH", "/projects/nothing", admin, 404, json={"max_cores": 10})
        call("POST", "/projects/show/folders", admin, 201, json={"name": "seq1", "priority": 5})
        call("POST", "/projects/show/folders", admin, 409, json={"name": "seq1"})
        call("POST", "/projects/nothing/folders", admin, 404, json={"name": "seq1"})
        call("PATCH", "/projects/show/folders/seq1", admin, 200, json={"priority": 7})
        call("PATCH", "/projects/show/folders/none", admin, 404, json={"priority": 7})
        call("PUT", "/projects/show/pools/default", admin, 200, json={"guaranteed_cores": 2, "max_cores": 8})
        call("PUT", "/projects/show/pools/nowhere", admin, 404, json={})
        call("POST", "/nodes/n1/pool", admin, 200, json={"pool": "fast"})
        call("POST", "/nodes/nobody/pool", admin, 404, json={"pool": "fast"})
        call("GET", "/pools", admin, 200)
        call("GET", "/pools/fast", admin, 200)
        call("GET", "/pools/nowhere", admin, 404)
        call("GET", "/limits", admin, 200)
        call("POST", "/limits", admin, 201, json={"name": "nuke", "max_total": 2})
        call("POST", "/limits", admin, 409, json={"name": "nuke", "max_total": 2})
        call("PATCH", "/limits/nuke", admin, 200, json={"max_per_node": 1})
        call("PATCH", "/limits/none", admin, 404, json={"max_per_node": 1})
        call("DELETE", "/limits/nuke", admin, 200)
        call("DELETE", "/limits/nuke", admin, 404)
        call("GET", "/services", admin, 200)
        call("POST", "/services", admin, 201, json={"name": "comp", "defaults": {"resources": {"cores": 2}}})
        call("POST", "/services", admin, 409, json={"name": "comp"})
        call("POST", "/services", admin, 422, json={"name": "comp2", "defaults": {"pools": ["nowhere"]}})
        call("GET", "/services/comp", admin, 200)
        call("GET", "/services/nothing", admin, 404)
        call("PATCH", "/services/comp", admin, 200, json={"defaults": {"retries": 1}})
        call("PATCH", "/services/nothing", admin, 404, json={})
        call("DELETE", "/services/comp", admin, 200)
        call("DELETE", "/services/comp", admin, 404)
        call("POST", f"/jobs/{job['id']}/urgent", admin, 409, json={"urgent": True})  # killed above
        call("POST", f"/jobs/{job['id']}/urgent", admin, 200, json={"urgent": False})
        call("POST", "/jobs/999999/urgent", admin, 404, json={"urgent": True})
        call("POST", f"/jobs/{job['id']}/move", admin, 409, json={"folder": "late"})
        call("POST", "/jobs/999999/move", admin, 404, json={"folder": "late"})
        scouted = call("POST", "/jobs", admin, 201, json=_spec(frames="1-3", scout="1", scout_release="manual"))
        call("POST", f"/jobs/{scouted['id']}/urgent", admin, 200, json={"urgent": True})
        call("POST", f"/jobs/{scouted['id']}/move", admin, 200, json={"folder": "late"})
        call("PUT", f"/jobs/{scouted['id']}/layers/render/scout", admin, 422, json={"scout": "zz"})
        call("PUT", f"/jobs/{scouted['id']}/layers/nothing/scout", admin, 404, json={"scout": "1"})
        call("PUT", f"/jobs/{scouted['id']}/layers/render/scout", admin, 200, json={"scout": "3", "release": "manual"})
        call("PUT", f"/jobs/{job['id']}/layers/render/scout", admin, 409, json={"scout": "1"})
        call("POST", f"/jobs/{scouted['id']}/release", admin, 404, json={"layer": "nothing"})
        call("POST", f"/jobs/{scouted['id']}/release", admin, 200, json={"layer": "render"})
        call("POST", f"/jobs/{scouted['id']}/release", admin, 409)
        # people: users, personal tokens, the password login, projects' members
        call("GET", "/users", admin, 200)
        call("POST", "/users", admin, 201, json={"name": "ana", "role": "artist", "password": "ana-secret-1"})
        call("POST", "/users", admin, 409, json={"name": "ana"})
        call("POST", "/users", admin, 422, json={"name": "not a name"})
        call("GET", "/users/ana", admin, 200)
        call("GET", "/users/nobody", admin, 404)
        call("PATCH", "/users/ana", admin, 200, json={"role": "wrangler"})
        call("PATCH", "/users/nobody", admin, 404, json={})
        call("PUT", "/users/ana/password", admin, 200, json={"password": "ana-secret-2"})
        call("PUT", "/users/nobody/password", admin, 404, json={"password": "whatever-1"})
        call("POST", "/login", None, 401, json={"user": "ana", "password": "wrong-one"})
        call("POST", "/login", None, 422, json={"user": "ana"})
        ana = call("POST", "/login", None, 200, json={"user": "ana", "password": "ana-secret-2"})["secret"]
        call("PUT", "/password", ana, 422, json={"old_password": "wrong-one", "password": "ana-secret-3"})
        call("PUT", "/password", ana, 200, json={"old_password": "ana-secret-2", "password": "ana-secret-3"})
        for _ in range(5):  # a name that is nobody's locks like anyone's (the answer tells no names)
            call("POST", "/login", None, 401, json={"user": "mallory", "password": "guess-guess"})
        call("POST", "/login", None, 429, json={"user": "mallory", "password": "guess-guess"})
        call("POST", "/users/ana/unlock", admin, 200)
        call("POST", "/users/nobody/unlock", admin, 404)
        call("GET", "/users/ana/sessions", admin, 200)
        call("GET", "/users/nobody/sessions", admin, 404)
        call("POST", "/users/ana/sessions/end", ana, 200)
        call("POST", "/users/admin/sessions/end", ana, 404)  # another's: as if there were none
        made = call("POST", "/tokens", ana, 201, json={"name": "pipeline", "read_only": True})
        call("POST", "/tokens", made["secret"], 403, json={"name": "escalate"})
        call("GET", "/tokens", ana, 200)
        call("GET", "/tokens", admin, 200, params={"all": "true"})
        call("DELETE", f"/tokens/{made['id']}", ana, 200)
        call("DELETE", "/tokens/999999", ana, 404)
        enrolling = call("POST", "/enroll-tokens", admin, 201, json={"name": "room b", "one_time": True, "pool": "gpu"})
        call("POST", "/enroll-tokens", admin, 422, json={"name": "x", "pool": "not a pool"})
        call("POST", "/enroll-tokens", ana, 403, json={"name": "x"})
        call("GET", "/enroll-tokens", admin, 200)
        call("DELETE", f"/enroll-tokens/{enrolling['id']}", admin, 200)
        call("DELETE", "/enroll-tokens/999999", admin, 404)
        call("POST", "/agent/register", enrolling["secret"], 401, json={"name": "n9", "cores": 1, "memory_mb": 512})
        call("GET", "/projects/show/members", admin, 200)
        call("GET", "/projects/nothing/members", admin, 404)
        call("POST", "/projects/show/members", admin, 200, json={"user": "ana"})
        call("POST", "/projects/nothing/members", admin, 404, json={"user": "ana"})
        call("DELETE", "/projects/show/members/ana", admin, 200)
        call("DELETE", "/projects/show/members/ana", admin, 404)
        call("GET", "/audit", admin, 200, params={"who": "ana", "allowed": "false"})  # the audit log
        call("GET", "/audit", admin, 422, params={"job": "x"})
        call("GET", "/audit", None, 401)
        call("POST", "/logout", ana, 200)
        call("POST", "/logout", ana, 401)
        # retention: only finished jobs, a node only when down
        call("POST", "/jobs/archive", admin, 409, json={"ids": [scouted["id"]]})
        call("POST", "/jobs/archive", admin, 422, json={})
        call("POST", "/jobs/archive", admin, 200, json={"state": ["succeeded"], "older_than_s": 86400})
        call("POST", "/jobs/delete", admin, 200, json={"state": ["killed"], "archived": True})
        call("POST", "/jobs/delete", admin, 404, json={"ids": [999999]})
        call("DELETE", f"/jobs/{scouted['id']}", admin, 409)
        call("DELETE", "/jobs/999999", admin, 404)
        call("DELETE", "/nodes/nobody", admin, 404)
        call("DELETE", "/nodes/n1", admin, 409)
        call("POST", "/agent/goodbye", admin, 403)
        call("POST", "/agent/goodbye", token, 200)
    operations = {op["operationId"] for _, _, op in _operations(call.document)}
    assert operations == {operation for operation, _ in call.seen}, "an operation no request went through"
    assert {status for _, status in call.seen} == {200, 201, 401, 403, 404, 409, 422, 429}


def test_page_is_one_generic_shape(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    pages = [name for name in schemas if name.startswith("Page_")]
    assert set(pages) == {"Page_JobSummary_", "Page_Task_", "Page_Attempt_", "Page_Node_", "Page_Template_",
                          "Page_Project_", "Page_Pool_", "Page_Limit_", "Page_Service_", "Page_User_",
                          "Page_TokenInfo_", "Page_AuditEntry_", "Page_SessionInfo_", "Page_EnrollToken_"}
    for name in pages:
        assert set(schemas[name]["required"]) == {"items", "total"}


def test_wire_models_import_without_the_server() -> None:
    """The client installs the models alone: no database or web framework behind them."""
    import subprocess
    import sys

    code = ("import sys, thresher.client.api, thresher.wire.agent; "
            "sys.exit(any(m in sys.modules for m in ('sqlalchemy', 'fastapi', 'thresher.server')))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent).returncode == 0


def test_base_model_is_what_every_documented_body_is(app: FastAPI) -> None:
    for route in _api_routes(app):
        models = [route.response_model, *(r.get("model") for r in route.responses.values())]
        for model in filter(None, models):
            assert isinstance(model, type) and issubclass(model, BaseModel), (route.path, model)
