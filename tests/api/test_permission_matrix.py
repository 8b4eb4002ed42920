"""The permission matrix, from the live server's OpenAPI document: every operation, called by every
kind of caller (no credential, a garbage token, a viewer, an artist on their own job and on another's,
a wrangler, an admin, a node's credential), is let through or refused as `model.permissions` says for
the permission the operation declares (`x-permission`). An operation that declares none fails.

Only 401 and 403 count as a refusal: a call let through may still answer 404 or 422 (the paths name
rows that do not exist, the bodies are empty). One farm, one pass, SQLite.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import httpx

from thresher.model.permissions import decide

API = "/api/v1"
# Callers in the order they run: every refusal of the artist on bob's job is checked before anyone
# allowed to may have killed or deleted that job; `logout` is each caller's last call.
CALLERS = ["anonymous", "garbage", "node", "viewer", "artist_other", "artist_own", "wrangler", "admin"]
WHO = {"anonymous": "anonymous", "garbage": "anonymous", "node": "node", "viewer": "viewer",
       "artist_other": "artist", "artist_own": "artist", "wrangler": "wrangler", "admin": "admin"}
LAST = ("logout", "say_goodbye")
# Names in paths that match nothing: the call, if let through, answers 404 (or 422) and changes nothing.
NOWHERE = {"name": "nothing", "ident": "nothing", "folder": "nothing", "pool": "nothing", "node_name": "nothing",
           "user": "nobody", "token_id": "999999", "layer": "render", "action": "pause"}

# What some operations must declare, independently of the routes' own declarations.
SPOT_CHECKS = {"health": "public", "login": "public", "whoami": "self", "heartbeat": "node.agent",
               "register_node": "node.register", "list_jobs": "job.read", "submit_job": "job.submit",
               "kill_job": "job.kill", "kill_task": "task.kill", "set_urgent": "job.urgent",
               "drain_node": "node.steer", "create_project": "project.manage", "create_limit": "limit.manage",
               "create_service": "service.manage", "set_node_pool": "pool.manage", "create_user": "user.manage",
               "create_token": "token.own", "logout": "token.logout"}


def _spec(name: str, owner: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "project": "default", "layers": [
        {"name": "render", "frames": "1-2", "args": {"command": ["true"]}}]}
    if owner:
        spec["owner"] = owner
    return spec


def test_every_operation_lets_through_exactly_whom_its_permission_names(make_farm: Callable[..., Any]) -> None:
    farm = make_farm()
    base = farm.server_url
    admin_headers = {"Authorization": f"Bearer {farm.admin_token}"}
    with httpx.Client(base_url=base, timeout=30.0) as http:
        def post(path: str, body: Any, token: str | None = None, status: int = 200) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else admin_headers
            answer = http.post(API + path, json=body, headers=headers)
            assert answer.status_code == status, (path, answer.status_code, answer.text)
            return answer.json()

        for name, role in (("vic", "viewer"), ("alice", "artist"), ("bob", "artist"), ("wendy", "wrangler")):
            post("/users", {"name": name, "role": role, "password": f"{name}-password"}, status=201)

        def login(name: str) -> str:
            return str(post("/login", {"user": name, "password": f"{name}-password"}, token="-")["secret"])

        node = post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 4096, "instance_id": "one"},
                    token=farm.enroll_token)["token"]
        own = post("/jobs", _spec("own"), token=login("alice"), status=201)["id"]
        other = post("/jobs", _spec("other"), token=login("bob"), status=201)["id"]
        tasks = {job: http.get(f"{API}/jobs/{job}/tasks", headers=admin_headers).json()["items"][0]["id"]
                 for job in (own, other)}
        (assignment, *_) = post("/agent/work?wait=0", {}, token=node)["assignments"]
        tokens = {"anonymous": None, "garbage": "thr_user_garbage", "node": node, "viewer": login("vic"),
                  "artist_other": login("alice"), "artist_own": login("alice"), "wrangler": login("wendy"),
                  "admin": post("/tokens", {"name": "matrix"}, status=201)["secret"]}

        document = http.get("/openapi.json", headers=admin_headers).json()
        assert http.get("/openapi.json").status_code == 401  # behind login (public_api_docs is off)
        operations = [(method, path, op) for path, item in document["paths"].items()
                      for method, op in item.items()]
        undeclared = [op["operationId"] for _, _, op in operations if "x-permission" not in op]
        assert not undeclared, f"operations without a declared permission: {undeclared}"
        declared = {op["operationId"]: op["x-permission"] for _, _, op in operations}
        assert {k: declared[k] for k in SPOT_CHECKS} == SPOT_CHECKS  # a few, spelled by hand
        operations.sort(key=lambda o: o[2]["operationId"] in LAST)

        wrong: list[str] = []
        for caller in CALLERS:
            job = other if caller == "artist_other" else own
            values = {**NOWHERE, "job_id": str(job), "task_id": str(tasks[job]),
                      "attempt_id": str(assignment["attempt_id"])}
            headers = {"Authorization": f"Bearer {tokens[caller]}"} if tokens[caller] else {}
            for method, path, op in operations:
                url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)  # type: ignore[misc]
                params = {"wait": "0"} if op["operationId"] == "ask_for_work" else None
                body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
                answer = http.request(method.upper(), url, headers=headers, json=body, params=params)
                owner = (caller == "artist_own") if "job_id" in path or "task_id" in path else None
                allowed = decide(WHO[caller], op["x-permission"], owner) is None
                refused = answer.status_code in (401, 403)
                if allowed == refused:
                    wrong.append(f"{caller} {method.upper()} {path} ({op['x-permission']}): "
                                 f"{answer.status_code} {answer.text[:120]}")
        assert not wrong, "\n".join(wrong)

        kill = http.post(f"{API}/jobs/{other}/kill", headers={"Authorization": f"Bearer {login('alice')}"})
        assert kill.status_code == 403
        assert kill.json()["detail"] == f"artist alice may not kill job {other} of bob"
