"""Bearer tokens: created with high entropy, stored only as SHA-256 digests.

Four kinds: `admin` (the first admin's token the server writes at first start), `user` (a person's
personal token, `server/users.py`), `enroll` (may only register new nodes) and `node` (one agent's own
credential: it can act only for that node). A person's token (admin or user) belongs to a user and
acts with the user's role (a read-only one as a viewer); a token of a disabled user, a revoked one and
an expired one are not accepted. What each may do is `model/permissions.py`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from thresher.model import enrollment
from thresher.server.clock import utcnow
from thresher.server.db.queries import tokens as q

FIRST_ADMIN = "admin"  # the user the first admin token belongs to (migration 0008 makes it too)
PERSON_KINDS = ("admin", "user")


@dataclass(frozen=True)
class Caller:
    kind: str                         # the token's kind: admin | user | enroll | node
    name: str                         # a person's user name; else the token's name
    node_id: int | None = None
    user_id: int | None = None
    role: str | None = None           # a person's role (model/permissions.Role)
    read_only: bool = False
    token_id: int | None = None
    expires_at: datetime | None = None
    session_id: int | None = None     # a dashboard session's row (server/dashboard/session.py)
    pool: str | None = None           # an enroll token's pool; a node's: the pool a token enrolled it into

    @property
    def who(self) -> str:
        """What `model.permissions.decide` judges: the person's role, or the credential's kind."""
        if self.role is not None:
            return self.role
        return self.kind if self.kind in ("node", "enroll") else "anonymous"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> str:
    return f"thr_{kind}_{secrets.token_urlsafe(32)}"


def create_token(conn: Connection, kind: str, name: str, node_id: int | None = None, *, user_id: int | None = None,
                 expires_at: datetime | None = None, read_only: bool = False, max_uses: int | None = None,
                 pool: str | None = None) -> str:
    secret = new_secret(kind)
    conn.execute(q.INSERT_TOKEN, {"digest": digest(secret), "kind": kind, "name": name, "node_id": node_id,
                                  "created_at": utcnow(), "user_id": user_id, "expires_at": expires_at,
                                  "read_only": read_only, "max_uses": max_uses, "pool": pool})
    return secret


def token_id(conn: Connection, secret: str) -> int:
    """The id of a token just made, whatever it is now: one asked to expire at once (a test's 0.2 s) has
    expired by the time its answer is made, and is still the token made."""
    return int(conn.execute(q.TOKEN_BY_DIGEST, {"digest": digest(secret)}).one().id)


def caller_from_row(row: Any, now: datetime) -> Caller | None:
    """The caller a token row (`queries/tokens.TOKEN_BY_DIGEST`'s columns) stands for, or None when it
    is revoked, expired, or its user disabled (or gone)."""
    if row.revoked_at is not None or (row.expires_at is not None and _aware(row.expires_at) <= now):
        return None
    if row.kind in PERSON_KINDS:
        if row.user_id is None or row.user_name is None or row.disabled:
            return None
        return Caller(row.kind, row.user_name, None, row.user_id, row.role, bool(row.read_only), row.id,
                      row.expires_at and _aware(row.expires_at))
    return Caller(row.kind, row.name, row.node_id, token_id=row.id,
                  expires_at=row.expires_at and _aware(row.expires_at), pool=row.pool)


def enroll_token(row: Any) -> enrollment.EnrollToken:
    """What `model/enrollment.py` weighs of a token row."""
    return enrollment.EnrollToken(row.name, row.revoked_at and _aware(row.revoked_at),
                                  row.expires_at and _aware(row.expires_at), row.max_uses, int(row.used_count or 0))


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC)."""
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def lookup(conn: Connection, secret: str) -> Caller | None:
    row = conn.execute(q.TOKEN_BY_DIGEST, {"digest": digest(secret)}).first()
    return caller_from_row(row, utcnow()) if row else None


def refusal(conn: Connection, secret: str) -> str:
    """Why a token is not accepted (the 401's detail): an enrollment token says what happened to it (the
    agent logs it); any other keeps the one answer."""
    row = conn.execute(q.TOKEN_BY_DIGEST, {"digest": digest(secret)}).first()
    if row is not None and row.kind == "enroll":
        reason = enrollment.refusal(enroll_token(row), utcnow())
        if reason:
            return reason
    return "unknown, revoked or expired token (or its user is disabled)"


def first_admin_id(conn: Connection) -> int:
    """The id of the first admin user, whom the first admin token belongs to. Migration 0008 makes it;
    made here only if it is missing."""
    found = conn.execute(q.USER_ID_BY_NAME, {"name": FIRST_ADMIN}).scalar()
    if found is None:
        found = conn.execute(q.INSERT_USER, {
            "name": FIRST_ADMIN, "role": "admin", "password_hash": None, "source": "local", "disabled": False,
            "created_at": utcnow()}).scalar_one()
    return int(found)


def ensure_bootstrap_tokens(conn: Connection, data_dir: Path) -> dict[str, Path]:
    """On first start create an admin and an enrollment token and save them (mode 0600) in data_dir.

    A token file whose token is no longer known to this database (a new database, same folder) is
    replaced, so the files always hold working credentials.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("admin", "enroll"):
        path = data_dir / f"{kind}.token"
        current = path.read_text().strip() if path.exists() else ""
        if not current or lookup(conn, current) is None:
            secret = create_token(conn, kind, "admin" if kind == "admin" else "enrollment",
                                  user_id=first_admin_id(conn) if kind == "admin" else None)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secret + "\n")
            tmp.chmod(0o600)
            tmp.replace(path)
        paths[kind] = path
    return paths
