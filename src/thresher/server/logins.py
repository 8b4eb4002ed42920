"""Password logins with the lockout: every way a person gives a password (the API's `POST /login`,
which `thresher login` calls; the dashboard's login form; a self-service password change's old
password) goes through `password_login`, which asks the one password check (`users.check_password`)
unless the user name or the address is locked (the rule `model/lockout.py`, with the figures of
`ServerSettings.lockouts`), and records a failure otherwise. Failures are rows of the database, so
several server processes count them together. A locked answer (429) names neither whether the user
exists nor which of the two is locked.

With LDAP on (`ldap_urls`), a name the directory answers for (`ldap_login.ask`, the rule
`model/ldap_rule.py`) is checked there instead, and its row made or its role refreshed
(`ldap_login.record`); a wrong directory password counts towards the lockout like a local one.

The password is checked in a read transaction (argon2 takes tens of milliseconds: no write lock is
held meanwhile); a failure is written in a transaction of its own, committed before the refusal.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from thresher.model.lockout import Limits, locked_until
from thresher.server import ldap_login, user_sessions, users
from thresher.server.clock import utcnow
from thresher.server.db.engine import Database
from thresher.server.db.queries import sessions as q
from thresher.server.errors import TooManyRequests, Unauthorized
from thresher.server.settings import ServerSettings
from thresher.wire.users import User


def _aware(value: datetime) -> datetime:
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def lock_of(conn: Connection, name: str, address: str, now: datetime,
            limits: tuple[Limits, Limits]) -> datetime | None:
    """Until when a login as `name` from `address` is locked (the later of the two), or None."""
    by_user, by_address = limits
    user_failures = [_aware(r.at) for r in conn.execute(q.USER_FAILURES, {"name": name, "since": by_user.horizon(now)})]
    address_failures = [_aware(r.at) for r in conn.execute(q.ADDRESS_FAILURES, {
        "address": address, "since": by_address.horizon(now)})]
    ends = [t for t in (locked_until(user_failures, now, by_user), locked_until(address_failures, now, by_address))
            if t is not None]
    return max(ends) if ends else None


def user_locks(conn: Connection, now: datetime, limits: Limits) -> dict[str, datetime]:
    """Every user name locked now, and until when (the users listing)."""
    failures: dict[str, list[datetime]] = defaultdict(list)
    for row in conn.execute(q.FAILURES_SINCE, {"since": limits.horizon(now)}):
        failures[row.user_name].append(_aware(row.at))
    locks = {name: locked_until(times, now, limits) for name, times in failures.items()}
    return {name: until for name, until in locks.items() if until is not None}


def unlock(conn: Connection, name: str) -> None:
    """An admin lifts a user name's lock: its failures are forgotten (an address's lock runs out alone)."""
    conn.execute(q.CLEAR_USER_FAILURES, {"name": name})


def locked_message(until: datetime) -> str:
    return (f"too many failed logins for this user name or from this address: try again after "
            f"{until:%Y-%m-%d %H:%M:%S} UTC, or ask an admin to unlock the user")


def password_login(db: Database, settings: ServerSettings, name: str, password: str, address: str,
                   now: datetime | None = None) -> Any:
    """The user's row when the password is right and nothing is locked. Raises TooManyRequests (429)
    while the user name or the address is locked, Unauthorized (401) for a wrong password (recorded);
    with LDAP, Forbidden (403) for a directory user in no mapped group and LdapUnavailable (503)."""
    now, name, address = now or utcnow(), name[:100], address[:64]  # as the columns hold them
    limits = settings.lockouts
    with db.read() as conn:
        until = lock_of(conn, name, address, now, limits)
    if until is not None:
        raise TooManyRequests(locked_message(until))
    try:
        verdict = ldap_login.ask(db, settings, name, password)
    except Unauthorized:
        verdict, row = None, None
    else:
        if verdict is None:
            with db.read() as conn:
                row = users.check_password(conn, name, password)
        else:
            with db.write() as conn:
                row = ldap_login.record(conn, verdict, now)
            if row is not None and row.disabled:
                row = None
    if row is None:
        with db.write() as conn:
            conn.execute(q.INSERT_FAILURE, {"at": now, "user_name": name, "address": address})
            conn.execute(q.PRUNE_FAILURES, {"before": min(limits[0].horizon(now), limits[1].horizon(now))})
        raise Unauthorized("wrong user name or password")
    return row


def standing(conn: Connection, people: list[User], settings: ServerSettings, now: datetime | None = None) -> list[User]:
    """The users with their lock and their open sessions (the listing and a user's page)."""
    now = now or utcnow()
    locks = user_locks(conn, now, settings.lockouts[0])
    counts = user_sessions.open_counts(conn, now, settings.session_idle_s)
    return [u.model_copy(update={"locked_until": locks.get(u.name), "sessions": counts.get(u.id, 0)}) for u in people]
