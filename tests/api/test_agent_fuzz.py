"""The agent routes fuzzed with hypothesis over real HTTP (issue 13, defect 3): whatever text an agent
sends (lone surrogates, NUL, controls, direction-changing characters, in keys too), the server answers a
4xx naming a field or takes it, never a 5xx, and the node and log listings keep answering afterwards.

One SQLite server for the module; a bounded number of examples per route keeps it within the suite's time."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
from tests.support.farm import Farm

from thresher.client.http import API_PREFIX

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Any character at all, lone surrogates included (hypothesis leaves them out unless asked).
ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=())
NASTY = st.sampled_from(["\ud800", "\udcff", "\x00", "\u202e", "\u2066", "\u200b", "\ufeff", "\n", "\x85", "é", "渲"])
TEXT = st.one_of(st.text(ANY_CHAR, max_size=12), st.lists(NASTY, max_size=4).map("".join),
                 st.tuples(st.text(max_size=6), NASTY, st.text(max_size=6)).map("".join))
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("agent-fuzz")
    farm = Farm(f"sqlite:///{root / 'thresher.db'}", root).start()
    try:
        yield farm
    finally:
        farm.stop()


@pytest.fixture(scope="module")
def node(shared: Farm) -> dict[str, Any]:
    """A registered node with one running attempt to write logs and reports for."""
    node = shared.client(token=shared.enroll_token).post("/agent/register", {"name": "fuzz", "cores": 2,
                                                                             "memory_mb": 2048})
    shared.api.post("/jobs", {"name": "fuzzed", "project": "default",
                              "layers": [{"name": "render", "frames": "1-100", "args": {"command": ["true"]}}]})
    agent = shared.client(token=node["token"])
    (assignment,) = agent.post("/agent/work", {}, wait=5)["assignments"][:1]
    return {"token": node["token"], "attempt": assignment["attempt_id"], "offset": 0}


def _post(farm: Farm, path: str, body: Any, token: str) -> httpx.Response:
    raw = json.dumps(body, ensure_ascii=True)  # escapes lone surrogates, which is still valid JSON
    return httpx.post(f"{farm.server_url}{API_PREFIX}{path}", content=raw.encode("ascii"), timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def _answered_well(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code == 422:
        assert all(error["field"] for error in answer.json()["errors"]), answer.text


def _lists_still_answer(farm: Farm, attempt: int | None = None) -> None:
    assert farm.api.get("/nodes")["total"] >= 1
    if attempt is not None:
        farm.api.get(f"/attempts/{attempt}/log", offset=0, limit=4096)


@FUZZ
@given(name=TEXT, hostname=TEXT, os_name=TEXT, tags=st.lists(TEXT, max_size=3),
       apps=st.dictionaries(TEXT, TEXT, max_size=2), gpu_names=st.lists(TEXT, max_size=2))
def test_registrations(shared: Farm, node: dict[str, Any], name: str, hostname: str, os_name: str, tags: list[str],
                       apps: dict[str, str], gpu_names: list[str]) -> None:
    body = {"name": name or "x", "hostname": hostname, "os": os_name, "cores": 2, "memory_mb": 2048, "tags": tags,
            "apps": apps, "gpus": [{"index": i, "name": g} for i, g in enumerate(gpu_names)]}
    _answered_well(_post(shared, "/agent/register", body, shared.enroll_token))
    _answered_well(_post(shared, "/agent/register", {**body, "name": "fuzz"}, node["token"]))
    _lists_still_answer(shared)


@FUZZ
@given(data=TEXT)
def test_log_chunks(shared: Farm, node: dict[str, Any], data: str) -> None:
    answer = _post(shared, f"/agent/attempts/{node['attempt']}/log", {"offset": node["offset"], "data": data},
                   node["token"])
    assert answer.status_code == 200, answer.text  # a log takes any text: nothing of it is refused
    node["offset"] = answer.json()["next_offset"]
    _lists_still_answer(shared, node["attempt"])


@FUZZ
@given(reason=st.one_of(st.none(), TEXT), ended_at=st.one_of(st.none(), TEXT), status=TEXT,
       cpu=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_finish_reports_and_heartbeats(shared: Farm, node: dict[str, Any], reason: str | None, ended_at: str | None,
                                       status: str, cpu: float | None) -> None:
    report = {"attempt_id": node["attempt"], "status": status, "reason": reason, "ended_at": ended_at,
              "log_size": node["offset"]}
    _answered_well(_post(shared, "/agent/finish", {"reports": [report]}, node["token"]))
    beat = {"cpu_percent": cpu, "running": [{"attempt_id": node["attempt"]}]}
    _answered_well(_post(shared, "/agent/heartbeat", beat, node["token"]))
    _lists_still_answer(shared, node["attempt"])


def test_the_fuzzed_server_logged_no_crash(shared: Farm, node: dict[str, Any]) -> None:
    text = shared.server.tail(5000) if shared.server else ""
    assert "Traceback" not in text and "unexpected error" not in text, text[-4000:]
