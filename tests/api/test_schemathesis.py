"""Every operation of the OpenAPI document fuzzed with schemathesis (issue 13): called with the admin's
token, with a node's and with none, each answer is no 5xx, a status the operation documents, with the
documented content type and a body that is the documented schema.

The app runs in process on a real SQLite file (`server.main.prepare`, what a server start does), its
lifespan started once for the module, so the batcher, the refresher and the loops run as they do in a
server. The farm is seeded with a node, jobs, an attempt, a project, a user and a token so that small ids
and names hit rows; a fuzzed call may revoke the tokens or demote the admin (`DELETE /tokens/1`, `PATCH
/users/admin`), so each example starts by putting the three callers back (`Fuzzed.restore`).

Bounded for the suite: a few examples per operation (positive and negative data, no coverage phase, no
stateful links), a fixed seed and no example database, so CI runs the same requests each time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.python import asgi  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from thresher.server import auth  # noqa: E402
from thresher.server.app import API_PREFIX, create_app  # noqa: E402
from thresher.server.clock import utcnow  # noqa: E402
from thresher.server.main import prepare  # noqa: E402
from thresher.server.settings import ServerSettings  # noqa: E402
from thresher.server.users import update_user  # noqa: E402
from thresher.wire.users import UserPatch  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict({"generation": {"database": "none", "with-security-parameters": False}})
#: Examples per operation. A deeper run by hand: `THRESHER_FUZZ_EXAMPLES=100 THRESHER_FUZZ_SEED=7`.
EXAMPLES = int(os.environ.get("THRESHER_FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("THRESHER_FUZZ_SEED")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
                suppress_health_check=list(HealthCheck))
#: The operations a caller without a token may call; every other answers 401 (rule 5).
OPEN = {"GET /api/v1/health", "POST /api/v1/login"}
#: The document's tags: one test each, so a failure says where and no test runs long. `jobs` last: its
#: fuzz deletes jobs, whose tasks and attempts the others' requests aim at.
TAGS = ["agent", "meta", "attempts", "tasks", "nodes", "templates", "studio", "people", "jobs"]

NODE = {"name": "n1", "cores": 4, "memory_mb": 4096, "instance_id": "fuzz"}


@dataclass
class Fuzzed:
    """The app, its data folder and the tokens each example calls it with."""

    app: Any
    data: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> Any:
        return self.app.state.ctx

    def _valid(self, kind: str) -> bool:
        caller = self.server.caller_for(self.tokens.get(kind, ""))
        return caller is not None and (kind != "admin" or caller.role == "admin")

    def restore(self) -> None:
        """Put back what a fuzzed call may have taken: the admin user (enabled, an admin), the first
        tokens (revoked ones are made again) and the node's own token (registered again)."""
        if self._valid("admin") and self._valid("enroll") and self._valid("node"):
            return
        with self.server.db.write() as conn:
            update_user(conn, auth.FIRST_ADMIN, UserPatch(role="admin", disabled=False), utcnow())
            auth.ensure_bootstrap_tokens(conn, self.data)
        self.server.forget_tokens()
        self.tokens.update({kind: (self.data / f"{kind}.token").read_text().strip() for kind in ("admin", "enroll")})
        if not self._valid("node"):
            self.tokens["node"] = self.call("POST", "/agent/register", "admin",
                                            json={**NODE, "replace": True})["token"]

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> Any:
        with asgi.get_client(self.app) as client:
            answer = client.request(method, API_PREFIX + path, headers={"Authorization": f"Bearer {self.tokens[who]}"},
                                    **kwargs)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json()


def _seed(fuzzed: Fuzzed) -> None:
    """Rows for small ids and plain names to hit: a node with a finished and a running attempt, jobs,
    a project with a folder and a pool, a limit, a service, a user with a token, an enrollment token."""
    call = fuzzed.call
    fuzzed.tokens["node"] = call("POST", "/agent/register", "enroll", json=NODE)["token"]
    layer = {"name": "render", "frames": "1-4", "args": {"command": ["echo", "{frame}"]}}
    for name in ("one", "two"):
        call("POST", "/jobs", "admin", json={"name": name, "project": "default", "layers": [layer]})
    call("POST", "/projects", "admin", json={"name": "show", "weight": 2})
    call("POST", "/projects/show/folders", "admin", json={"name": "seq1"})
    call("POST", "/limits", "admin", json={"name": "nuke", "max_total": 2})
    call("POST", "/services", "admin", json={"name": "comp", "defaults": {"retries": 1}})
    call("POST", "/users", "admin", json={"name": "ana", "role": "artist", "password": "ana-secret-1"})
    call("POST", "/enroll-tokens", "admin", json={"name": "room b"})
    work = call("POST", "/agent/work?wait=0", "node", json={})
    first, second = (a["attempt_id"] for a in work["assignments"][:2])
    call("POST", f"/agent/attempts/{first}/log", "node", json={"offset": 0, "data": "hello\n"})
    call("POST", "/agent/finish", "node", json={"reports": [
        {"attempt_id": first, "status": "succeeded", "exit_code": 0, "log_size": 6}]})
    call("POST", f"/agent/attempts/{second}/log", "node", json={"offset": 0, "data": "rendering\n"})


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data = tmp_path_factory.mktemp("schemathesis")
    settings = ServerSettings(work_wait_max_s=0.05, create_unknown_projects=True)
    app = create_app(prepare(None, data, settings))
    fuzzed = Fuzzed(app, data, {kind: (data / f"{kind}.token").read_text().strip() for kind in ("admin", "enroll")})
    try:
        _seed(fuzzed)
        yield fuzzed
    finally:
        asgi.shutdown_lifespans()
        fuzzed.server.db.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app, config=CONFIG,
                                          headers={"Authorization": f"Bearer {fuzzed.tokens['admin']}"})


def _operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


#: Path parameters of the seeded rows (`_seed`), so that requests reach past the lookups; `name` by the path.
KNOWN = {"job_id": 1, "task_id": 2, "attempt_id": 1, "ident": "n1", "node_name": "n1", "layer": "render",
         "folder": "seq1", "pool": "default", "user": "ana", "token_id": 3}
KNOWN_NAMES = {"projects": "show", "users": "ana", "services": "comp", "limits": "nuke", "pools": "default"}


def _known(operation: Any) -> dict[str, Any]:
    names = set(re.findall(r"\{(\w+)\}", operation.path))
    values = {**KNOWN, "name": KNOWN_NAMES.get(operation.path.split("/")[3], "show")}
    return {key: value for key, value in values.items() if key in names}


def _strategy(operation: Any) -> Any:
    """Valid requests, those aimed at the seeded rows, and invalid ones (an operation without inputs has none)."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    known = _known(operation)
    if known:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))
    try:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 - nothing to make invalid
        pass
    return st.one_of(strategies)


def _fuzz_test(operation: Any, fuzzed: Fuzzed, statuses: dict[tuple[str, str], set[int]]) -> Any:
    """The hypothesis test of one operation: each request sent as the admin, as the node and with no token."""

    @FUZZ
    @given(case=_strategy(operation))
    def fuzz(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        for who in ("admin", "node", "nobody"):
            fuzzed.restore()
            headers = {"Authorization": f"Bearer {fuzzed.tokens[who]}"} if who != "nobody" else {}
            try:
                answer = case.call_and_validate(headers=headers, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:
                raise AssertionError(f"as {who}: {exc}") from exc
            statuses.setdefault((operation.label, who), set()).add(answer.status_code)

    return seed(int(SEED))(fuzz) if SEED is not None else fuzz


@pytest.mark.parametrize("tag", TAGS)
def test_every_operation_answers_as_documented(api_schema: Any, fuzzed: Fuzzed, tag: str) -> None:
    failures: dict[str, str] = {}
    statuses: dict[tuple[str, str], set[int]] = {}
    operations = [o for o in _operations(api_schema) if tag in o.definition.raw.get("tags", [])]
    assert operations
    for operation in operations:
        try:
            _fuzz_test(operation, fuzzed, statuses)()
        except (Exception, BaseExceptionGroup) as exc:  # gathered: one run names every operation that fails
            failures[operation.label] = str(exc)[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # without a token: refused (a body that is not even valid may hear so first), never served
    anonymous = {label: codes for (label, who), codes in statuses.items() if who == "nobody" and label not in OPEN}
    assert all(codes <= {401, 422} for codes in anonymous.values()), anonymous
    served = {label for (label, who), codes in statuses.items() if who == "admin" and any(c < 300 for c in codes)}
    assert served, f"the admin was served by none of the {tag} operations: {statuses}"


def test_the_document_is_fuzzed_whole(api_schema: Any) -> None:
    """Every operation has one of the tags the fuzz goes through (a new tag joins TAGS)."""
    operations = _operations(api_schema)
    assert len(operations) > 80
    assert not [o.label for o in operations if not set(o.definition.raw.get("tags", [])) & set(TAGS)]


def test_what_the_fuzz_found_stays_fixed(fuzzed: Fuzzed) -> None:
    """Each answer the fuzz once got wrong, asked directly."""
    fuzzed.restore()
    admin = {"Authorization": f"Bearer {fuzzed.tokens['admin']}"}
    with asgi.get_client(fuzzed.app) as client:
        def ask(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
            answer = client.request(method, API_PREFIX + path, headers={**admin, **kwargs.pop("headers", {})},
                                    **kwargs)
            return answer.status_code, answer.json()

        # a body that is not UTF-8 was FastAPI's undocumented 400
        status, body = ask("POST", "/agent/heartbeat", data=b"\xff\xfe{}", headers={"Content-Type": "application/json"})
        assert status == 422 and body["errors"][0]["field"] == "(body)", body
        # a token that expired before its answer was made was a 500 (an assertion in the server)
        for path in ("/tokens", "/enroll-tokens"):
            status, body = ask("POST", path, json={"name": "brief", "expires_in_days": 1e-9})
            assert status == 201 and body["secret"] and body["expires_at"], body
        # a service's time had no zone (not an RFC 3339 date-time)
        status, body = ask("POST", "/services", json={"name": "zoned", "defaults": {"retries": 1}})
        assert status == 201 and body["created_at"].endswith("Z"), body
        status, body = ask("GET", "/services/zoned")
        assert status == 200 and body["created_at"].endswith("Z"), body
