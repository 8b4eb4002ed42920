"""Whose jobs a connection submits when the spec names no owner (`client/owner.py`): with the farm's admin
token, the account running the program, but only when its name is a user name the server takes."""

from __future__ import annotations

import pytest

from thresher.client import owner
from thresher.client.owner import TokenOwner
from thresher.wire.meta import WhoAmI

ADMIN = WhoAmI(kind="admin", name="admin", node_id=None, role="admin")
PERSON = WhoAmI(kind="user", name="ana.silva", node_id=None, role="artist")


@pytest.mark.parametrize("account, sent", [("ana", "ana"), ("ana.silva@studio", "ana.silva@studio"),
                                           ("John Smith", None), ("STUDIO\\ana", None)])
def test_the_admin_tokens_default_owner_is_the_account_when_it_is_a_user_name(
        monkeypatch: pytest.MonkeyPatch, account: str, sent: str | None) -> None:
    monkeypatch.setattr(owner, "local_user", lambda: account)
    # an account that is no user name was sent as the owner, and the server refuses that at `owner`
    assert TokenOwner(lambda: ADMIN).default_owner() == sent
    assert TokenOwner(lambda: PERSON).default_owner() is None  # a person's token: the server's to say
