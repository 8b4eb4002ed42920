"""Dashboard sessions: a signed cookie that stands for an admin token, plus a CSRF secret.

The cookie is `v1.<token row id>.<expiry>.<csrf>.<signature>`, signed with HMAC-SHA256 keyed by the
token's stored digest. So it needs no server-side session table and no shared secret between server
processes (every process reads the same tokens table), the browser never holds the token itself, and
revoking the token ends every session made with it. The cookie is HttpOnly and SameSite=Strict; calls
that change something must also send the CSRF secret (header `X-CSRF-Token`, or a form field), which
the page carries and another site cannot read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from thresher.server.auth import Caller, digest
from thresher.server.db.engine import Database
from thresher.server.db.tables import tokens

COOKIE = "thresher_session"
CSRF_HEADER = "x-csrf-token"
LIFETIME_S = 7 * 24 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str
    expires: int


def _sign(key: str, payload: str) -> str:
    mac = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class SessionStore:
    """Makes and checks session cookies; caches token rows for a short while."""

    def __init__(self, cache_s: float = 30.0) -> None:
        self.cache_s = cache_s
        self._cache: dict[int, tuple[float, tuple[str, str, str] | None]] = {}
        self._lock = threading.Lock()

    def login(self, db: Database, secret: str) -> tuple[str, Session] | None:
        """A cookie value for an admin token, or None when the token is unknown or not an admin one."""
        with db.read() as conn:
            row = conn.execute(select(tokens.c.id, tokens.c.kind, tokens.c.name, tokens.c.digest)
                               .where(tokens.c.digest == digest(secret.strip()))).first()
        if row is None or row.kind != "admin":
            return None
        expires = int(time.time()) + LIFETIME_S
        csrf = secrets.token_urlsafe(18)
        payload = f"v1.{row.id}.{expires}.{csrf}"
        return f"{payload}.{_sign(row.digest, payload)}", Session(Caller("admin", row.name), csrf, expires)

    def check(self, db: Database, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 5 or parts[0] != "v1" or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        token_id, expires = int(parts[1]), int(parts[2])
        if expires < time.time():
            return None
        row = self._token(db, token_id)
        if row is None:
            return None
        kind, name, key = row
        if kind != "admin" or not hmac.compare_digest(_sign(key, ".".join(parts[:4])), parts[4]):
            return None
        return Session(Caller("admin", name), parts[3], expires)

    def _token(self, db: Database, token_id: int) -> tuple[str, str, str] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token_id)
        if cached and cached[0] > now:
            return cached[1]
        with db.read() as conn:
            row = conn.execute(select(tokens.c.kind, tokens.c.name, tokens.c.digest)
                               .where(tokens.c.id == token_id)).first()
        value = (row.kind, row.name, row.digest) if row else None
        with self._lock:
            self._cache[token_id] = (now + self.cache_s, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
