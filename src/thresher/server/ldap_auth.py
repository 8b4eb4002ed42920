"""The LDAP / Active Directory directory, through ldap3: is this the password of this login name, and
which groups is the person in. Nothing here touches Thresher's database (`server/ldap_login.py` does).

A login binds as the user with their own password, so the directory itself checks it (Thresher never
sees a hash). The user's DN comes from `ldap_user_dn` (a template) or from a search
(`ldap_user_search_base` + `ldap_user_filter`, as `ldap_bind_dn` or anonymous). The groups are the
user's own `memberOf` values (Active Directory, OpenLDAP's memberof overlay) plus, when
`ldap_group_search_base` is set, the groups `ldap_group_filter` finds (`member`, `uniqueMember`,
`memberUid`), each by its name (`ldap_group_name_attribute`) and its DN.

Every value from the login goes into a filter escaped (`escape_filter_chars`) and into a DN escaped
(`escape_rdn`). An empty password is never sent: LDAP takes a simple bind without one as anonymous.
Servers are tried in turn; one that does not connect or answer within `ldap_timeout_s` is passed
over, and when none answers the login is a 503 naming each server and why (`LdapUnavailable`),
never a 500 or a hang.
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thresher.model.ldap_rule import group_name
from thresher.server.errors import ApiProblem

if TYPE_CHECKING:
    from thresher.server.settings import ServerSettings

log = logging.getLogger("thresher.server.ldap")

#: Bind results that say "not this password" (or "not allowed to log in now": AD's expired or locked
#: accounts answer invalidCredentials too): a refusal, not a server to pass over.
_REFUSALS = {"invalidCredentials", "inappropriateAuthentication", "unwillingToPerform", "invalidDNSyntax",
             "noSuchObject", "insufficientAccessRights", "constraintViolation"}


_warned: set[str] = set()  # plain ldap:// URLs without StartTLS already warned about (once a process)


class LdapUnavailable(ApiProblem):
    """No LDAP server answered: the login cannot be checked now (local accounts still can)."""

    status = 503


@dataclass(frozen=True)
class Person:
    """Someone the directory accepted: their DN and their groups (names and DNs)."""

    dn: str
    groups: tuple[str, ...]


class _NoAnswer(Exception):
    """This server did not answer as a server should; try the next."""


class Directory:
    """The configured LDAP servers (`ServerSettings.ldap_*`); `Directory.of(settings)` is None when LDAP is off."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.timeout = settings.ldap_timeout_s
        # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds: an int, at least 1.
        self.receive_timeout = max(1, math.ceil(settings.ldap_timeout_s))

    @classmethod
    def of(cls, settings: ServerSettings) -> Directory | None:
        return cls(settings) if settings.ldap_urls else None

    def authenticate(self, name: str, password: str) -> Person | None:
        """The person if `password` is `name`'s in the directory; None if it is not (or no such person).
        Raises `LdapUnavailable` when no server answers."""
        if not password:
            return None
        failures = []
        for url in self.settings.ldap_urls:
            try:
                return self._at(url, name, password)
            except _NoAnswer as exc:
                failures.append(f"{url}: {exc}")
        log.warning("LDAP login of %s not checked: %s", name, "; ".join(failures))
        raise LdapUnavailable("the LDAP server does not answer, so LDAP logins cannot be checked now (local "
                              "accounts still log in): " + "; ".join(failures))

    # ---------------------------------------------------------------- one server
    def _server(self, url: str) -> Any:
        import ldap3

        if not url.lower().startswith("ldaps://") and not self.settings.ldap_start_tls and url not in _warned:
            _warned.add(url)
            log.warning("LDAP passwords go to %s unencrypted: use an ldaps:// URL or ldap_start_tls", url)

        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.settings.ldap_ca_file)
                        if self.settings.ldap_ca_file else None)
        return ldap3.Server(url, use_ssl=url.lower().startswith("ldaps://"), tls=tls, get_info=ldap3.NONE,
                            connect_timeout=self.timeout)

    def _bind(self, server: Any, dn: str | None, password: str | None) -> Any:
        """A connection bound as dn (anonymous when None); None when the directory refuses the password."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        conn = ldap3.Connection(server, user=dn, password=password, read_only=True, auto_referrals=False,
                                authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS,
                                receive_timeout=self.receive_timeout, raise_exceptions=False)
        try:
            conn.open()
            if self.settings.ldap_start_tls and not server.ssl and not conn.start_tls():
                raise _NoAnswer(f"StartTLS refused ({(conn.result or {}).get('description')})")
            if conn.bind():
                return conn
        except LDAPException as exc:
            _close(conn)
            raise _NoAnswer(_reason(exc)) from exc
        except _NoAnswer:
            _close(conn)
            raise
        result = conn.result or {}
        _close(conn)
        if result.get("description") in _REFUSALS:
            return None
        raise _NoAnswer(f"bind answered {result.get('description')} {result.get('message') or ''}".strip())

    def _search(self, conn: Any, base: str, query: str, attributes: list[str], scope: str = "SUBTREE") -> list[Any]:
        from ldap3.core.exceptions import LDAPException

        try:
            conn.search(base, query, search_scope=scope, attributes=attributes, size_limit=1000,
                        time_limit=max(1, int(self.timeout)))
        except LDAPException as exc:
            raise _NoAnswer(_reason(exc)) from exc
        if conn.result.get("description") not in ("success", "sizeLimitExceeded", "noSuchObject"):
            raise _NoAnswer(f"search under {base} answered {conn.result.get('description')}")
        return list(conn.entries)

    def _at(self, url: str, name: str, password: str) -> Person | None:
        opened: list[Any] = []
        try:
            return self._person(self._server(url), name, password, opened)
        finally:
            for conn in opened:
                _close(conn)

    def _person(self, server: Any, name: str, password: str, opened: list[Any]) -> Person | None:
        """Bind as `name` on this server (found by the DN template or a search) and read their groups;
        every connection made goes into `opened`, which the caller closes."""
        from ldap3.utils.conv import escape_filter_chars
        from ldap3.utils.dn import escape_rdn

        settings, service = self.settings, None
        if settings.ldap_user_dn is not None:
            dn = settings.ldap_user_dn.replace("{user}", escape_rdn(name))
        else:
            secret = settings.ldap_bind_password.get_secret_value() if settings.ldap_bind_password else None
            service = self._bind(server, settings.ldap_bind_dn, secret)
            if service is None:
                raise _NoAnswer(f"the service account {settings.ldap_bind_dn} was refused (ldap_bind_dn)")
            opened.append(service)
            assert settings.ldap_user_search_base is not None  # ServerSettings checks one of the two is set
            found = self._search(service, settings.ldap_user_search_base,
                                 settings.ldap_user_filter.replace("{user}", escape_filter_chars(name)), [])
            if len(found) != 1:  # nobody, or a filter that matches several people: no login
                return None
            dn = found[0].entry_dn
        user = self._bind(server, dn, password)
        if user is None:
            return None
        opened.append(user)
        reader = service if settings.ldap_bind_dn else user  # an anonymous service search: groups as the user
        return Person(dn=dn, groups=tuple(self._groups(reader, dn, name)))

    def _groups(self, conn: Any, dn: str, name: str) -> list[str]:
        from ldap3.utils.conv import escape_filter_chars

        settings, groups = self.settings, []
        for entry in self._search(conn, dn, "(objectClass=*)", ["memberOf"], scope="BASE"):
            for value in entry.entry_attributes_as_dict.get("memberOf", []):
                groups += [str(value), group_name(str(value))]
        if settings.ldap_group_search_base:
            query = (settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn))
                     .replace("{user}", escape_filter_chars(name)))
            attribute = settings.ldap_group_name_attribute
            for entry in self._search(conn, settings.ldap_group_search_base, query, [attribute]):
                groups.append(entry.entry_dn)
                groups += [str(v) for v in entry.entry_attributes_as_dict.get(attribute, [])]
        return groups


def _close(conn: Any) -> None:
    """Unbind and close, whatever state the connection is in."""
    from ldap3.core.exceptions import LDAPException

    if conn is not None:
        try:
            conn.unbind()
        except LDAPException:
            pass


def _reason(exc: BaseException) -> str:
    """An ldap3 error in a few words (its own text can be a long repr of the socket)."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
