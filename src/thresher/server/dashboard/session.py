"""Dashboard sessions: a signed cookie that names a session row kept in the database, plus a CSRF secret.

A login (a password, a person's token, or a one-time link) makes a row of `sessions` (its user,
when, the last use, the address and user agent, and the token when logged in with one); the cookie is
`v3.<session id>.<issued>.<seen>.<csrf>.<signature>`: HMAC-SHA256 with the server secret
(dashboard/secret.py, a file in the data folder, never the database) over those fields and the row's
random `key`. So the browser never holds a token, a database backup is no key to a session, a reused
row id is no session, and rotating the server secret ends every session at once.

Why a table of its own rather than a token row of a kind "session": a session has what a token has
not (last use, address, user agent, why it ended), a login with a token must end when that token is
revoked (the row names it), and listing a person's tokens stays a list of tokens. Every check reads
the row (by primary key, no cache): logging out, "log out everywhere", disabling a user or changing
their role end the rows (`server/user_sessions.py`) and so end the sessions at once in every server
process that shares the database, whatever `token_cache_s` says about bearer tokens.

A session lives at most `IDLE_S` after its last use and `LIFETIME_S` after the login, whatever its
use. `seen` is the last use the cookie records: pages send the browser a fresh cookie when it is over
`TOUCH_S` old (`SessionStore.refreshed`, which stamps the row's `last_seen` then), so using the
dashboard keeps the session open with a database write every few minutes, not per request. Rows
unused for `KEEP_S` are deleted as new sessions start.

The cookie is HttpOnly and SameSite=Strict; calls that change something must also send the CSRF
secret (header `X-CSRF-Token`, or a form field), which the page carries and another site cannot read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from thresher.model.spec import MAX_ID
from thresher.server.auth import PERSON_KINDS, Caller, caller_from_row, digest
from thresher.server.clock import utcnow
from thresher.server.dashboard.secret import SessionSecret
from thresher.server.db.engine import Database
from thresher.server.db.queries import sessions as q
from thresher.server.db.queries import tokens as tq

COOKIE = "thresher_session"
CSRF_HEADER = "x-csrf-token"
VERSION = "v3"
IDLE_S = 12 * 3600           # a session unused this long is over
LIFETIME_S = 7 * 24 * 3600   # and any session this long after its login
TOUCH_S = 300                # a cookie whose last use is older than this is sent again, stamped now
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
KEEP_S = LIFETIME_S + 30 * 24 * 3600  # rows of sessions unused this long are deleted (at the next login)


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str
    session_id: int
    issued: int              # login (epoch s): LIFETIME_S counts from here
    seen: int                # last use the cookie records (epoch s): IDLE_S counts from here
    key: str = field(repr=False)


def judge(row: Any, now: datetime) -> Caller | None:
    """The caller a session row (`queries/sessions.SESSION_BY_ID`) stands for, or None: ended, its
    user disabled, or the token it was made with revoked, expired or gone."""
    if row.ended_at is not None or row.disabled:
        return None
    kind, read_only, expires = "user", False, None
    if row.token_id is not None:
        if row.found_token_id is None or row.revoked_at is not None or row.token_kind not in PERSON_KINDS:
            return None
        expires = row.expires_at
        if expires is not None and expires.tzinfo is None:  # SQLite hands back naive datetimes (UTC)
            expires = expires.replace(tzinfo=timezone.utc)
        if expires is not None and expires <= now:
            return None
        kind, read_only = row.token_kind, bool(row.read_only)
    return Caller(kind, row.user_name, None, row.user_id, row.role, read_only, row.token_id, expires,
                  session_id=row.id)


class SessionStore:
    """Makes, checks and refreshes session cookies, each standing for a row of `sessions`."""

    def __init__(self, secret: SessionSecret | None = None, clock: Callable[[], float] = time.time,
                 idle_s: float = IDLE_S, lifetime_s: float = LIFETIME_S) -> None:
        self.secret = secret or SessionSecret()
        self.idle_s = min(idle_s, IDLE_S)            # never longer than the limits above
        self.lifetime_s = min(lifetime_s, LIFETIME_S)
        self.clock = clock

    def _sign(self, payload: str, key: str) -> str:
        mac = hmac.new(self.secret.key(), f"{payload}\n{key}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _cookie(self, session: Session) -> str:
        payload = f"{VERSION}.{session.session_id}.{session.issued}.{session.seen}.{session.csrf}"
        return f"{payload}.{self._sign(payload, session.key)}"

    def login(self, db: Database, secret: str, address: str | None = None,
              user_agent: str | None = None) -> tuple[str, Session] | None:
        """A session for a person's token, or None when the token is unknown, not a person's, or no
        longer accepted."""
        return self.login_digest(db, digest(secret.strip()), address, user_agent)

    def login_digest(self, db: Database, token_digest: str, address: str | None = None,
                     user_agent: str | None = None) -> tuple[str, Session] | None:
        """The same for a token known by its digest (a one-time login link, dashboard/once.py)."""
        with db.read() as conn:
            row = conn.execute(tq.TOKEN_BY_DIGEST, {"digest": token_digest}).first()
        caller = caller_from_row(row, utcnow()) if row is not None else None
        if row is None or caller is None or caller.kind not in PERSON_KINDS or caller.user_id is None:
            return None
        return self._start(db, caller.user_id, row.id, address, user_agent)

    def login_user(self, db: Database, user_id: int, address: str | None = None,
                   user_agent: str | None = None) -> tuple[str, Session] | None:
        """A session for a user whose password was just checked (`server/logins.py`)."""
        return self._start(db, user_id, None, address, user_agent)

    def _start(self, db: Database, user_id: int, token_id: int | None, address: str | None,
               user_agent: str | None) -> tuple[str, Session] | None:
        key, now = secrets.token_hex(32), utcnow()
        with db.write() as conn:
            session_id = int(conn.execute(q.INSERT_SESSION, {
                "user_id": user_id, "token_id": token_id, "key": key, "created_at": now, "last_seen": now,
                "address": (address or "")[:64] or None, "user_agent": (user_agent or "")[:300] or None,
                "ended_at": None, "end_reason": None}).scalar_one())
            conn.execute(q.PRUNE_SESSIONS, {"before": now - timedelta(seconds=KEEP_S)})
            row = conn.execute(q.SESSION_BY_ID, {"session_id": session_id}).one()
        caller = judge(row, now)
        if caller is None:
            return None
        epoch = int(self.clock())
        session = Session(caller, secrets.token_urlsafe(18), session_id, epoch, epoch, key)
        return self._cookie(session), session

    def check(self, db: Database, cookie: str | None) -> Session | None:
        """The session a cookie stands for, or None: malformed, forged, expired (idle or in all), or
        its row ended (or its token revoked, its user disabled)."""
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 6 or parts[0] != VERSION or not all(p.isascii() and p.isdigit() for p in parts[1:4]):
            return None
        session_id, issued, seen = int(parts[1]), int(parts[2]), int(parts[3])
        if session_id > MAX_ID:  # names no row, and must not reach the database
            return None
        now = self.clock()
        if now - issued > self.lifetime_s or now - seen > self.idle_s or seen < issued:
            return None
        with db.read() as conn:
            row = conn.execute(q.SESSION_BY_ID, {"session_id": session_id}).first()
        if row is None or not hmac.compare_digest(self._sign(".".join(parts[:5]), row.key), parts[5]):
            return None
        caller = judge(row, utcnow())
        if caller is None:
            return None
        return Session(caller, parts[4], session_id, issued, seen, row.key)

    def refreshed(self, session: Session, db: Database | None = None) -> str | None:
        """A cookie stamped with this use, when the one the browser holds is over TOUCH_S old (the
        row's `last_seen` stamped too, given the database)."""
        now = int(self.clock())
        if now - session.seen < TOUCH_S:
            return None
        if db is not None:
            with db.write() as conn:
                conn.execute(q.TOUCH_SESSION, {"session_id": session.session_id, "now": utcnow()})
        return self._cookie(replace(session, seen=now))

    def end(self, db: Database, session: Session, reason: str = "logout") -> None:
        """Log this session out."""
        with db.write() as conn:
            conn.execute(q.END_SESSION, {"session_id": session.session_id, "now": utcnow(), "reason": reason})

    def max_age(self, session: Session) -> int:
        """How long the browser should keep a cookie made now: until it would be idle too long or
        past its lifetime, whichever comes first."""
        return max(0, int(min(self.idle_s, session.issued + self.lifetime_s - int(self.clock()))))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
