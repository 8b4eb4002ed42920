"""**The** rules of LDAP logins, pure (no directory, no database): who answers for a login name, which
role a user's groups give, and whether the LDAP settings make sense at all.

Who answers (`ldap_answers`): local accounts win. A name Thresher does not know, or an account that
LDAP made (`source` ldap), is LDAP's. A local account with a password, and any local admin (the
first admin among them), is never looked up in LDAP: a directory cannot take over, demote or lock
out an account the farm's admins made. A local account without a password cannot log in by password
at all; it is what Thresher made for a job's owner before that person ever logged in (a wrangler
submitted on their behalf, or the owners of jobs older than users): LDAP takes it over at its first
LDAP login (it becomes `source` ldap and keeps its jobs).

Which role (`ldap_role`): the highest role (admin, wrangler, artist, viewer) that any of the user's
groups maps to in `ldap_roles`, names compared without regard to case (directories compare them so);
none: the user is refused, with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from thresher.model.permissions import Role

#: Highest first: the first role of this order that a user's groups map to is theirs.
RANK = (Role.ADMIN, Role.WRANGLER, Role.ARTIST, Role.VIEWER)


def ldap_answers(source: str | None, has_password: bool, role: str | None) -> bool:
    """Whether the LDAP directory checks this login name's password (`source` None: no such user yet)."""
    if source is None or source == "ldap":
        return True
    return not has_password and role != Role.ADMIN


def ldap_role(groups: Iterable[str], roles: Mapping[str, str]) -> Role | None:
    """The role the groups (names and DNs) give by the mapping, the highest of them; None: no group maps."""
    mapped = {name.casefold(): Role(role) for name, role in roles.items()}
    found = {mapped[g.casefold()] for g in groups if g.casefold() in mapped}
    return next((role for role in RANK if role in found), None)


def group_name(dn: str) -> str:
    """The name a group DN goes by: the value of its first RDN (`cn=Farm Admins,ou=groups,...` ->
    `Farm Admins`), escapes undone."""
    value: list[str] = []
    escaped = False
    for char in dn:
        if escaped:
            value.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            break
        else:
            value.append(char)
    first = "".join(value)
    return first.split("=", 1)[1].strip() if "=" in first else first.strip()


def ldap_settings_problem(urls: list[str], user_dn: str | None, search_base: str | None, user_filter: str,
                          roles: Mapping[str, str], bind_dn: str | None, has_bind_password: bool) -> str | None:
    """Why these LDAP settings cannot work (one sentence naming the setting), or None. No URL: LDAP is
    off and nothing else is asked."""
    if not urls:
        return None
    for url in urls:
        if not url.lower().startswith(("ldap://", "ldaps://")):
            return f"ldap_urls: {url!r} is not an ldap:// or ldaps:// URL"
    if user_dn is None and search_base is None:
        return "LDAP needs ldap_user_dn (a DN template with {user}) or ldap_user_search_base"
    if user_dn is not None and "{user}" not in user_dn:
        return "ldap_user_dn must contain {user} (the login name's place in the DN)"
    if user_dn is None and "{user}" not in user_filter:
        return "ldap_user_filter must contain {user} (the login name's place in the filter)"
    if not roles:
        return "ldap_roles maps no group to a role: every LDAP user would be refused"
    if bind_dn is not None and not has_bind_password:
        return "ldap_bind_dn is set without ldap_bind_password"
    return None
