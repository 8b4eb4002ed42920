"""Whose jobs a connection submits, from whose its token is (`GET /whoami`, asked once).

A spec without an `owner` sent with a person's token is left so: the server makes the job that person's.
Sent with the farm's admin token (no one's), it names the account running the program, which is what
wranglers filter on; the server would otherwise only know the token's name. Naming the account always
refused an artist whose login is not the account's name ("artist ana.silva may not submit jobs on
behalf of ana"), and made a wrangler's own job the account's.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable

from thresher.client.http import ApiError
from thresher.model.text import USER_PATTERN
from thresher.wire.meta import WhoAmI


class TokenOwner:
    """The owner rules for one connection; `ask` is its `whoami`."""

    def __init__(self, ask: Callable[[], WhoAmI]) -> None:
        self._ask = ask
        self._who: tuple[WhoAmI | None] | None = None

    def who(self) -> WhoAmI | None:
        """Whose the token is, asked of the server once; None where it cannot say (an older server)."""
        if self._who is None:
            try:
                self._who = (self._ask(),)
            except ApiError:
                self._who = (None,)
        return self._who[0]

    def default_owner(self) -> str | None:
        """The `owner` a spec without one is sent with: the account with the admin token, else none; none
        too for an account whose name is no user name (`John Smith`), which the server would refuse at
        `owner` though the submitter gave none: the job is then the token's."""
        who = self.who()
        account = local_user()
        if (who is None or who.kind == "admin") and re.fullmatch(USER_PATTERN, account):
            return account
        return None

    def name(self) -> str:
        """Whose jobs this connection submits (`thresher jobs --mine`): the person, or the account."""
        who = self.who()
        return self.default_owner() or (who.name if who is not None else local_user())


def local_user() -> str:
    """The account running this program."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
