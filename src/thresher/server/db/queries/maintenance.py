"""Statements of the server's own upkeep of PostgreSQL (`server/db/statistics.py`)."""

from __future__ import annotations

from sqlalchemy import text

# How much of the tasks table changed since PostgreSQL last analyzed it, and how many row versions are dead.
TASKS_STALENESS = text("SELECT n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables "
                       "WHERE relname = 'tasks'")

# Fresh planner statistics and no dead row versions for the tasks table, by this backend alone: a parallel
# vacuum (PostgreSQL's default for a table with several big indexes) starts workers that took every core
# of a 2-core server for the second it ran, and dispatch stalled with it (bench/dispatch.py, studio).
VACUUM_ANALYZE_TASKS = text("VACUUM (ANALYZE, PARALLEL 0) tasks")

# Fresh planner statistics for the tasks table.
ANALYZE_TASKS = text("ANALYZE tasks")
