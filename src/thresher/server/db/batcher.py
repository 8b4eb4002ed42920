"""Group commit for the agents' hot path: many small write transactions become one.

On a busy farm every agent call (ask for work, report a finish, heartbeat) is a small write
transaction. Run one by one from a pool of worker threads they queue for the database's single
writer (SQLite) or for a commit each (PostgreSQL), and the threads fight over the GIL while they
wait. Here one writer thread takes every operation queued at that moment and applies them inside
one transaction:

- callers hear their result only after the commit, so nothing is announced that could still be lost;
- if an operation raises (or the commit fails), the whole transaction is rolled back and each
  operation of the batch runs again alone, in its own transaction, so one bad operation fails only
  its own caller. Operations on the hot path rarely raise, so this costs less than a savepoint
  around each (two more round trips per operation on PostgreSQL);
- the writer takes whatever is queued and never waits to fill a batch: an idle farm sees no delay.
  Only an operation whose caller can wait says so (`linger_s`): it is held back that long on the
  event loop, with the others that may wait, and they are queued together. An idle agent's heartbeat,
  carried by a poll that is held for seconds anyway, is one: a big idle farm's beats then take a few
  transactions a second instead of one or two each.
- operations queued together (`run_together`, and those held back) are taken by the same batch: a
  finish report that asks for work frees its cores and hands them out again in one commit.

The operations see each other's effects in queue order, exactly as if they had run one after the
other, so rules such as "a task has at most one live attempt" keep holding. Two refinements:

- grouped operations (`run_grouped`): the same kind of call from many agents (reports, requests for
  work) is applied by one function for all of them, which can read and write for all at once: a
  handful of statements per batch instead of a handful per call;
- ranks: a batch applies lower ranks first, queue order within a rank. Reports (which free cores)
  go before requests for work, so an agent that reports and asks again in the same batch sees its
  cores free.

On PostgreSQL several writers may run batches side by side (each on its own connection): the
dispatcher's FOR UPDATE SKIP LOCKED keeps them off each other's tasks, and the hot operations take
no job row locks (those come after the commit, see `lifecycle.unsettled_jobs`). SQLite has one
writer at a time whatever happens, so it gets one writer thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from sqlalchemy import Connection

from thresher.server.db.engine import Database, is_transient

log = logging.getLogger("thresher.server")

# How often an operation alone runs again after PostgreSQL aborted it for another transaction's sake (a
# deadlock it broke): two dispatchers and a finisher may meet on the same rows, and running again is
# all it takes; an error the caller must see is never retried.
_TRANSIENT_CHANCES = 2

T = TypeVar("T")
MAX_BATCH = 64


# Applies a list of items in one transaction; returns one result per item, in order.
GroupFn = Callable[[Connection, list[Any]], list[Any]]


def _call_each(conn: Connection, fns: list[Callable[[Connection], Any]]) -> list[Any]:
    """The group of plain operations: each called in turn."""
    return [fn(conn) for fn in fns]


def in_rounds(items: list[Any], key: Callable[[Any], Any], apply: Callable[[list[Any]], list[Any]]) -> list[Any]:
    """Apply a group whose items must have distinct keys (one node each): an item whose key already came
    earlier in the group goes to a later round, as if it had been queued after. Results in item order."""
    results: list[Any] = [None] * len(items)
    pending = list(enumerate(items))
    while pending:
        seen: set[Any] = set()
        this_round: list[tuple[int, Any]] = []
        later: list[tuple[int, Any]] = []
        for index, item in pending:
            (later if key(item) in seen else this_round).append((index, item))
            seen.add(key(item))
        for (index, _), result in zip(this_round, apply([item for _, item in this_round]), strict=True):
            results[index] = result
        pending = later
    return results


@dataclass
class _Operation:
    group: GroupFn
    item: Any
    rank: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class WriteBatcher:
    """One writer thread applying queued operations in shared transactions (see module docstring)."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH, writers: int = 1, name: str = "writer",
                 observe: Callable[[str, int, float], None] | None = None, read_only: bool = False) -> None:
        self.db = db
        # read_only: the groups only read, each statement seeing what was committed when it started
        # (`Database.peek`: no BEGIN and COMMIT round trips); results are handed out once all ran.
        self._connect = db.peek if read_only else db.write
        self.observe = observe  # told (name, operations, seconds) of each committed batch (server/metrics.py)
        self.max_batch = max_batch
        self.writers = writers
        self.name = name
        # Each entry is operations that go into the same batch (most often one); None stops a writer.
        self._queue: "queue.SimpleQueue[list[_Operation] | None]" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.batches = 0      # transactions committed (for tests and curiosity)
        self.operations = 0   # operations applied
        self._held: list[_Operation] = []  # operations that may wait, until `_release` queues them (event loop)
        self._release_handle: asyncio.TimerHandle | None = None

    async def run(self, fn: Callable[[Connection], T], rank: int = 0) -> T:
        """Apply `fn(conn)` in the next batch; returns its result once the batch has committed."""
        return await self.run_grouped(_call_each, fn, rank)

    async def run_grouped(self, group: GroupFn, item: Any, rank: int = 0, linger_s: float = 0.0) -> Any:
        """Apply `group(conn, [item, ...])` to this item and every other item queued with the same
        group function, in the next batch; returns this item's result once the batch has committed.
        Each item must come out as it would applied alone: a failing batch applies them one by one.
        `linger_s`: the caller may wait that long before the item is queued, with others that may."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._ensure_thread()
        operation = _Operation(group, item, rank, loop, future)
        if linger_s > 0:
            self._hold(operation, linger_s)
        else:
            self._queue.put([operation])
        return await future

    async def run_together(self, *parts: tuple[GroupFn, Any, int]) -> list[Any]:
        """Like `run_grouped` for each `(group, item, rank)`, all in the same batch (one commit), applied
        in rank order; returns their results once it committed. A failing batch applies them one by one,
        as any other."""
        loop = asyncio.get_running_loop()
        self._ensure_thread()
        operations = [_Operation(group, item, rank, loop, loop.create_future()) for group, item, rank in parts]
        self._queue.put(operations)
        return list(await asyncio.gather(*(op.future for op in operations)))

    def _hold(self, operation: _Operation, linger_s: float) -> None:
        """(event loop) Keep an operation that may wait until the first held one has waited `linger_s`,
        or until a batch of them is held."""
        self._held.append(operation)
        if len(self._held) >= self.max_batch:
            self._release()
        elif self._release_handle is None:
            self._release_handle = operation.loop.call_later(linger_s, self._release)

    def _release(self) -> None:
        """(event loop) Queue every held operation as one entry: the writer takes them together."""
        if self._release_handle is not None:
            self._release_handle.cancel()
        held, self._held, self._release_handle = self._held, [], None
        if held:
            self._queue.put(held)

    def close(self) -> None:
        if self._held:  # from the event loop, as everything that holds (the server's shutdown)
            self._release()
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=5)

    # -- the writer thread ----------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    self._threads = [threading.Thread(target=self._loop, name=f"thresher-{self.name}-{i}", daemon=True)
                                     for i in range(self.writers)]
                    for thread in self._threads:
                        thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            stop = False
            while len(batch) < self.max_batch:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is None:
                    stop = True
                    break
                batch.extend(entry)
            try:
                self._apply(batch)
            except Exception:  # the writer must outlive anything an operation does
                log.exception("write batch failed")
            if stop:  # close() queues one stop per writer
                return

    @staticmethod
    def _groups(batch: list[_Operation]) -> list[list[_Operation]]:
        """The batch in application order: by rank, then each group where its first item was queued."""
        groups: dict[tuple[int, GroupFn], list[_Operation]] = {}
        for op in sorted(batch, key=lambda op: op.rank):  # stable: queue order within a rank
            groups.setdefault((op.rank, op.group), []).append(op)
        return list(groups.values())

    def _apply(self, batch: list[_Operation]) -> None:
        applied: list[tuple[_Operation, Any]] = []
        start = time.perf_counter()
        try:
            with self._connect() as conn:
                for group in self._groups(batch):
                    results = group[0].group(conn, [op.item for op in group])
                    applied.extend(zip(group, results, strict=True))
        except Exception as exc:  # noqa: BLE001 - an operation, BEGIN or the commit failed
            if len(batch) == 1 and not is_transient(exc):
                self._settle(batch[0], False, exc)
                return
            # Nothing of the batch was kept: run each operation alone, so only the bad one fails.
            for op in sorted(batch, key=lambda op: op.rank):
                self._apply_alone(op)
            return
        with self._start_lock:
            self.batches += 1
            self.operations += len(batch)
        if self.observe is not None:
            try:
                self.observe(self.name, len(batch), time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - being watched must never keep a caller from its result
                log.exception("write batch observer failed")
        for op, result in applied:
            self._settle(op, True, result)

    def _apply_alone(self, op: _Operation) -> None:
        for chance in range(_TRANSIENT_CHANCES, -1, -1):
            try:
                with self._connect() as conn:
                    (result,) = op.group(conn, [op.item])
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if chance and is_transient(exc):
                    log.info("write lost a race with another transaction (%s); running it again", exc.__class__.__name__)
                    continue
                self._settle(op, False, exc)
            else:
                self._settle(op, True, result)
            return

    @staticmethod
    def _settle(op: _Operation, ok: bool, value: Any) -> None:
        def deliver() -> None:
            if op.future.done():  # the caller went away (client disconnected)
                return
            if ok:
                op.future.set_result(value)
            else:
                op.future.set_exception(value)

        try:
            op.loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass
