"""Where the broadcaster's parts read from, and how many read transactions they open.

The parts take any object with a `db` (the server's context) rather than importing the context
module, which itself builds the broadcaster: no import cycle. Tests and benches check the count:
one event costs a few reads whatever the number of open tabs.
"""

from __future__ import annotations

from typing import ContextManager, Protocol

from sqlalchemy import Connection

from thresher.server.db.engine import Database


class Source(Protocol):
    """Anything that holds the server's database (the ServerContext does)."""

    @property
    def db(self) -> Database: ...


class CountedReads:
    """Opens read transactions on a source's database and counts them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, source: Source) -> ContextManager[Connection]:
        self.count += 1
        return source.db.read()
