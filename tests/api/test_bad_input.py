"""Rule 4 on a real server, SQLite and PostgreSQL: values the database cannot hold (ids past the id
columns, numbers past 64 bits, NUL in text), unknown filter values and refused specs get a 4xx that
names the field, never a 500, and create nothing. Dry runs answer what the submit would.

One server per database for the whole module (these calls change little), so the many cases stay cheap.
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest
from tests.support.farm import Farm
from tests.support.shared_farm import DATABASES, attach_logs, shared_farm

from thresher.client.http import ApiError, HttpClient

HUGE = 99999999999999999999   # past 64 bits: SQLite cannot bind it
PAST_INT32 = 3_000_000_000    # past the 32-bit id columns: PostgreSQL refuses to compare with it


@pytest.fixture(scope="module", params=DATABASES)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    yield from shared_farm(request, tmp_path_factory, "bad-input")


@pytest.fixture(autouse=True)
def _farm_logs_on_failure(request: pytest.FixtureRequest, shared: Farm) -> None:
    attach_logs(request, shared)


def _spec(**layer: Any) -> dict[str, Any]:
    return {"name": "shot010", "project": "demo", "layers": [
        {"name": "render", "frames": "1-4", "args": {"command": ["echo", "{frame}"]}, **layer}]}


def _refused(api: HttpClient, method: str, path: str, body: Any = None, **params: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        api.request(method, path, json=body, params=params)
    assert 400 <= info.value.status < 500, (path, info.value)
    return info.value


def _fields(error: ApiError) -> dict[str, str]:
    return {e["field"]: e["message"] for e in error.errors}


def _no_server_errors(farm: Farm) -> None:
    log = farm.server.tail(400) if farm.server else ""
    assert "Traceback" not in log and "unexpected error" not in log, log


@pytest.mark.parametrize("spec,field,fragment", [
    (_spec(frames="1-"), "layers.0.frames", "cannot read frame spec"),
    (_spec(frames="a-b"), "layers.0.frames", "cannot read frame spec"),
    (_spec(frames="1-10x0"), "layers.0.frames", "step"),
    (_spec(frames="1-1000000000000"), "layers.0.frames", "limit"),
    (_spec(template="nosuch"), "layers.0.template", "unknown template"),
    (_spec(resources={"cores": -4}), "layers.0.resources.cores", "greater than"),
    (_spec(resources={"memory": "900000T"}), "layers.0.resources.memory", "less than"),
    (_spec(args={}), "layers.0.args.command", "required"),
    ({"layers": []}, "name", "required"),
    ([1, 2], "(body)", "object"),
])
def test_bad_specs_get_a_4xx_naming_the_field_and_create_nothing(shared: Farm, spec, field, fragment) -> None:
    before = shared.api.get("/jobs")["total"]
    error = _refused(shared.api, "POST", "/jobs", spec)
    assert any(e["field"] == field and fragment in e["message"] for e in error.errors), error.errors
    assert shared.api.get("/jobs")["total"] == before


def test_ids_that_cannot_exist_are_404(shared: Farm) -> None:
    api = shared.api
    job = api.post("/jobs", _spec())
    task = api.get(f"/jobs/{job['id']}/tasks")["items"][0]
    assert api.get(f"/tasks/{task['id']}")["job_id"] == job["id"]  # the real ones answer
    for method, path in [("GET", "/jobs/999"), ("GET", "/tasks/999"), ("GET", "/attempts/999/log"),
                         ("POST", "/jobs/999/kill"), ("POST", "/tasks/999/skip"), ("GET", "/nodes/nope")]:
        assert _refused(api, method, path, {} if method == "POST" else None).status == 404, path
    for big in (PAST_INT32, HUGE, -1, 0):
        for method, path in [("GET", f"/jobs/{big}"), ("GET", f"/jobs/{big}/tasks"), ("GET", f"/tasks/{big}"),
                             ("GET", f"/tasks/{big}/attempts"), ("GET", f"/attempts/{big}/log"),
                             ("POST", f"/jobs/{big}/kill"), ("POST", f"/jobs/{big}/retry"),
                             ("POST", f"/jobs/{big}/priority"), ("POST", f"/tasks/{big}/skip"),
                             ("GET", f"/nodes/{big}"), ("POST", f"/nodes/{big}/drain")]:
            body = {"priority": 5} if path.endswith("priority") else ({} if method == "POST" else None)
            error = _refused(api, method, path, body)
            assert error.status == 404, (path, error)
            assert f"{big}" in error.detail, error.detail
    _no_server_errors(shared)


def test_numbers_past_the_columns_are_422_naming_the_field(shared: Farm) -> None:
    api = shared.api
    before = api.get("/jobs")["total"]
    job = api.post("/jobs", _spec())
    for path in ("/jobs", f"/jobs/{job['id']}/tasks", "/attempts/1/log"):
        error = _refused(api, "GET", path, offset=HUGE)
        assert error.status == 422 and "offset" in _fields(error), (path, error)
    error = _refused(api, "POST", f"/jobs/{job['id']}/retry", {"task_ids": [HUGE]})
    assert error.status == 422 and "task_ids.0" in _fields(error), error
    error = _refused(api, "POST", "/jobs", {**_spec(), "depends_on": [HUGE]})
    assert error.status == 422 and "depends_on.0" in _fields(error), error
    for frames in (str(HUGE), f"1-{HUGE}", "1-10x3000000000", f"{HUGE}-{HUGE + 2}"):
        error = _refused(api, "POST", "/jobs", _spec(frames=frames))
        assert error.status == 422 and "out of range" in _fields(error).get("layers.0.frames", ""), error
    for resources, field in [({"memory_mb": HUGE}, "layers.0.resources.memory_mb"),
                             ({"cores": HUGE}, "layers.0.resources.cores"),
                             ({"memory": f"{HUGE}T"}, "layers.0.resources.memory")]:
        error = _refused(api, "POST", "/jobs", _spec(resources=resources))
        assert field in _fields(error), error
    assert _refused(api, "POST", "/jobs", {**_spec(), "priority": HUGE}).errors[0]["field"] == "priority"
    assert api.get("/jobs")["total"] == before + 1  # only the good one
    _no_server_errors(shared)


def test_nul_and_control_characters_are_422_naming_the_field(shared: Farm) -> None:
    api = shared.api
    before = api.get("/jobs")["total"]
    for spec, field in [({**_spec(), "name": "x\u0000y"}, "name"), ({**_spec(), "project": "x\u0000y"}, "project"),
                        ({**_spec(), "shot": "a\nb"}, "shot"),
                        (_spec(args={"command": ["echo", "a\u0000b"]}), "layers.0.args.command.1"),
                        (_spec(args={"command": "echo \u0000", "shell": True}), "layers.0.args.command"),
                        ({**_spec(), "env": {"A": "\u0000"}}, "env.A"),
                        (_spec(cwd="/tmp/\u0000"), "layers.0.cwd")]:
        error = _refused(api, "POST", "/jobs", spec)
        assert error.status == 422 and field in _fields(error), (field, error.errors)
    assert api.get("/jobs")["total"] == before
    job = api.post("/jobs", _spec())
    for path, params, field in [("/jobs", {"name": "a\u0000b"}, "name"), ("/jobs", {"project": "a\u0000b"}, "project"),
                                ("/jobs", {"owner": "a\u0000b"}, "owner"),
                                (f"/jobs/{job['id']}/tasks", {"layer": "a\u0000b"}, "layer")]:
        error = _refused(api, "GET", path, **params)
        assert error.status == 422 and field in _fields(error), (path, error)
    for method, path in [("GET", "/nodes/a%00b"), ("POST", "/nodes/a%00b/disable")]:
        error = _refused(api, method, path, {} if method == "POST" else None)
        assert error.status == 422 and "ident" in _fields(error), (path, error)
    _no_server_errors(shared)


def test_deeply_nested_documents_are_refused_before_any_check_walks_them(shared: Farm) -> None:
    for depth in (40, 900):  # 900: deep enough for a RecursionError in a recursive walk, shallow enough to parse
        nested: Any = "x"
        for _ in range(depth):
            nested = [nested]
        error = _refused(shared.api, "POST", "/jobs", _spec(args={"command": ["echo"], "extra": nested}))
        assert error.status == 422, error
        (problem,) = error.errors
        assert problem["field"].startswith("layers.0.args.extra.0") and "nested more than" in problem["message"]
    _no_server_errors(shared)


def test_the_largest_job_chained_in_reverse_order_is_checked_without_recursion(shared: Farm) -> None:
    """1,000 layers (the most a job may hold), each depending on the next: accepted; closed into a cycle,
    a 422 naming every layer of it (once a RecursionError and a 500)."""
    api = shared.api
    count = 1000
    layers = [{"name": f"l{i}", "depends_on": [f"l{i + 1}"], "args": {"command": ["echo", "{frame}"]}}
              for i in range(count - 1)]
    last = {"name": f"l{count - 1}", "args": {"command": ["echo", "{frame}"]}}
    before = api.get("/jobs")["total"]
    error = _refused(api, "POST", "/jobs", {"name": "cycle", "layers": [*layers, {**last, "depends_on": ["l0"]}]})
    cycle = " -> ".join([*(f"l{i}" for i in range(count)), "l0"])
    assert error.status == 422 and error.errors == [{"field": "layers", "message": f"dependency cycle {cycle}"}]
    assert api.get("/jobs")["total"] == before
    job = api.post("/jobs", {"name": "chain", "layers": [*layers, last]})
    assert job["total_tasks"] == count and api.get("/jobs")["total"] == before + 1
    ready = api.get(f"/jobs/{job['id']}/tasks", state="ready")["items"]
    assert [task["layer"] for task in ready] == [f"l{count - 1}"]  # only the layer that waits for none
    _no_server_errors(shared)


def test_unknown_state_filters_are_422_listing_the_states(shared: Farm) -> None:
    api = shared.api
    job = api.post("/jobs", _spec())
    error = _refused(api, "GET", "/jobs", state="bogus")
    assert error.status == 422 and "'bogus'" in _fields(error)["state"]
    assert "queued" in _fields(error)["state"] and "succeeded" in _fields(error)["state"]
    error = _refused(api, "GET", f"/jobs/{job['id']}/tasks", state="ready,bogus")
    assert "'bogus'" in _fields(error)["state"] and "skipped" in _fields(error)["state"]
    assert api.get("/jobs", state="queued,running")["total"] >= 1
    assert api.get(f"/jobs/{job['id']}/tasks", state="ready")["total"] == 4
    _refused(api, "GET", "/jobs", sort="bogus")


def test_error_locations_are_precise(shared: Farm) -> None:
    api = shared.api
    error = _refused(api, "POST", "/jobs", _spec(resources={"memory": "-4G"}))
    assert "negative" in _fields(error)["layers.0.resources.memory"]
    response = httpx.post(shared.server_url + "/api/v1/jobs", content=b'{"name": "x",\n oops}',
                          headers={"Authorization": f"Bearer {shared.admin_token}", "Content-Type": "application/json"})
    assert response.status_code == 422
    (problem,) = response.json()["errors"]
    assert problem["field"] == "(body)" and "invalid JSON" in problem["message"], problem


def test_the_last_resort_turns_database_value_errors_into_4xx(shared: Farm) -> None:
    """Routes outside this module's checks (the agent's) still answer a 4xx, not a 500, for a value
    the database refuses."""
    node = shared.client(token=shared.enroll_token).post("/agent/register", {"name": "lastresort", "cores": 1,
                                                                             "memory_mb": 100000})
    agent = shared.client(token=node["token"])
    error = _refused(agent, "POST", f"/agent/attempts/{HUGE}/log", {"offset": 0, "data": "x"})
    assert error.status in (404, 422), error


def test_dry_run_runs_every_check_and_lists_every_problem_at_once(shared: Farm) -> None:
    api = shared.api
    before = api.get("/jobs")["total"]
    shared.client(token=shared.enroll_token).post("/agent/register", {"name": "small", "cores": 2, "memory_mb": 2000})
    big = _spec(resources={"cores": 64})
    for dry in ("true", None):  # the dry run refuses what the submit refuses, with the same errors
        error = _refused(api, "POST", "/jobs", big, dry_run=dry)
        assert error.status == 422 and "no node can run this layer" in _fields(error)["layers.0.resources"]
        error = _refused(api, "POST", "/jobs", _spec(tags=["houdini"]), dry_run=dry)
        assert error.status == 422 and "tags ['houdini']" in _fields(error)["layers.0.resources"]
        error = _refused(api, "POST", "/jobs", {**_spec(), "depends_on": [2_000_000_000]}, dry_run=dry)
        assert error.status == 422 and "no job with id" in _fields(error)["depends_on.0"]
    messy = {"name": "messy", "depends_on": [2_000_000_000], "layers": [
        {"name": "a", "resources": {"cores": -4}, "args": {"command": ["echo"]}},
        {"name": "b", "template": "nosuchapp", "depends_on": ["ghost"]},
        {"name": "c", "resources": {"cores": 64}, "args": {"command": ["echo", "{frame}"]}},
    ]}
    error = _refused(api, "POST", "/jobs", messy, dry_run="true")
    fields = _fields(error)
    assert "layers.0.resources.cores" in fields
    assert "unknown template 'nosuchapp'" in fields["layers.1.template"]
    assert "no layer named 'ghost'" in fields["layers.1.depends_on"]
    assert "no node can run this layer" in fields["layers.2.resources"]
    assert "no job with id" in fields["depends_on.0"]
    ok = api.post("/jobs", _spec(), dry_run="true")
    assert ok["valid"] is True and ok["total_tasks"] == 4
    assert api.get("/jobs")["total"] == before
    _no_server_errors(shared)
