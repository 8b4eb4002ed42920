"""Health (no token needed, for load balancers and `thresher up`) and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from thresher import __version__
from thresher.server.auth import Caller
from thresher.server.context import ServerContext, ctx, current_caller
from thresher.server.permits import permit
from thresher.wire.common import error_responses
from thresher.wire.meta import Health, WhoAmI

router = APIRouter(tags=["meta"])


@router.get("/health", summary="Is the server up (no token needed)", operation_id="health", dependencies=[permit("public")], response_model=Health,
            openapi_extra={"security": []})
def health(server: ServerContext = Depends(ctx)) -> Health:
    return Health(status="ok", version=__version__, leader=server.leader.leading)


@router.get("/whoami", summary="The token's kind and name, and a person's role", operation_id="whoami", dependencies=[permit("self")], response_model=WhoAmI,
            responses=error_responses(401))
def whoami(caller: Caller = Depends(current_caller)) -> WhoAmI:
    return WhoAmI(kind=caller.kind, name=caller.name, node_id=caller.node_id, role=caller.role,
                  read_only=caller.read_only)
