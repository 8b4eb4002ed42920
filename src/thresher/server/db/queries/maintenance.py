"""Statements of the server's own upkeep of PostgreSQL (`server/db/statistics.py`)."""

from __future__ import annotations

from sqlalchemy import text

# How much of the tasks table changed since PostgreSQL last analyzed it, and how many row versions are dead.
TASKS_STALENESS = text("SELECT n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables "
                       "WHERE relname = 'tasks'")

# Fresh planner statistics and no dead row versions for the tasks table.
VACUUM_ANALYZE_TASKS = text("VACUUM (ANALYZE) tasks")

# Fresh planner statistics for the tasks table.
ANALYZE_TASKS = text("ANALYZE tasks")
