"""The permission rule (`model.permissions`), without HTTP: the table of roles, ownership, read-only
tokens, credentials that are not people, and the checks of what a submit or a priority may say."""

from __future__ import annotations

import pytest

from thresher.model.permissions import (
    PERMISSIONS,
    Role,
    decide,
    member_refusal,
    needs_owner,
    on_behalf_refusal,
    owner_refusal,
    priority_refusal,
)

ROLES = [r.value for r in Role]


def allowed(who: str, permission: str, is_owner: bool | None = None, read_only: bool = False) -> bool:
    return decide(who, permission, is_owner, read_only=read_only) is None


# who may: the brief's table, spelled by hand (not derived from the module's classes)
TABLE = {
    "job.read": {"admin", "wrangler", "artist", "viewer"},
    "node.read": {"admin", "wrangler", "artist", "viewer"},
    "job.submit": {"admin", "wrangler", "artist"},
    "job.kill": {"admin", "wrangler", "artist"},        # the artist on their own job
    "job.priority": {"admin", "wrangler", "artist"},
    "task.retry": {"admin", "wrangler", "artist"},
    "job.urgent": {"admin", "wrangler"},
    "job.blocklist": {"admin", "wrangler"},
    "node.steer": {"admin", "wrangler"},
    "project.manage": {"admin"},
    "pool.manage": {"admin"},
    "limit.manage": {"admin"},
    "service.manage": {"admin"},
    "user.manage": {"admin"},
    "admin": {"admin"},
    "token.own": {"admin", "wrangler", "artist", "viewer"},
}


@pytest.mark.parametrize("permission", sorted(TABLE))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_holds_what_the_table_says(role: str, permission: str) -> None:
    assert allowed(role, permission, is_owner=True) == (role in TABLE[permission])


@pytest.mark.parametrize("permission", ["job.kill", "job.pause", "job.retry", "job.priority", "task.kill",
                                        "task.skip", "job.delete", "job.layer", "job.dependencies"])
def test_an_artist_acts_on_their_own_jobs_only_and_wranglers_on_every_job(permission: str) -> None:
    assert allowed("artist", permission, is_owner=True)
    assert not allowed("artist", permission, is_owner=False)
    assert allowed("artist", permission, is_owner=None)  # no such job: the route answers 404
    assert allowed("wrangler", permission, is_owner=False) and allowed("admin", permission, is_owner=False)
    assert not allowed("viewer", permission, is_owner=True)
    assert needs_owner("artist", permission) and not needs_owner("wrangler", permission)
    assert not needs_owner("artist", permission, read_only=True)  # refused anyway


def test_a_read_only_token_acts_as_a_viewer_whatever_the_role() -> None:
    for role in ROLES:
        assert allowed(role, "job.read", read_only=True)
        assert allowed(role, "token.logout", read_only=True)
        for permission in ("job.submit", "job.kill", "admin", "user.manage", "token.own"):
            refusal = decide(role, permission, True, read_only=True)
            assert refusal is not None and "read-only" in refusal.reason


def test_nodes_enrollment_tokens_and_no_credential() -> None:
    assert allowed("node", "node.agent") and allowed("node", "node.register") and allowed("node", "self")
    assert not allowed("enroll", "node.agent") and allowed("enroll", "node.register") and allowed("enroll", "self")
    for who in ("node", "enroll"):
        for permission in ("job.read", "job.submit", "admin", "token.own"):
            assert not allowed(who, permission)
    for role in ROLES:
        assert not allowed(role, "node.agent")
        # only an admin of the people may enrol a node (and approve one taking a known node's name)
        assert allowed(role, "node.register") == (role == "admin")
        assert allowed(role, "self")
    assert allowed("anonymous", "public")
    assert not allowed("anonymous", "self") and not allowed("anonymous", "job.read")


def test_unknown_names_are_refused() -> None:
    assert not allowed("admin", "job.explode")
    assert not allowed("overlord", "job.read")


def test_every_permission_says_what_it_does() -> None:
    for permission in PERMISSIONS.values():
        assert permission.doing and permission.name


def test_refusals_name_who_what_and_whose() -> None:
    assert owner_refusal("artist", "alice", "job.kill", 12, "bob") == "artist alice may not kill job 12 of bob"
    assert priority_refusal("artist", 90, 50) == "an artist may set priorities up to 50, not 90"
    assert priority_refusal("artist", 50, 50) is None and priority_refusal("wrangler", 1000, 50) is None
    assert on_behalf_refusal("artist", "alice", "bob") == "artist alice may not submit jobs on behalf of bob"
    assert on_behalf_refusal("artist", "alice", "alice") is None and on_behalf_refusal("artist", "alice", None) is None
    assert on_behalf_refusal("wrangler", "wendy", "bob") is None
    assert member_refusal("artist", "alice", "show", {"bob"}) == "artist alice is not a member of project show"
    assert member_refusal("artist", "alice", "show", {"alice"}) is None
    assert member_refusal("artist", "alice", "show", set()) is None  # no members: open to every submitter
    assert member_refusal("wrangler", "wendy", "show", {"bob"}) is None
    refused = decide("artist", "audit.read")  # the article fits the role: "an artist", "a viewer"
    assert refused is not None and refused.reason.startswith("an artist may not "), refused
    refused = decide("viewer", "job.kill", True)
    assert refused is not None and refused.reason.startswith("a viewer may not "), refused
    refused = decide("enroll", "job.kill")
    assert refused is not None and refused.reason.startswith("an enrollment token may not "), refused
