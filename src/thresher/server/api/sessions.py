"""Routes of logins and dashboard sessions (`server/logins.py`, `server/user_sessions.py`): an admin
lists a user's sessions and lifts a lockout; a person ends all their own sessions ("log out
everywhere"; an admin: anyone's) and changes their own password (giving the old one, which counts
towards the lockout like any password login). Another person's name is 404 to a non-admin, as if
there were no such user."""

from __future__ import annotations

from fastapi import APIRouter, Request

from thresher.model.permissions import Role
from thresher.server import logins, user_sessions, users
from thresher.server.addresses import client_address
from thresher.server.api.users import UserPath
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.context import ctx
from thresher.server.errors import BadInput, NotFound, Unauthorized
from thresher.server.permits import permit
from thresher.wire.common import Page, error_responses
from thresher.wire.users import OwnPasswordBody, SessionInfo, SessionsEnded, User

router = APIRouter(tags=["people"])

_AUTH = (401, 403, 422)


def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


@router.get("/users/{name}/sessions", summary="A user's dashboard sessions, the newest first (ended ones too)",
            operation_id="list_sessions", response_model=Page[SessionInfo], responses=error_responses(*_AUTH, 404),
            dependencies=[permit("user.manage")])
def list_sessions(request: Request, name: UserPath) -> Page[SessionInfo]:
    with ctx(request).db.read() as conn:
        items = user_sessions.list_sessions(conn, users.get_user(conn, name).id)
    return Page[SessionInfo](items=items, total=len(items))


@router.post("/users/{name}/sessions/end", summary="Log out everywhere: end every dashboard session of a user "
             "(yours; an admin: anyone's), at once", operation_id="end_sessions", response_model=SessionsEnded,
             responses=error_responses(*_AUTH, 404), dependencies=[permit("session.end")])
def end_sessions(request: Request, name: UserPath) -> SessionsEnded:
    caller = _caller(request)
    if name != caller.name and caller.role != Role.ADMIN:
        raise NotFound(f"no user {name!r}")
    with ctx(request).db.write() as conn:
        ended = user_sessions.end_all(conn, users.get_user(conn, name).id, utcnow(), "everywhere")
    return SessionsEnded(user=name, ended=ended)


@router.post("/users/{name}/unlock", summary="Lift the lockout of a user name that failed to log in too often",
             operation_id="unlock_user", response_model=User, responses=error_responses(*_AUTH, 404),
             dependencies=[permit("user.manage")])
def unlock_user(request: Request, name: UserPath) -> User:
    server = ctx(request)
    with server.db.write() as conn:
        user = users.get_user(conn, name)
        logins.unlock(conn, name)
        return logins.standing(conn, [user], server.settings)[0]


@router.put("/password", summary="Change your own password (the old one is asked; your other dashboard "
            "sessions end)", operation_id="change_own_password", response_model=User,
            responses=error_responses(*_AUTH, 409, 429, 503), dependencies=[permit("password.own")])
def change_own_password(request: Request, body: OwnPasswordBody) -> User:
    server, caller = ctx(request), _caller(request)
    try:
        logins.password_login(server.db, server.settings, caller.name, body.old_password, client_address(request))
    except Unauthorized:
        raise BadInput("the old password is wrong", [{"field": "old_password", "message": "wrong password"}]) from None
    with server.db.write() as conn:
        users.set_password(conn, caller.name, body.password, utcnow(), keep_session=caller.session_id)
        return users.get_user(conn, caller.name)
