"""A password login checked against LDAP / Active Directory, in two steps so that the directory is
never asked inside a write transaction (an LDAP server that is slow or down would hold SQLite's write
lock, and the whole farm, for `ldap_timeout_s`):

1. `ask` (by `logins.password_login`, before any write transaction): reads the user row, asks **the** rule
   (`model/ldap_rule.ldap_answers`: local accounts win) whether LDAP answers for this name; if so binds
   as the user (`server/ldap_auth.Directory`) and maps their groups to a role (`ldap_role`). A wrong
   password is the login's usual 401, a user in no mapped group a 403 saying so, no server answering
   a 503. None: LDAP is off or the account is local, and the local password check decides.
2. `record` (in `logins.password_login`'s write transaction): the LDAP user's row, made at their first login
   (`source` ldap, no password) or with the role their groups give now (refreshed at every login).
   The caller still refuses a disabled user, whatever LDAP said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from thresher.model.ldap_rule import ldap_answers, ldap_role
from thresher.model.permissions import Role
from thresher.server.db import dialects
from thresher.server.db.queries import people as q
from thresher.server.errors import Forbidden, Unauthorized
from thresher.server.ldap_auth import Directory

if TYPE_CHECKING:
    from thresher.server.db.engine import Database
    from thresher.server.settings import ServerSettings

WRONG = "wrong user name or password"  # the one answer for every way a password login fails


@dataclass(frozen=True)
class LdapVerdict:
    """The directory accepted `name`'s password; their groups give `role`."""

    name: str
    role: Role
    dn: str


def _answers(row: Any) -> bool:
    if row is None:
        return ldap_answers(None, False, None)
    return ldap_answers(row.source, row.password_hash is not None, row.role)


def ask(db: Database, settings: ServerSettings, name: str, password: str) -> LdapVerdict | None:
    """LDAP's verdict on this login (outside any transaction of the caller), or None when it is not LDAP's."""
    directory = Directory.of(settings)
    if directory is None:
        return None
    with db.read() as conn:
        row = conn.execute(q.USER_BY_NAME, {"name": name}).first()
    if not _answers(row):
        return None
    if row is not None and row.disabled:  # refused whatever the directory says: do not ask it
        raise Unauthorized(WRONG)
    person = directory.authenticate(name, password)
    if person is None:
        raise Unauthorized(WRONG)
    role = ldap_role(person.groups, settings.ldap_roles)
    if role is None:
        mapped = ", ".join(sorted(settings.ldap_roles))
        raise Forbidden(f"{name} logged in to LDAP but is in no group that gives a Thresher role "
                        f"(ldap_roles maps {mapped}): ask an admin to add them to one")
    return LdapVerdict(name=name, role=role, dn=person.dn)


def record(conn: Connection, verdict: LdapVerdict, now: datetime) -> Any:
    """The user row of the person LDAP accepted, made or given their current role; None when the name
    stopped being LDAP's since `ask` (an admin gave the local account a password meanwhile)."""
    row = conn.execute(q.USER_BY_NAME, {"name": verdict.name}).first()
    if row is None:  # their first login (a submit naming them may have made the row meanwhile: read it again)
        conn.execute(dialects.pick(conn, q.INSERT_USER_IF_MISSING), {
            "name": verdict.name, "role": verdict.role, "source": "ldap", "disabled": False, "created_at": now,
            "password_hash": None})
        row = conn.execute(q.USER_BY_NAME, {"name": verdict.name}).one()
    if not _answers(row):
        return None
    if (row.role, row.source) != (verdict.role, "ldap"):
        conn.execute(q.UPDATE_USER, {"user_id": row.id, "role": verdict.role, "source": "ldap"})
        row = conn.execute(q.USER_BY_NAME, {"name": verdict.name}).one()
    return row
