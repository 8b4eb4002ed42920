"""The permission every route declares: `dependencies=[permit("job.kill")]`.

`permit(name)` is a FastAPI dependency that lets the call through when `model/permissions.decide`
allows the caller (401 without a credential, 403 with the reason otherwise). For a permission on one
job (class `own`) an artist's call reads the job's owner first (by `job_id` or `task_id` in the path):
"artist alice may not kill job 12 of bob". Wranglers and admins never pay that read.

`mark(router)` writes each route's permission into its OpenAPI operation as `x-permission`, so that a
test (tests/api/test_permission_matrix.py) reads from the live server's document what every operation
needs, and an operation that declares nothing fails it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from thresher.model.permissions import PERMISSIONS, decide, needs_owner, owner_refusal
from thresher.model.spec import MAX_ID
from thresher.server.auth import Caller
from thresher.server.context import ctx, current_caller
from thresher.server.db.queries import people as q
from thresher.server.errors import Forbidden

OWNER_QUERIES = {"job_id": q.JOB_OWNER, "task_id": q.TASK_JOB_OWNER}


def _refuse(caller: Caller, name: str) -> None:
    refusal = decide(caller.who, name, read_only=caller.read_only)
    if refusal is not None:
        raise Forbidden(refusal.reason)


def _owner(request: Request, key: str, value: int) -> tuple[int, str] | None:
    with ctx(request).db.read() as conn:
        row = conn.execute(OWNER_QUERIES[key], {"id": value}).first()
    return (row.job_id, row.owner) if row else None


def _public() -> Callable[..., Any]:
    async def check() -> None:
        return None
    return check


def _plain(name: str) -> Callable[..., Any]:
    async def check(caller: Caller = Depends(current_caller)) -> Caller:
        _refuse(caller, name)
        return caller
    return check


def _owned(name: str) -> Callable[..., Any]:
    key = "task_id" if name.startswith("task.") else "job_id"

    async def check(request: Request, caller: Caller = Depends(current_caller)) -> Caller:
        _refuse(caller, name)
        if needs_owner(caller.who, name, read_only=caller.read_only):
            raw = str(request.path_params.get(key, ""))
            value = int(raw) if raw.isdigit() and len(raw) < 12 else 0
            found = await run_in_threadpool(_owner, request, key, value) if 1 <= value <= MAX_ID else None
            if found is not None and found[1] != caller.name:  # no such job: the route answers 404
                raise Forbidden(owner_refusal(str(caller.role), caller.name, name, found[0], found[1]))
        return caller
    return check


def permit(name: str) -> Any:
    """The dependency for a route that needs permission `name` (a key of `model.permissions.PERMISSIONS`)."""
    perm = PERMISSIONS[name]  # a misspelt name fails at import
    check = _public() if perm.cls == "public" else _owned(name) if perm.cls == "own" else _plain(name)
    check.permission = name  # type: ignore[attr-defined]
    return Depends(check)


def permission_of(dependant: Dependant) -> str | None:
    """The permission a route's dependencies declare (the nearest one), or None."""
    queue = deque(dependant.dependencies)
    while queue:
        dep = queue.popleft()
        found = getattr(dep.call, "permission", None)
        if isinstance(found, str):
            return found
        queue.extend(dep.dependencies)
    return None


def mark(router: APIRouter) -> None:
    """Write each route's permission into its operation (`x-permission`) before the app includes it."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            name = permission_of(route.dependant)
            if name is not None:
                route.openapi_extra = {**(route.openapi_extra or {}), "x-permission": name}
