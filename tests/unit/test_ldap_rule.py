"""The LDAP rules without a directory (model/ldap_rule.py): who answers for a login name, the role a
user's groups give, group names from DNs, and LDAP settings that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from thresher.model.ldap_rule import group_name, ldap_answers, ldap_role, ldap_settings_problem
from thresher.model.permissions import Role
from thresher.server.settings import ServerSettings

ROLES = {"Farm-Admins": "admin", "wranglers": "wrangler", "artists": "artist", "cn=review,ou=groups,dc=x": "viewer"}


def test_local_accounts_win_and_ldap_answers_for_the_rest() -> None:
    assert ldap_answers(None, False, None)                # a name nobody knows yet
    assert ldap_answers("ldap", False, "artist")          # LDAP made it
    assert not ldap_answers("local", True, "artist")      # a local password: never LDAP's
    assert not ldap_answers("local", False, "admin")      # a local admin (the first admin): never LDAP's
    assert ldap_answers("local", False, "artist")         # made for a job's owner, no password: LDAP takes it over


def test_the_highest_mapped_role_wins_names_without_case() -> None:
    assert ldap_role(["artists", "farm-admins"], ROLES) is Role.ADMIN
    assert ldap_role(["ARTISTS", "cooks"], ROLES) is Role.ARTIST
    assert ldap_role(["artists", "Wranglers"], ROLES) is Role.WRANGLER
    assert ldap_role(["CN=Review,OU=Groups,DC=x"], ROLES) is Role.VIEWER  # a full DN matches too
    assert ldap_role(["cooks"], ROLES) is None
    assert ldap_role([], ROLES) is None


def test_a_group_dn_is_named_by_its_first_value() -> None:
    assert group_name("cn=farm-admins,ou=groups,dc=example,dc=org") == "farm-admins"
    assert group_name("CN=Render Wranglers,OU=Groups,DC=corp,DC=example,DC=com") == "Render Wranglers"
    assert group_name(r"cn=Smith\, Ops,ou=groups,dc=x") == "Smith, Ops"
    assert group_name("cn=a+gidNumber=5,dc=x") == "a"


@pytest.mark.parametrize(("settings", "problem"), [
    ({"urls": ["http://dc1"]}, "not an ldap:// or ldaps:// URL"),
    ({"user_dn": None}, "ldap_user_dn (a DN template with {user}) or ldap_user_search_base"),
    ({"user_dn": "uid=alice,dc=x"}, "ldap_user_dn must contain {user}"),
    ({"user_dn": None, "search_base": "dc=x", "user_filter": "(uid=alice)"}, "ldap_user_filter must contain {user}"),
    ({"roles": {}}, "every LDAP user would be refused"),
    ({"bind_dn": "cn=svc,dc=x"}, "without ldap_bind_password"),
])
def test_ldap_settings_that_cannot_work_are_refused(settings: dict[str, object], problem: str) -> None:
    given: dict[str, object] = {"urls": ["ldaps://dc1:636"], "user_dn": "uid={user},dc=x", "search_base": None,
                                "user_filter": "(uid={user})", "roles": ROLES, "bind_dn": None,
                                "has_bind_password": False, **settings}
    found = ldap_settings_problem(**given)  # type: ignore[arg-type]
    assert found is not None and problem in found


def test_ldap_off_or_complete_settings_pass_and_the_model_checks_them() -> None:
    assert ldap_settings_problem([], None, None, "(uid={user})", {}, None, False) is None
    assert ldap_settings_problem(["ldap://dc1"], None, "dc=x", "(sAMAccountName={user})", ROLES, "cn=svc,dc=x",
                                 True) is None
    with pytest.raises(ValidationError, match="ldap_roles maps no group"):
        ServerSettings(ldap_urls=["ldap://dc1"], ldap_user_dn="uid={user},dc=x")
    with pytest.raises(ValidationError):
        ServerSettings(ldap_urls=["ldap://dc1"], ldap_user_dn="uid={user},dc=x", ldap_roles={"artists": "boss"})


def test_ldap_settings_from_the_environment() -> None:
    from thresher.config import ConfigError, load_settings

    base = {"THRESHER_SERVER_LDAP_USER_DN": "uid={user},dc=x"}
    found = load_settings(ServerSettings, section="server", environ={
        **base, "THRESHER_SERVER_LDAP_URLS": "ldap://dc1, ldaps://dc2:636",
        "THRESHER_SERVER_LDAP_ROLES": "Farm Admins=admin,artists=artist"})
    assert found.ldap_urls == ["ldap://dc1", "ldaps://dc2:636"]
    assert found.ldap_roles == {"Farm Admins": Role.ADMIN, "artists": Role.ARTIST}
    found = load_settings(ServerSettings, section="server", environ={
        **base, "THRESHER_SERVER_LDAP_URLS": "ldap://dc1", "THRESHER_SERVER_LDAP_ROLES": '{"wranglers": "wrangler"}'})
    assert found.ldap_roles == {"wranglers": Role.WRANGLER}
    with pytest.raises(ConfigError, match="THRESHER_SERVER_LDAP_ROLES"):
        load_settings(ServerSettings, section="server", environ={
            **base, "THRESHER_SERVER_LDAP_URLS": "ldap://dc1", "THRESHER_SERVER_LDAP_ROLES": "artists"})
