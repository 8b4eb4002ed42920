"""Health (no token needed, for load balancers and `thresher up`) and who-am-I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from thresher import __version__
from thresher.server.auth import Caller
from thresher.server.context import current_caller

router = APIRouter()


@router.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/whoami")
def whoami(caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    return {"kind": caller.kind, "name": caller.name, "node_id": caller.node_id}
