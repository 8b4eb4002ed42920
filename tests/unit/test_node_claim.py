"""The rule for a known node's name registered with a token that is not the node's own
(`model/node_claim.py`), without a server: an enrolment token never takes a known node over."""

from __future__ import annotations

from thresher.model.node_claim import Claim, KnownNode, claim_name


def _known(**facts: bool) -> KnownNode:
    return KnownNode(name="n1", **{"removed": False, "live": False, "same_instance": False,
                                   "credential_used": True, **facts})


def test_a_new_name_makes_a_node() -> None:
    assert claim_name("enroll", "n1", None, replace=False).claim == Claim.CREATE
    assert claim_name("admin", "n1", None, replace=True).claim == Claim.CREATE


def test_an_enrolment_token_never_takes_a_known_node_that_is_down() -> None:
    verdict = claim_name("enroll", "n1", _known(), replace=False)
    assert verdict.claim is None and verdict.status == 409
    assert "node remove n1" in verdict.reason and "replace" in verdict.reason and "credential" in verdict.reason
    # even from the same instance id, once the node has spoken with its credential
    assert claim_name("enroll", "n1", _known(same_instance=True), replace=False).status == 409


def test_only_an_admin_may_replace() -> None:
    refused = claim_name("enroll", "n1", _known(), replace=True)
    assert refused.claim is None and refused.status == 403 and "admin" in refused.reason
    assert claim_name("enroll", "n1", None, replace=True).status == 403  # refused before anything else
    assert claim_name("admin", "n1", _known(), replace=True).claim == Claim.REPLACE
    assert claim_name("admin", "n1", _known(), replace=False).status == 409  # an admin token alone is not approval


def test_a_live_node_is_never_replaced_by_another_instance() -> None:
    for kind, replace in (("enroll", False), ("admin", True)):
        verdict = claim_name(kind, "n1", _known(live=True), replace=replace)
        assert verdict.status == 409 and "cloned" in verdict.reason
    assert claim_name("admin", "n1", _known(live=True, same_instance=True), replace=True).claim == Claim.REPLACE


def test_a_removed_node_comes_back() -> None:
    assert claim_name("enroll", "n1", _known(removed=True), replace=False).claim == Claim.RETURN


def test_the_same_agent_asking_again_for_a_credential_it_never_received() -> None:
    fresh = _known(same_instance=True, credential_used=False)
    assert claim_name("enroll", "n1", fresh, replace=False).claim == Claim.REISSUE
    # another instance cannot, even before the node spoke
    assert claim_name("enroll", "n1", _known(credential_used=False), replace=False).status == 409
