"""Statements of the server's own upkeep of PostgreSQL (`server/db/statistics.py`)."""

from __future__ import annotations

from sqlalchemy import text

# How much of the tasks table changed since PostgreSQL last analyzed it, and how many row versions are dead.
TASKS_STALENESS = text("SELECT n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables "
                       "WHERE relname = 'tasks'")

# Fresh planner statistics and no dead row versions for the tasks table, by this backend alone (PostgreSQL
# 13+): a parallel vacuum (the default for a table with several big indexes) adds workers beside the
# server's own backends; on 2 cores its seconds were among dispatch's slowest (bench/dispatch.py, studio,
# the leader seen waiting on its workers: IPC:ParallelFinish). A chore, it keeps to one core.
VACUUM_ANALYZE_TASKS = text("VACUUM (ANALYZE, PARALLEL 0) tasks")

# Fresh planner statistics for the tasks table.
ANALYZE_TASKS = text("ANALYZE tasks")
