"""One `Database` object per server process: connections, transactions and migrations.

SQLite and PostgreSQL differ in how writers meet, so this is the only place that knows:
- SQLite runs in WAL mode; write transactions start with BEGIN IMMEDIATE (no lock upgrades that
  deadlock) and are serialized by an in-process lock so writers queue instead of spinning on
  SQLITE_BUSY. Readers never wait for writers.
- PostgreSQL uses psycopg 3 with a connection pool; the dispatcher's row locks (FOR UPDATE SKIP LOCKED)
  let several server processes hand out work at once. Every round trip counts there: the pool is as
  large as the threads that use it (a connection closed and opened again costs PostgreSQL a backend
  process), a connection is pinged only after it sat idle, and `peek` reads without BEGIN/COMMIT.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"

# PostgreSQL's answers that mean "nothing was wrong with what you asked; run it again": a deadlock it
# broke by aborting this transaction, a serialization failure.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(error: BaseException) -> bool:
    """Did this transaction fail only because another one was in its way (worth running again)?"""
    return isinstance(error, exc.DBAPIError) and getattr(error.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES



# The advisory lock that one migrating server process holds (any number other software does not use;
# server/leader.py holds the one before it).
MIGRATION_LOCK_KEY = 0x7468726573686573


@dataclass(frozen=True)
class PoolSettings:
    """PostgreSQL connections (the server's settings say; these are the defaults).

    `size`: connections kept open. The worker threads (40, anyio's default), the batch writers and the
    housekeeping loop all fit, so a busy server never closes one only to open another.
    `overflow`: connections opened beyond the pool under a burst.
    `ping_after_idle_s`: a connection idle for longer than this is pinged before use (PostgreSQL may
    have restarted, a firewall may have dropped it); one in steady use is not, which saves a round trip
    per transaction."""

    size: int = 50
    overflow: int = 20
    ping_after_idle_s: float = 5.0


class TransactionTimes:
    """How many transactions of each kind (write, read, peek) this process ran and the seconds they
    took (the wait for SQLite's write lock left out): the database time `/metrics` shows (server/metrics.py). Two additions
    under a lock per transaction, so the hot path does not feel it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {"write": [0, 0.0], "read": [0, 0.0], "peek": [0, 0.0]}

    def add(self, kind: str, seconds: float) -> None:
        with self._lock:
            entry = self._times[kind]
            entry[0] += 1
            entry[1] += seconds

    def snapshot(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            return {kind: (int(n), total) for kind, (n, total) in self._times.items()}


_BEFORE_COMMIT = "thresher.before_commit"


def before_commit(conn: Connection, key: str, fn: Callable[[Connection], None]) -> bool:
    """Run `fn(conn)` once (per `key`), just before this PostgreSQL write transaction (`Database.write`)
    commits, after everything else it does: for writes that lock rows which many transactions share,
    so that they hold those locks only to the commit. False, and nothing left for later, when the
    transaction is not one of `Database.write` (the caller then writes at once)."""
    held = conn.info.get(_BEFORE_COMMIT)
    if held is None or held[0] is not conn.get_transaction():
        return False
    held[1].setdefault(key, fn)
    return True


def normalize_url(url: str) -> str:
    """Accept `postgresql://` (what people write) and use the psycopg 3 driver for it."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str, pool: PoolSettings = PoolSettings()) -> None:
        self.url = normalize_url(url)
        self.pool = pool
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self.times = TransactionTimes()
        self.engine = self._make_engine()

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return self._make_pg_engine()
        path = make_url(self.url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            mode = connection.info.pop("begin_mode", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine

    def _make_pg_engine(self) -> Engine:
        engine = create_engine(self.url, pool_size=self.pool.size, max_overflow=self.pool.overflow)
        ping_after_idle_s = self.pool.ping_after_idle_s

        @event.listens_for(engine, "checkin")
        def _idle_from(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
            record.info["idle_since"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _ping_if_idle(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
            idle_since = record.info.get("idle_since")
            if idle_since is None or time.monotonic() - idle_since < ping_after_idle_s:
                return
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as error:  # the pool drops this connection and checks out another
                raise exc.DisconnectionError(f"stale connection: {error}") from error

        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest numbered migration (run at every server start). On PostgreSQL
        under an advisory lock held to the commit: of several server processes starting at once, one
        migrates and the others, once it committed, find nothing left to do."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.write() as connection:
            if not self.is_sqlite:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def _timed(self, kind: str) -> Iterator[None]:
        """Count the time of one transaction of this kind (`times`, the metrics' database time)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times.add(kind, time.perf_counter() - start)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot)."""
        with self._timed("read"), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def peek(self) -> Iterator[Connection]:
        """Reads without a transaction around them: each statement sees what was committed when it
        started. For the hot single-statement looks (is there work for this node? did these reports
        complete a job?) where BEGIN and COMMIT would be two more round trips on PostgreSQL."""
        if self.is_sqlite:  # no round trips to save
            with self.read() as connection:
                yield connection
            return
        with self._timed("peek"), self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; commits on success, rolls back on any exception. On PostgreSQL what was
        left for the end (`before_commit`) runs just before the commit."""
        if self._write_lock is None:
            with self._timed("write"), self.engine.connect() as connection, connection.begin() as transaction:
                hooks: dict[str, Callable[[Connection], None]] = {}
                connection.info[_BEFORE_COMMIT] = (transaction, hooks)
                try:
                    yield connection
                    while hooks:  # a hook may leave another
                        hooks.pop(next(iter(hooks)))(connection)
                finally:
                    connection.info.pop(_BEFORE_COMMIT, None)
            return
        with self._write_lock, self._timed("write"), self.engine.connect() as connection:
            connection.info["begin_mode"] = "IMMEDIATE"
            with connection.begin():
                yield connection

    def dispose(self) -> None:
        self.engine.dispose()
