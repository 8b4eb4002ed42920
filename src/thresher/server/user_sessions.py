"""People's dashboard sessions as records (the cookie and its check are `dashboard/session.py`): an
admin's listing of a user's sessions, and ending them all at once ("log out everywhere", a user
disabled or given another role, a password set). Every function runs in the caller's transaction;
since every session check reads its row, an ended session is over at once in every server process.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from thresher.server.db.queries import sessions as q
from thresher.wire.users import SessionInfo

LISTED = 200  # a user's newest sessions an admin sees


def _info(row: Any) -> SessionInfo:
    return SessionInfo(id=row.id, user=row.user_name, created_at=row.created_at, last_seen=row.last_seen,
                       address=row.address, user_agent=row.user_agent, with_token=row.token_id is not None,
                       ended_at=row.ended_at, end_reason=row.end_reason)


def list_sessions(conn: Connection, user_id: int) -> list[SessionInfo]:
    """A user's sessions, the newest first (ended ones too, with why)."""
    return [_info(r) for r in conn.execute(q.USER_SESSIONS, {"user_id": user_id, "limit": LISTED})]


def end_all(conn: Connection, user_id: int, now: datetime, reason: str, keep: int | None = None) -> int:
    """End every open session of a user (but `keep`, the caller's own); how many were open."""
    return int(conn.execute(q.END_USER_SESSIONS, {"owner_id": user_id, "now": now, "reason": reason,
                                                  "keep": keep or 0}).rowcount)


def open_counts(conn: Connection, now: datetime, idle_s: float) -> dict[int, int]:
    """How many sessions each user has open: not ended, used within `idle_s` (the rows' `last_seen`
    lags use by up to `session.TOUCH_S`)."""
    since = now - timedelta(seconds=idle_s)
    return {int(r.user_id): int(r.n) for r in conn.execute(q.OPEN_SESSION_COUNTS, {"since": since})}
