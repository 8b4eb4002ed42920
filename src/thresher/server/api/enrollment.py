"""Routes of enrollment tokens (`server/enrollment.py`), admins only: make one (its secret shown this
once), list them (uses, last use, state; never a secret), revoke one (at once: the token cache is
cleared). The nodes a token enrolled keep their own credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from thresher.server import enrollment
from thresher.server.clock import utcnow
from thresher.server.context import ctx
from thresher.server.permits import permit
from thresher.wire.common import Page, error_responses
from thresher.wire.enrollment import EnrollToken, EnrollTokenCreate, EnrollTokenCreated

router = APIRouter(tags=["nodes"])

_AUTH = (401, 403, 422)
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/enroll-tokens", status_code=201, summary="Make an enrollment token for agents (its secret is "
             "shown this once)", operation_id="create_enroll_token", response_model=EnrollTokenCreated,
             responses=error_responses(*_AUTH), dependencies=[permit("enroll.manage")])
def create_enroll_token(request: Request, body: EnrollTokenCreate) -> EnrollTokenCreated:
    with ctx(request).db.write() as conn:
        return enrollment.create(conn, body, utcnow())


@router.get("/enroll-tokens", summary="List enrollment tokens: uses, last use, state (never a secret)",
            operation_id="list_enroll_tokens", response_model=Page[EnrollToken], responses=error_responses(*_AUTH),
            dependencies=[permit("enroll.manage")])
def list_enroll_tokens(request: Request) -> Page[EnrollToken]:
    with ctx(request).db.read() as conn:
        items = enrollment.list_tokens(conn, utcnow())
    return Page[EnrollToken](items=items, total=len(items))


@router.delete("/enroll-tokens/{token_id}", summary="Revoke an enrollment token: at once (its nodes keep their "
               "own credentials)", operation_id="revoke_enroll_token", response_model=EnrollToken,
               responses=error_responses(*_AUTH, 404), dependencies=[permit("enroll.manage")])
def revoke_enroll_token(request: Request, token_id: TokenId) -> EnrollToken:
    server = ctx(request)
    with server.db.write() as conn:
        answer = enrollment.revoke(conn, token_id, utcnow())
    server.forget_tokens()
    return answer
