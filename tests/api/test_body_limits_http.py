"""Request size limits on a real server (`server/body_limit.py`, `model/sizes.py`): a body past the limit
is answered 413 naming the limit and its setting, whether it declares its length or comes in chunks;
the submit route has its own, larger limit; commands and environments too large for every assignment
are refused at submit with 422 at their field. Nothing is written by a refused call."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest

from thresher.model.sizes import MAX_ARG_BYTES, MAX_ARGS, MAX_ENV_BYTES

LIMIT = 64 * 1024
SUBMIT_LIMIT = 256 * 1024


@pytest.fixture
def small(make_farm: Any) -> Any:
    return make_farm(env={"THRESHER_SERVER_MAX_BODY_BYTES": str(LIMIT),
                          "THRESHER_SERVER_MAX_SUBMIT_BODY_BYTES": str(SUBMIT_LIMIT)})


def _spec(command: list[str] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": "big", "project": "default", "env": env or {},
            "layers": [{"name": "render", "frames": "1", "args": {"command": command or ["true"]}}]}


def _post(farm: Any, path: str, content: Any, token: str | None = None) -> httpx.Response:
    return httpx.post(f"{farm.server_url}/api/v1{path}", content=content, timeout=30,
                      headers={"Authorization": f"Bearer {token or farm.admin_token}",
                               "Content-Type": "application/json"})


def _chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _jobs(farm: Any) -> int:
    return int(farm.api.get("/jobs")["total"])


def test_a_body_past_the_limit_is_refused_with_413(small: Any) -> None:
    node = small.client(token=small.enroll_token).post("/agent/register", {"name": "n1", "cores": 1, "memory_mb": 512})
    body = json.dumps({"running": [], "pending_reports": [], "cpu_percent": 1.0, "pad": "x" * (LIMIT * 2)}).encode()
    for content in (body, _chunks(body)):  # with Content-Length, and chunked (no length said)
        answer = _post(small, "/agent/heartbeat", content, node["token"])
        assert answer.status_code == 413, answer.text
        problem = answer.json()
        assert "64 KiB" in problem["detail"] and "max_body_bytes" in problem["detail"]
        assert problem["errors"][0]["field"] == "(body)"
    # under the limit, the same route works
    small_body = json.dumps({"running": []}).encode()
    assert _post(small, "/agent/heartbeat", _chunks(small_body, 4), node["token"]).status_code == 200


def test_the_submit_route_has_its_own_limit(small: Any) -> None:
    big = json.dumps(_spec(env={f"PAD{i}": "x" * 1000 for i in range(100)})).encode()
    assert LIMIT < len(big) < SUBMIT_LIMIT
    assert _post(small, "/jobs", big).status_code == 201  # past the general limit, within the submit one
    bigger = json.dumps(_spec(env={f"PAD{i}": "x" * 1000 for i in range(400)})).encode()
    assert len(bigger) > SUBMIT_LIMIT
    for content in (bigger, _chunks(bigger)):
        answer = _post(small, "/jobs", content)
        assert answer.status_code == 413 and "max_submit_body_bytes" in answer.json()["detail"], answer.text
    assert _jobs(small) == 1


def _refused(farm: Any, spec: dict[str, Any]) -> dict[str, str]:
    answer = _post(farm, "/jobs", json.dumps(spec).encode())
    assert answer.status_code == 422, answer.text
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


def test_commands_and_environments_too_large_for_an_assignment_are_refused(make_farm: Any) -> None:
    farm = make_farm()
    errors = _refused(farm, _spec(command=["echo"] * (MAX_ARGS + 1)))
    assert f"{MAX_ARGS + 1:,} arguments" in errors["layers.0.args"] and f"{MAX_ARGS:,}" in errors["layers.0.args"]
    errors = _refused(farm, _spec(command=["echo", "x" * (MAX_ARG_BYTES + 1)]))
    assert f"argument 1 is {MAX_ARG_BYTES + 1:,} bytes" in errors["layers.0.args"]
    errors = _refused(farm, _spec(command=["echo"] + ["x" * 100_000] * 12))
    assert "the command line is" in errors["layers.0.args"] and "1,024 KiB" in errors["layers.0.args"]
    errors = _refused(farm, _spec(env={f"V{i}": "x" * 1000 for i in range(300)}))
    assert "together" in errors["env"] and f"{MAX_ENV_BYTES // 1024:,} KiB" in errors["env"]
    layer_env = {**_spec(), "layers": [{**_spec()["layers"][0], "env": {"BIG": "x" * (MAX_ARG_BYTES + 1)}}]}
    assert "environment variable BIG" in _refused(farm, layer_env)["layers.0.env"]
    assert _jobs(farm) == 0
    assert _post(farm, "/jobs", json.dumps(_spec(command=["echo"] * 100)).encode()).status_code == 201
