"""People as records: users (one role each, a password hashed with argon2id), their personal tokens,
the password login that mints one, and projects' members. Every function runs in the caller's
transaction; after one that disables a user, changes a role or revokes a token the route clears the
token cache (`ServerContext.forget_tokens`) so that it takes effect at once in this process.

What each role may do is `model/permissions.py`; who owns a job is checked by `server/permits.py`.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

from thresher.model.permissions import Role
from thresher.server import auth, user_sessions
from thresher.server.auth import Caller
from thresher.server.db import dialects
from thresher.server.db.queries import people as q
from thresher.server.db.queries import tokens as tq
from thresher.server.errors import Conflict, NotFound
from thresher.wire.users import TokenCreated, TokenInfo, User, UserCreate, UserPatch

_hasher = PasswordHasher()  # argon2id with the library's current parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist or has no password, so that both take as long as
    a wrong password (the answer does not tell which names exist). Made on first use, not at import:
    one argon2 hash costs a server start (and every CLI or test process importing this) ~0.1-0.5 s."""
    return _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_ok(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, source=row.source, disabled=row.disabled,
                has_password=row.password_hash is not None, created_at=row.created_at)


def list_users(conn: Connection) -> list[User]:
    return [_user(r) for r in conn.execute(q.USERS)]


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(q.USER_BY_NAME, {"name": name}).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return row


def get_user(conn: Connection, name: str) -> User:
    return _user(_row(conn, name))


def create_user(conn: Connection, body: UserCreate, now: datetime) -> int:
    if conn.execute(q.USER_BY_NAME, {"name": body.name}).first() is not None:
        raise Conflict(f"user {body.name!r} exists already", [{"field": "name", "message": "taken"}])
    return int(conn.execute(q.INSERT_USER, {
        "name": body.name, "role": body.role, "source": "local", "disabled": False, "created_at": now,
        "password_hash": hash_password(body.password) if body.password else None}).scalar_one())


def ensure_user(conn: Connection, name: str, now: datetime) -> None:
    """A job's owner that is not a user yet becomes one (an artist without a password): a wrangler or
    admin submitted on their behalf."""
    conn.execute(dialects.pick(conn, q.INSERT_USER_IF_MISSING), {
        "name": name, "role": "artist", "source": "local", "disabled": False, "created_at": now,
        "password_hash": None})


def update_user(conn: Connection, name: str, body: UserPatch, now: datetime) -> None:
    """Change a role or the disabled flag; either change ends the user's dashboard sessions."""
    row = _row(conn, name)
    values = body.model_dump(exclude_none=True)
    if values:
        conn.execute(q.UPDATE_USER, {"user_id": row.id, **values})
    if body.disabled and not row.disabled:
        user_sessions.end_all(conn, row.id, now, "disabled")
    elif body.role is not None and body.role != row.role:
        user_sessions.end_all(conn, row.id, now, "role")


def set_password(conn: Connection, name: str, password: str, now: datetime, keep_session: int | None = None) -> None:
    """A new password; the user's dashboard sessions end (but `keep_session`, the caller's own). An LDAP
    user's password is the directory's: a local one would never be asked (`model/ldap_rule.py`)."""
    row = _row(conn, name)
    if row.source == "ldap":
        raise Conflict(f"{name}'s password is kept by the LDAP directory: change it there")
    conn.execute(q.UPDATE_USER, {"user_id": row.id, "password_hash": hash_password(password)})
    user_sessions.end_all(conn, row.id, now, "password", keep=keep_session)


# ---------------------------------------------------------------- tokens

def _token(row: Any) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, user=row.user_name, kind=row.kind, created_at=row.created_at,
                     expires_at=row.expires_at, read_only=row.read_only, revoked_at=row.revoked_at)


def create_personal_token(conn: Connection, user_id: int, name: str, expires_in_days: float | None,
                          read_only: bool, now: datetime, max_days: float) -> TokenCreated:
    days = min(expires_in_days or max_days, max_days)
    secret = auth.create_token(conn, "user", name, user_id=user_id, expires_at=now + timedelta(days=days),
                               read_only=read_only)
    row = conn.execute(tq.PERSON_TOKEN, {"token_id": auth.token_id(conn, secret)}).one()
    return TokenCreated(**_token(row).model_dump(), secret=secret)


def list_tokens(conn: Connection, caller: Caller, everyone: bool) -> list[TokenInfo]:
    """The caller's tokens; an admin asking for everyone's gets every person's token."""
    if everyone and caller.role == Role.ADMIN and not caller.read_only:
        return [_token(r) for r in conn.execute(tq.ALL_PERSON_TOKENS)]
    return [_token(r) for r in conn.execute(tq.USER_TOKENS, {"user_id": caller.user_id})]


def revoke_token(conn: Connection, caller: Caller, token_id: int, now: datetime) -> TokenInfo:
    """Revoke one of the caller's tokens (an admin: anyone's). Another's token is 404 to others, as if
    there were none."""
    row = conn.execute(tq.PERSON_TOKEN, {"token_id": token_id}).first()
    if row is None or (row.user_name != caller.name and caller.role != Role.ADMIN):
        raise NotFound(f"no token with id {token_id}")
    conn.execute(tq.REVOKE_TOKEN, {"token_id": token_id, "now": now})
    return _token(conn.execute(tq.PERSON_TOKEN, {"token_id": token_id}).one())


def check_password(conn: Connection, name: str, password: str) -> Any | None:
    """**The** password check, for every way a person logs in with a password: the API's `POST
    /login` (`thresher login`), the dashboard's login form and a self-service password change (its old
    password), all through `server/logins.py`, which adds the lockout. The user's row when `name` is an
    enabled user and `password` is theirs; else None, one answer for a wrong password, an unknown name,
    a user without a password and a disabled one (each taking as long as the others). Another source of
    passwords (a directory) belongs here, and nowhere else."""
    row = conn.execute(q.USER_BY_NAME, {"name": name}).first()
    if not password_ok(row.password_hash if row else None, password) or row is None or row.disabled:
        return None
    return row


# ---------------------------------------------------------------- projects' members

def members(conn: Connection, project: str) -> list[str]:
    return [r.name for r in conn.execute(q.MEMBERS, {"project": project})]


def project_exists(conn: Connection, project: str) -> None:
    _project_id(conn, project)


def _project_id(conn: Connection, project: str) -> int:
    found = conn.execute(q.PROJECT_ID, {"project": project}).scalar()
    if found is None:
        raise NotFound(f"no project {project!r}")
    return int(found)


def add_member(conn: Connection, project: str, user: str) -> None:
    project_id, user_id = _project_id(conn, project), _row(conn, user).id
    if conn.execute(q.IS_MEMBER, {"project_id": project_id, "user_id": user_id}).first() is None:
        conn.execute(q.ADD_MEMBER, {"project_id": project_id, "user_id": user_id})


def remove_member(conn: Connection, project: str, user: str) -> None:
    project_id, user_id = _project_id(conn, project), _row(conn, user).id
    if conn.execute(q.REMOVE_MEMBER, {"project_id": project_id, "user_id": user_id}).rowcount == 0:
        raise NotFound(f"{user} is not a member of project {project}")
