"""Which server process does the farm-wide housekeeping: one leader, by a PostgreSQL advisory lock.

Marking silent nodes down, deriving stuck jobs again, sampling usage, retention and refreshing planner
statistics are the farm's chores, not a process's: several processes doing them at once only repeat the
work and contend for the same rows. Each process tries for one session-level advisory lock on a
connection of its own; the one holding it leads. The lock is the connection's: when the leader dies
(kill -9 included) PostgreSQL ends its session and frees the lock, and the next process to try takes
over within `LeaderLock.check`'s period. On SQLite one process serves a database, so it always leads.

What each process keeps doing for itself: waking its own waiting agents (its look for news) and its
dashboards.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from thresher.server.peers import libpq_url

log = logging.getLogger("thresher.server.leader")

# The advisory lock's key (any 64-bit number other software on the database does not use; the one after
# it is the migration lock, `db.engine.MIGRATION_LOCK_KEY`).
LEADER_KEY = 0x7468726573686572        # "thresher"


class LeaderLock:
    """Whether this process leads (see the module's text). `check` is blocking: call it from a thread."""

    def __init__(self, db_url: str | None) -> None:
        self.conninfo = libpq_url(db_url) if db_url else None
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self.leading = self.conninfo is None

    def check(self) -> bool:
        """Whether this process leads now: keeps the lock it holds (its connection still answers), or
        tries to take it."""
        if self.conninfo is None:
            return True
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.conninfo, autocommit=True)
                    self.leading = False
                if self.leading:
                    self._conn.execute("SELECT 1")  # the session, and with it the lock, still there
                    return True
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)).fetchone()
                self.leading = bool(row and row[0])
                if self.leading:
                    log.info("this server process now does the farm's housekeeping")
            except psycopg.Error as error:
                if self.leading:
                    log.warning("lost the housekeeping lock's connection (%s); another process may take over", error)
                self._drop()
            return self.leading

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None
        self.leading = False

    def release(self) -> None:
        with self._lock:
            self._drop()
            self.leading = self.conninfo is None
