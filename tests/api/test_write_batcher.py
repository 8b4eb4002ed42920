"""Group commit (server/db/batcher.py) on real databases: operations queued together share one
transaction, a failing one fails alone, and results arrive only after the commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, text
from tests.support import aio

from thresher.server.db.batcher import GroupFn, WriteBatcher
from thresher.server.db.engine import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    key = "INTEGER PRIMARY KEY" if database.is_sqlite else "SERIAL PRIMARY KEY"
    with database.write() as conn:
        conn.execute(text(f"CREATE TABLE marks (id {key}, name TEXT NOT NULL UNIQUE)"))
    yield database
    database.dispose()


def _names(db: Database) -> list[str]:
    with db.read() as conn:
        return [r.name for r in conn.execute(text("SELECT name FROM marks ORDER BY id"))]


def _insert(name: str) -> Callable[[Connection], int]:
    def op(conn: Connection) -> int:
        conn.execute(text("INSERT INTO marks (name) VALUES (:n)"), {"n": name})
        return conn.execute(text("SELECT count(*) FROM marks")).scalar_one()
    return op


def test_queued_operations_share_a_transaction_and_a_failure_stays_alone(db: Database) -> None:
    batcher = WriteBatcher(db)
    gate = threading.Event()

    def hold(conn: Connection) -> str:
        gate.wait(5)  # keeps the writer busy while the next operations queue up
        return "held"

    async def main() -> list[object]:
        first = asyncio.ensure_future(batcher.run(hold))
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(batcher.run(op))
                for op in (_insert("a"), _insert("b"), _insert("a"), _insert("c"))]  # the second "a" breaks UNIQUE
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        held, a, b, dup, c = aio.run(main())
    finally:
        batcher.close()
    assert held == "held"
    assert (a, b, c) == (1, 2, 3)  # each saw the ones before it in queue order
    assert isinstance(dup, Exception) and ("UNIQUE" in str(dup).upper() or "DUPLICATE KEY" in str(dup).upper())
    assert _names(db) == ["a", "b", "c"]
    assert batcher.batches == 1  # the hold; the four failed together, then ran alone (3 kept, 1 refused)


def test_operations_queued_together_commit_together(db: Database) -> None:
    batcher = WriteBatcher(db)
    gate = threading.Event()

    async def main() -> list[object]:
        first = asyncio.ensure_future(batcher.run(lambda conn: gate.wait(5)))
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(batcher.run(_insert(name))) for name in "abcd"]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(first, *rest)

    try:
        assert aio.run(main()) == [True, 1, 2, 3, 4]
    finally:
        batcher.close()
    assert batcher.batches == 2 and batcher.operations == 5  # the hold alone, then the four in one


def test_results_arrive_after_the_commit(db: Database) -> None:
    batcher = WriteBatcher(db)
    seen: list[list[str]] = []

    async def main() -> None:
        await batcher.run(_insert("x"))
        seen.append(await asyncio.to_thread(_names, db))  # another connection sees it already

    try:
        aio.run(main())
    finally:
        batcher.close()
    assert seen == [["x"]]


def test_several_writers_apply_every_operation_once(db: Database) -> None:
    batcher = WriteBatcher(db, writers=3)

    async def main() -> list[object]:
        return await asyncio.gather(*(batcher.run(_insert(f"n{i}")) for i in range(200)))

    try:
        counts = aio.run(main())
    finally:
        batcher.close()
    assert len(counts) == 200 and sorted(_names(db)) == sorted(f"n{i}" for i in range(200))
    assert batcher.operations == 200


def test_grouped_operations_are_applied_together_reports_before_requests(db: Database) -> None:
    """Items queued with the same group function reach it in one call; lower ranks go first whatever
    the queue order; a batch that fails applies every item alone, so only the bad one fails."""
    batcher = WriteBatcher(db)
    gate = threading.Event()
    calls: list[tuple[str, list[str]]] = []

    def make_group(kind: str) -> GroupFn:
        def group(conn: Connection, names: list[str]) -> list[int]:
            calls.append((kind, list(names)))
            out: list[int] = []
            for name in names:
                conn.execute(text("INSERT INTO marks (name) VALUES (:n)"), {"n": f"{kind}-{name}"})
                out.append(conn.execute(text("SELECT count(*) FROM marks")).scalar_one())
            return out
        return group

    asks, reports = make_group("ask"), make_group("report")

    async def main(items: list[tuple[GroupFn, str, int]]) -> list[object]:
        first = asyncio.ensure_future(batcher.run(lambda conn: gate.wait(5)))
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(batcher.run_grouped(group, name, rank)) for group, name, rank in items]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        results = aio.run(main([(asks, "a1", 1), (reports, "r1", 0), (asks, "a2", 1), (reports, "r2", 0)]))
        assert results == [True, 3, 1, 4, 2]  # reports (rank 0) first, then the requests, each in queue order
        assert calls == [("report", ["r1", "r2"]), ("ask", ["a1", "a2"])]
        assert batcher.batches == 2 and batcher.operations == 5

        calls.clear()
        gate.clear()
        dup = aio.run(main([(asks, "b1", 1), (asks, "a1", 1), (asks, "b2", 1)]))  # ask-a1 exists: UNIQUE
    finally:
        batcher.close()
    assert calls[0] == ("ask", ["b1", "a1", "b2"])  # together first, then each alone
    assert sorted(c[1][0] for c in calls[1:]) == ["a1", "b1", "b2"]
    assert dup[1] == 5 and dup[3] == 6 and isinstance(dup[2], Exception)
    assert _names(db) == ["report-r1", "report-r2", "ask-a1", "ask-a2", "ask-b1", "ask-b2"]


def test_operations_run_together_share_one_commit_even_with_an_idle_writer(db: Database) -> None:
    """`run_together` (a finish report that asks for work): however soon the idle writer wakes, the parts
    are one batch, applied in rank order; a failing part fails alone, the others are kept."""
    batcher = WriteBatcher(db)

    def grouped(conn: Connection, names: list[str]) -> list[int]:
        return [_insert(name)(conn) for name in names]

    async def main() -> list[list[object]]:
        answers = []
        for i in range(20):
            answers.append(await batcher.run_together((grouped, f"ask{i}", 1), (grouped, f"report{i}", 0)))
        return answers

    try:
        answers = aio.run(main())
        assert answers == [[2 * i + 2, 2 * i + 1] for i in range(20)]  # the report (rank 0) went first
        assert batcher.batches == 20 and batcher.operations == 40

        async def failing() -> list[object]:
            return await asyncio.gather(batcher.run_together((grouped, "report0", 0), (grouped, "late", 1)),
                                        return_exceptions=True)

        (outcome,) = aio.run(failing())  # report0 exists: UNIQUE
    finally:
        batcher.close()
    assert isinstance(outcome, Exception)
    assert _names(db)[-1] == "late"  # run alone after the batch failed, and kept


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_operation_postgresql_aborts_to_break_a_deadlock_runs_again(db: Database) -> None:
    """Two writers take the same two rows in opposite orders: PostgreSQL aborts one of them to break the
    deadlock, and that one runs again instead of failing its caller."""
    with db.write() as conn:
        conn.execute(text("INSERT INTO marks (name) VALUES ('x'), ('y')"))
    both_hold_one = threading.Barrier(2)
    runs: list[str] = []

    def crossing(first: str, second: str) -> Callable[[Connection], str]:
        def op(conn: Connection) -> str:
            runs.append(first)
            conn.execute(text("UPDATE marks SET name = name WHERE name = :n"), {"n": first})
            if runs.count(first) == 1:  # the first run only: a run again must not wait for the other
                both_hold_one.wait(10)
            conn.execute(text("UPDATE marks SET name = name WHERE name = :n"), {"n": second})
            return first
        return op

    writers = [WriteBatcher(db), WriteBatcher(db)]

    async def main() -> list[str | BaseException]:  # gather gives a list (typeshed says a tuple of two)
        return list(await asyncio.gather(writers[0].run(crossing("x", "y")), writers[1].run(crossing("y", "x")),
                                         return_exceptions=True))

    try:
        results = aio.run(main())
    finally:
        for writer in writers:
            writer.close()
    assert results == ["x", "y"]
    # One of them was aborted and ran again; rarely twice: when the aborted one runs again, PostgreSQL
    # may give it the row the other was waiting for, and they cross once more (seen on a loaded machine).
    assert len(runs) >= 3 and sorted(set(runs)) == ["x", "y"], runs


def test_operations_that_may_wait_are_held_and_queued_together(db: Database) -> None:
    """Operations run with `linger_s` are held on the event loop and share one transaction even when
    they come one after the other, far apart for the writer; one that may not wait goes at once."""
    batcher = WriteBatcher(db)

    def insert_all(conn: Connection, names: list[str]) -> list[int]:
        conn.execute(text("INSERT INTO marks (name) VALUES (:n)"), [{"n": n} for n in names])
        return [conn.execute(text("SELECT count(*) FROM marks")).scalar_one()] * len(names)

    async def main() -> tuple[list[object], object]:
        held = []
        for name in ("a", "b", "c"):  # 20 ms apart: each would be a batch of its own
            held.append(asyncio.ensure_future(batcher.run_grouped(insert_all, name, linger_s=0.5)))
            await asyncio.sleep(0.02)
        alone = await batcher.run(_insert("now"))  # not held: committed while the others wait
        return await asyncio.gather(*held), alone

    try:
        counts, alone = aio.run(main())
    finally:
        batcher.close()
    assert alone == 1
    assert counts == [4, 4, 4]  # one statement for the three, after "now"
    assert batcher.batches == 2
    assert _names(db) == ["now", "a", "b", "c"]
