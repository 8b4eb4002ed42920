"""Fresh planner statistics for PostgreSQL's tasks table.

The dispatcher's candidate query reads the ready tasks off `ix_tasks_dispatch`. PostgreSQL picks that
index only when its statistics say the table is big; right after a job of tens of thousands of tasks
is submitted they still describe the table as it was, and the planner sorts the whole table instead:
20 ms per query instead of 0.7 ms, and dispatch crawls until autovacuum's next visit (a minute or
more). The server therefore re-analyzes the table itself as soon as enough of it has changed.
SQLite's planner needs no statistics to use the index.
"""

from __future__ import annotations

from sqlalchemy import text

from thresher.server.db.engine import Database

MIN_CHANGED_ROWS = 5_000   # below this, stale statistics cannot mislead the planner much
CHANGED_FRACTION = 0.2     # of the live rows, as autovacuum's own analyze threshold but sooner

_STALENESS = text("SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'tasks'")


def refresh_if_stale(db: Database) -> bool:
    """ANALYZE the tasks table when many rows changed since the last analyze; True if it did."""
    if db.is_sqlite:
        return False
    with db.engine.connect() as conn:
        row = conn.execute(_STALENESS).first()
        if row is None or row.n_mod_since_analyze < max(MIN_CHANGED_ROWS, CHANGED_FRACTION * row.n_live_tup):
            conn.rollback()
            return False
        conn.execute(text("ANALYZE tasks"))
        conn.commit()
        return True
