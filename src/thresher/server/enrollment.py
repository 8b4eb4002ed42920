"""Enrollment tokens as records: what an admin makes, lists and revokes (`api/enrollment.py`), and the
use a registration makes of one (`consume`, from `nodes.register`, in its transaction). The rule
(states, refusals, pools) is `model/enrollment.py`. The token the server writes at first start for
local agents (`auth.ensure_bootstrap_tokens`, `enroll.token`) is one of them: reusable, no pool."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from thresher.model import enrollment
from thresher.server import auth, studio
from thresher.server.auth import Caller
from thresher.server.db.queries import tokens as q
from thresher.server.errors import NotFound, Unauthorized
from thresher.wire.enrollment import EnrollToken, EnrollTokenCreate, EnrollTokenCreated


def _token(row: Any, now: datetime) -> EnrollToken:
    return EnrollToken(id=row.id, name=row.name, one_time=row.max_uses == 1, pool=row.pool,
                       state=enrollment.state(auth.enroll_token(row), now), used_count=int(row.used_count or 0),
                       last_used_at=row.last_used_at, created_at=row.created_at, expires_at=row.expires_at,
                       revoked_at=row.revoked_at)


def create(conn: Connection, body: EnrollTokenCreate, now: datetime) -> EnrollTokenCreated:
    """A new enrollment token; its pool is made now if new (as an agent's `--pool` would)."""
    if body.pool is not None:
        studio.ensure_pool(conn, body.pool)
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    secret = auth.create_token(conn, "enroll", body.name, expires_at=expires, max_uses=1 if body.one_time else None,
                               pool=body.pool)
    row = conn.execute(q.ENROLL_TOKEN, {"token_id": auth.token_id(conn, secret)}).one()
    return EnrollTokenCreated(**_token(row, now).model_dump(), secret=secret)


def list_tokens(conn: Connection, now: datetime) -> list[EnrollToken]:
    return [_token(r, now) for r in conn.execute(q.ENROLL_TOKENS)]


def revoke(conn: Connection, token_id: int, now: datetime) -> EnrollToken:
    """Revoke an enrollment token (kept, listed as revoked); the nodes it enrolled keep their own
    credentials. Revoking one already revoked changes nothing."""
    if conn.execute(q.ENROLL_TOKEN, {"token_id": token_id}).first() is None:
        raise NotFound(f"no enrollment token with id {token_id}")
    conn.execute(q.REVOKE_TOKEN, {"token_id": token_id, "now": now})
    return _token(conn.execute(q.ENROLL_TOKEN, {"token_id": token_id}).one(), now)


def consume(conn: Connection, caller: Caller, now: datetime, *, reissue: bool = False) -> None:
    """One registration's use of the caller's enrollment token, once the node's name was judged, in the
    registration's transaction (a later failure rolls it back). Two registrations racing for a one-time
    token's one use: the compare-and-set lets exactly one through (PostgreSQL: the second waits on the
    row, then finds no use left; SQLite: writes are serial); the other gets 401 with the reason.

    `reissue`: the agent that this token enrolled asks again for the credential whose answer it lost
    (`model/node_claim.py`, `REISSUE`): no new use, and a one-time token it used up still serves it."""
    row = conn.execute(q.ENROLL_TOKEN, {"token_id": caller.token_id}).first()
    if row is None:
        raise Unauthorized("unknown enrollment token")
    reason = enrollment.refusal(auth.enroll_token(row), now, reissue=reissue)
    if reason is None and reissue:
        return
    if reason is None and conn.execute(q.USE_ENROLL_TOKEN, {"token_id": caller.token_id, "now": now}).rowcount != 1:
        row = conn.execute(q.ENROLL_TOKEN, {"token_id": caller.token_id}).one()
        reason = enrollment.refusal(auth.enroll_token(row), now) or "enrollment token used by another registration"
    if reason is not None:
        raise Unauthorized(reason)
