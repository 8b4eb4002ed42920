"""Dashboard sessions: a signed cookie that stands for a person's token, plus a CSRF secret.

The cookie is `v2.<token row id>.<issued>.<seen>.<csrf>.<signature>`: HMAC-SHA256 with the server
secret (dashboard/secret.py, a file in the data folder, never the database) over those fields and the
token's stored digest. So it needs no server-side session table, the browser never holds the token
itself, a database backup is no key to it, and revoking or replacing the token ends every session
made with it (the digest no longer matches, or the token row says revoked); disabling the token's user
ends them too, and the session acts with the user's role (`model/permissions.py`). Rotating the server
secret ends every session at once.

A session lives at most `IDLE_S` after its last use and `LIFETIME_S` after the login, whatever its
use. `seen` is the last use the cookie records: pages send the browser a fresh cookie when it is over
`TOUCH_S` old (`SessionStore.refreshed`), so using the dashboard keeps the session open without a
database write per request.

The cookie is HttpOnly and SameSite=Strict; calls that change something must also send the CSRF
secret (header `X-CSRF-Token`, or a form field), which the page carries and another site cannot read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from thresher.model.spec import MAX_ID
from thresher.server.auth import PERSON_KINDS, Caller, caller_from_row, digest
from thresher.server.clock import utcnow
from thresher.server.dashboard.secret import SessionSecret
from thresher.server.db.engine import Database
from thresher.server.db.queries import tokens as q

COOKIE = "thresher_session"
CSRF_HEADER = "x-csrf-token"
VERSION = "v2"
IDLE_S = 12 * 3600           # a session unused this long is over
LIFETIME_S = 7 * 24 * 3600   # and any session this long after its login
TOUCH_S = 300                # a cookie whose last use is older than this is sent again, stamped now
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str
    token_id: int
    issued: int              # login (epoch s): LIFETIME_S counts from here
    seen: int                # last use the cookie records (epoch s): IDLE_S counts from here
    token_digest: str = field(repr=False)


@dataclass(frozen=True)
class _Token:
    caller: Caller | None    # None: no longer accepted (revoked, expired, user disabled)
    digest: str


class SessionStore:
    """Makes, checks and refreshes session cookies; caches token rows for a short while."""

    def __init__(self, secret: SessionSecret | None = None, cache_s: float = 30.0,
                 clock: Callable[[], float] = time.time, idle_s: float = IDLE_S, lifetime_s: float = LIFETIME_S) -> None:
        self.secret = secret or SessionSecret()
        self.idle_s = min(idle_s, IDLE_S)            # never longer than the limits above
        self.lifetime_s = min(lifetime_s, LIFETIME_S)
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[int, tuple[float, _Token | None]] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: str, token_digest: str) -> str:
        mac = hmac.new(self.secret.key(), f"{payload}\n{token_digest}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _cookie(self, session: Session) -> str:
        payload = f"{VERSION}.{session.token_id}.{session.issued}.{session.seen}.{session.csrf}"
        return f"{payload}.{self._sign(payload, session.token_digest)}"

    def login(self, db: Database, secret: str) -> tuple[str, Session] | None:
        """A cookie value for a person's token, or None when the token is unknown, not a person's, or
        no longer accepted."""
        return self.login_digest(db, digest(secret.strip()))

    def login_digest(self, db: Database, token_digest: str) -> tuple[str, Session] | None:
        """The same for a token known by its digest (a one-time login link, dashboard/once.py)."""
        with db.read() as conn:
            row = conn.execute(q.TOKEN_BY_DIGEST, {"digest": token_digest}).first()
        caller = caller_from_row(row, utcnow()) if row is not None else None
        if row is None or caller is None or caller.kind not in PERSON_KINDS:
            return None
        now = int(self.clock())
        session = Session(caller, secrets.token_urlsafe(18), row.id, now, now, row.digest)
        return self._cookie(session), session

    def check(self, db: Database, cookie: str | None) -> Session | None:
        """The session a cookie stands for, or None: malformed, forged, expired (idle or in all), or
        its token revoked or replaced."""
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 6 or parts[0] != VERSION or not all(p.isascii() and p.isdigit() for p in parts[1:4]):
            return None
        token_id, issued, seen = int(parts[1]), int(parts[2]), int(parts[3])
        if token_id > MAX_ID:  # names no row, and must not reach the database
            return None
        now = self.clock()
        if now - issued > self.lifetime_s or now - seen > self.idle_s or seen < issued:
            return None
        token = self._token(db, token_id)
        if token is None or token.caller is None or token.caller.kind not in PERSON_KINDS:
            return None
        if not hmac.compare_digest(self._sign(".".join(parts[:5]), token.digest), parts[5]):
            return None
        return Session(token.caller, parts[4], token_id, issued, seen, token.digest)

    def refreshed(self, session: Session) -> str | None:
        """A cookie stamped with this use, when the one the browser holds is over TOUCH_S old."""
        now = int(self.clock())
        if now - session.seen < TOUCH_S:
            return None
        return self._cookie(replace(session, seen=now))

    def max_age(self, session: Session) -> int:
        """How long the browser should keep a cookie made now: until it would be idle too long or
        past its lifetime, whichever comes first."""
        return max(0, int(min(self.idle_s, session.issued + self.lifetime_s - int(self.clock()))))

    def _token(self, db: Database, token_id: int) -> _Token | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token_id)
        if cached and cached[0] > now:
            return cached[1]
        with db.read() as conn:
            row = conn.execute(q.TOKEN_BY_ID, {"token_id": token_id}).first()
        value = _Token(caller_from_row(row, utcnow()), row.digest) if row else None
        with self._lock:
            self._cache[token_id] = (now + self.cache_s, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
