"""Fresh planner statistics (and few dead row versions) for PostgreSQL's tasks table.

The dispatcher's candidate query reads the ready tasks off `ix_tasks_ready`. PostgreSQL picks that
index only when its statistics say the table is big; right after a job of tens of thousands of tasks
is submitted they still describe the table as it was, and the planner sorts the whole table instead:
20 ms per query instead of 0.7 ms, and dispatch crawls until autovacuum's next visit (a minute or
more). The server therefore re-analyzes the table itself as soon as enough of it has changed.
SQLite's planner needs no statistics to use the index.
"""

from __future__ import annotations

from typing import Protocol

from thresher.server.db.engine import Database
from thresher.server.db.queries import maintenance as q


class Thresholds(Protocol):
    """How much of the table must have changed (the server's settings): below `statistics_min_changed_rows`
    stale statistics cannot mislead the planner much; `statistics_changed_fraction` of the live rows is
    autovacuum's own kind of threshold, but acted on sooner."""

    statistics_min_changed_rows: int
    statistics_changed_fraction: float


def refresh_if_stale(db: Database, thresholds: Thresholds) -> bool:
    """ANALYZE the tasks table when many rows changed since the last analyze, VACUUM it too when many
    row versions are dead; True if it did either.

    Every task state change leaves a dead row version whose entries stay in the dispatch index until
    a vacuum; the candidate query walks over them, slower and slower as a big job progresses, while
    autovacuum visits only once a minute. Vacuuming alongside the analyze keeps that walk short."""
    if db.is_sqlite:
        return False
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(q.TASKS_STALENESS).first()
        if row is None:
            return False
        threshold = max(thresholds.statistics_min_changed_rows,
                        thresholds.statistics_changed_fraction * row.n_live_tup)
        if row.n_dead_tup >= threshold:
            conn.execute(q.VACUUM_ANALYZE_TASKS)
            return True
        if row.n_mod_since_analyze >= threshold:
            conn.execute(q.ANALYZE_TASKS)
            return True
        return False
