"""Routes of people (`server/users.py`): users (admins), personal tokens (everyone their own; an admin
lists and revokes anyone's), the password login that mints a token, logging out, projects' members.
A change that can end someone's access (a user disabled or given another role, a token revoked)
clears the token cache, so that it takes effect at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from thresher.server import logins, users
from thresher.server.addresses import client_address
from thresher.server.api.people import NodeIdent
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.errors import BadInput
from thresher.server.permits import permit
from thresher.wire.common import Page, error_responses
from thresher.wire.users import (
    USER_PATTERN,
    LoginBody,
    MemberBody,
    Members,
    PasswordBody,
    TokenCreate,
    TokenCreated,
    TokenInfo,
    User,
    UserCreate,
    UserPatch,
)

router = APIRouter(tags=["people"])

_AUTH = (401, 403, 422)
UserPath = Annotated[str, Path(pattern=USER_PATTERN)]
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


def _changed(server: ServerContext) -> None:
    """Someone's access may have ended: forget every token looked up (this process at once)."""
    server.forget_tokens()


# ---------------------------------------------------------------- users

@router.get("/users", summary="List users", operation_id="list_users", response_model=Page[User],
            responses=error_responses(*_AUTH), dependencies=[permit("user.manage")])
def list_users(request: Request) -> Page[User]:
    server = ctx(request)
    with server.db.read() as conn:
        items = logins.standing(conn, users.list_users(conn), server.settings)
    return Page[User](items=items, total=len(items))


@router.post("/users", status_code=201, summary="Add a user", operation_id="create_user", response_model=User,
             responses=error_responses(*_AUTH, 409), dependencies=[permit("user.manage")])
def create_user(request: Request, body: UserCreate) -> User:
    with ctx(request).db.write() as conn:
        users.create_user(conn, body, utcnow())
        return users.get_user(conn, body.name)


@router.get("/users/{name}", summary="One user", operation_id="get_user", response_model=User,
            responses=error_responses(*_AUTH, 404), dependencies=[permit("user.manage")])
def get_user(request: Request, name: UserPath) -> User:
    server = ctx(request)
    with server.db.read() as conn:
        return logins.standing(conn, [users.get_user(conn, name)], server.settings)[0]


@router.patch("/users/{name}", summary="Change a user's role, or disable (enable) them: at once",
              operation_id="update_user", response_model=User, responses=error_responses(*_AUTH, 404),
              dependencies=[permit("user.manage")])
def update_user(request: Request, name: UserPath, body: UserPatch) -> User:
    server = ctx(request)
    if name == _caller(request).name and (body.disabled or (body.role and body.role != "admin")):
        raise BadInput("an admin cannot lock themselves out", [{"field": "role" if body.role else "disabled",
                                                                "message": "ask another admin"}])
    with server.db.write() as conn:
        users.update_user(conn, name, body, utcnow())
        answer = users.get_user(conn, name)
    _changed(server)
    return answer


@router.put("/users/{name}/password", summary="Set a user's password (their dashboard sessions end)", operation_id="set_password",
            response_model=User, responses=error_responses(*_AUTH, 404, 409), dependencies=[permit("user.manage")])
def set_password(request: Request, name: UserPath, body: PasswordBody) -> User:
    with ctx(request).db.write() as conn:
        users.set_password(conn, name, body.password, utcnow(), keep_session=_caller(request).session_id)
        return users.get_user(conn, name)


# ---------------------------------------------------------------- tokens

@router.post("/tokens", status_code=201, summary="Make a personal token (its secret is shown this once)",
             operation_id="create_token", response_model=TokenCreated, responses=error_responses(*_AUTH),
             dependencies=[permit("token.own")])
def create_token(request: Request, body: TokenCreate) -> TokenCreated:
    server, caller = ctx(request), _caller(request)
    with server.db.write() as conn:
        return users.create_personal_token(conn, caller.user_id or 0, body.name, body.expires_in_days,
                                           body.read_only, utcnow(), server.settings.token_max_days)


@router.get("/tokens", summary="List your tokens (an admin: everyone's, with all=true)", operation_id="list_tokens",
            response_model=Page[TokenInfo], responses=error_responses(*_AUTH), dependencies=[permit("token.read")])
def list_tokens(request: Request, all: bool = Query(False, description="an admin: every person's tokens")
                ) -> Page[TokenInfo]:
    with ctx(request).db.read() as conn:
        items = users.list_tokens(conn, _caller(request), all)
    return Page[TokenInfo](items=items, total=len(items))


@router.delete("/tokens/{token_id}", summary="Revoke a token (yours; an admin: anyone's): at once",
               operation_id="revoke_token", response_model=TokenInfo, responses=error_responses(*_AUTH, 404),
               dependencies=[permit("token.own")])
def revoke_token(request: Request, token_id: TokenId) -> TokenInfo:
    server = ctx(request)
    with server.db.write() as conn:
        answer = users.revoke_token(conn, _caller(request), token_id, utcnow())
    _changed(server)
    return answer


@router.post("/login", summary="Log in with user name and password: a personal token (shown this once)",
             operation_id="login", response_model=TokenCreated, responses=error_responses(401, 403, 422, 429, 503),
             dependencies=[permit("public")], openapi_extra={"security": []})
def login(request: Request, body: LoginBody) -> TokenCreated:
    """Failed logins lock the user name and the address for a while (`server/logins.py`): 429."""
    server = ctx(request)
    server = ctx(request)
    row = logins.password_login(server.db, server.settings, body.user, body.password, client_address(request))
    if row.source == "ldap":
        _changed(server)  # their role may have changed with their groups
    with server.db.write() as conn:
        return users.create_personal_token(conn, row.id, body.token_name, body.expires_in_days, False, utcnow(),
                                           server.settings.token_max_days)


@router.post("/logout", summary="Revoke the token this call is made with", operation_id="logout",
             response_model=TokenInfo, responses=error_responses(*_AUTH, 404), dependencies=[permit("token.logout")])
def logout(request: Request) -> TokenInfo:
    server, caller = ctx(request), _caller(request)
    with server.db.write() as conn:
        answer = users.revoke_token(conn, caller, caller.token_id or 0, utcnow())
    _changed(server)
    return answer


# ---------------------------------------------------------------- projects' members

def _members(server: ServerContext, project: str) -> Members:
    with server.db.read() as conn:
        users.project_exists(conn, project)
        return Members(project=project, members=users.members(conn, project))


@router.get("/projects/{name}/members", summary="A project's members (none: anyone who may submit)",
            operation_id="list_members", tags=["studio"], response_model=Members,
            responses=error_responses(*_AUTH, 404), dependencies=[permit("studio.read")])
def list_members(request: Request, name: NodeIdent) -> Members:
    return _members(ctx(request), name)


@router.post("/projects/{name}/members", summary="Add a member to a project (then only members, wranglers "
             "and admins submit to it)", operation_id="add_member", tags=["studio"], response_model=Members,
             responses=error_responses(*_AUTH, 404), dependencies=[permit("project.manage")])
def add_member(request: Request, name: NodeIdent, body: MemberBody) -> Members:
    server = ctx(request)
    with server.db.write() as conn:
        users.add_member(conn, name, body.user)
    return _members(server, name)


@router.delete("/projects/{name}/members/{user}", summary="Remove a member from a project",
               operation_id="remove_member", tags=["studio"], response_model=Members,
               responses=error_responses(*_AUTH, 404), dependencies=[permit("project.manage")])
def remove_member(request: Request, name: NodeIdent, user: UserPath) -> Members:
    server = ctx(request)
    with server.db.write() as conn:
        users.remove_member(conn, name, user)
    return _members(server, name)
