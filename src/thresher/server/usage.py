"""The usage counters caps are checked against: what runs now per project, project in a pool, folder
and licence limit (`model.dispatch_rule` names the keys).

A claim books its attempt's counters and the end of the attempt releases exactly what it booked (the
attempt keeps its booking), both in the transaction that claims or ends it, so the figures are exact
whatever crashes. On PostgreSQL every transaction that locks counters takes one advisory lock first
(`_hold_counters`): a dispatcher then reads the counters it checks locked (`read(lock=True)`,
`queries.studio.USAGE_OF_LOCKED`), so two server processes dispatching at once wait for each other
instead of both granting the last licence, and never deadlock on them. A transaction's moves are kept
in memory (its own reads add them) and written once, in one statement, just before its commit
(`db.engine.before_commit`): a batch's reports do not hold the lock through its dispatch. SQLite's one
writer needs no locks. A key's row is made with what it counts (a project, a pool, a folder, a
limit), so a dispatcher never finds one missing; `ensure` makes any that is.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import Connection

from thresher.model.dispatch_rule import Booking, Usage
from thresher.server.db import dialects
from thresher.server.db.engine import before_commit
from thresher.server.db.queries import studio as q


def ensure(conn: Connection, keys: Iterable[str]) -> None:
    """Make the counters of these keys that do not exist yet, at zero (in key order)."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    have = set(conn.execute(q.USAGE_KEYS_OF, {"keys": wanted}).scalars())
    missing = [key for key in wanted if key not in have]
    if missing:
        conn.execute(dialects.pick(conn, q.INSERT_USAGE), [{"key": key, "cores": 0, "gpus": 0, "units": 0} for key in missing])


def read(conn: Connection, keys: Iterable[str], *, lock: bool) -> Usage:
    """The counters of these keys (those missing made first), locked to the end of the transaction
    when `lock` (a dispatcher about to check caps on PostgreSQL)."""
    wanted = sorted(set(keys))
    if not wanted:
        return Usage()
    statement = q.USAGE_OF
    if lock and dialects.takes_row_locks(conn):
        _hold_counters(conn)
        statement = q.USAGE_OF_LOCKED
    found = Usage({r.key: [r.cores, r.gpus, r.units] for r in conn.execute(statement, {"keys": wanted})})
    if len(found.counters) < len(wanted):  # not expected: made with what they count
        ensure(conn, wanted)
        found = Usage({r.key: [r.cores, r.gpus, r.units] for r in conn.execute(statement, {"keys": wanted})})
    for key, delta in _pending(conn).items():  # this transaction's moves, left for its end
        counter = found.counters.get(key)
        if counter is not None:
            found.counters[key] = [have + more for have, more in zip(counter, delta, strict=True)]
    return found


def move(conn: Connection, bookings: Iterable[Sequence[Booking] | None], sign: int) -> None:
    """Add (`sign` 1: claimed attempts) or take away (-1: ended attempts) these attempts' bookings."""
    deltas: dict[str, list[int]] = {}
    for held in bookings:
        for key, cores, gpus, units in held or ():
            delta = deltas.setdefault(key, [0, 0, 0])
            delta[0] += sign * cores
            delta[1] += sign * gpus
            delta[2] += sign * units
    moved = sorted(key for key, delta in deltas.items() if any(delta))
    if not moved:
        return
    # No `ensure` here (a statement per claim and per batch of reports): a booking's keys were read, and
    # made if missing, by the dispatch that booked them (`read`), and a release gives back only those.
    if dialects.takes_row_locks(conn):
        if before_commit(conn, _FLUSH, _flush):  # left for the end of the transaction, in one write
            transaction = conn.get_transaction()
            if conn.info.get(_HELD_FLUSH) is not transaction:  # the first move of this transaction
                conn.info[_PENDING], conn.info[_HELD_FLUSH] = {}, transaction
            pending = conn.info[_PENDING]
            for key in moved:
                have = pending.setdefault(key, [0, 0, 0])
                pending[key] = [a + b for a, b in zip(have, deltas[key], strict=True)]
            return
        _write_pg(conn, {key: deltas[key] for key in moved})
        return
    conn.execute(q.ADD_USAGE, [{"b_key": k, "b_cores": deltas[k][0], "b_gpus": deltas[k][1], "b_units": deltas[k][2]}
                               for k in moved])


def _pending(conn: Connection) -> dict[str, list[int]]:
    """This transaction's counter moves not written yet (PostgreSQL, see `move`)."""
    return conn.info.get(_PENDING, {}) if conn.info.get(_HELD_FLUSH) is conn.get_transaction() else {}


def _flush(conn: Connection) -> None:
    moves = conn.info.pop(_PENDING, {})
    conn.info.pop(_HELD_FLUSH, None)
    moved = {key: delta for key, delta in moves.items() if any(delta)}
    if moved:
        _write_pg(conn, moved)


def _write_pg(conn: Connection, deltas: dict[str, list[int]]) -> None:
    """PostgreSQL: add these deltas, in one statement under the counters' lock (which every transaction
    locking counters takes first, so none can be waiting for this one's rows while holding others)."""
    moved = sorted(deltas)
    _hold_counters(conn)
    conn.execute(q.ADD_USAGE_PG, {"keys": moved, "cores": [deltas[k][0] for k in moved],
                                  "gpus": [deltas[k][1] for k in moved], "units": [deltas[k][2] for k in moved]})


def _hold_counters(conn: Connection) -> None:
    """PostgreSQL: take the counters' advisory lock (`queries.studio.USAGE_LOCK_PG`) once per
    transaction, before its first counter lock. A transaction locks counters in several statements, each
    in key order but not all together in one order; two of them could deadlock, one of them holding
    this lock cannot. Remembered on the connection by its transaction (one round trip per transaction)."""
    transaction = conn.get_transaction()
    if transaction is None or conn.info.get(_HELD) is transaction:
        return
    conn.execute(q.USAGE_LOCK_PG)
    conn.info[_HELD] = transaction


_HELD = "thresher.usage_lock"
_PENDING, _HELD_FLUSH, _FLUSH = "thresher.usage_pending", "thresher.usage_pending_of", "usage"
