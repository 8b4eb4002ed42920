"""The `/metrics` scrape's one statement (server/metrics.py): the farm counted by state, once per scrape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnClause, func, literal_column, select, union_all

from thresher.server.db.tables import jobs, nodes, tasks, usage

_ZERO: ColumnClause[Any] = literal_column("0")

# One round trip: jobs (not archived), tasks and nodes (not removed) counted by state, the nodes' cores
# summed; and what runs now from the usage counters the claims keep (each attempt is booked once under
# its project's key `project:N`), so cores in use cost no read of the tasks. The tasks' count can read
# the index ix_tasks_job_state instead of the table. Rows: (kind, state, n, cores, gpus).
FARM_BY_STATE = union_all(
    select(literal_column("'job'").label("kind"), jobs.c.state.label("state"), func.count().label("n"),
           _ZERO.label("cores"), _ZERO.label("gpus"))
    .where(jobs.c.archived_at.is_(None)).group_by(jobs.c.state),
    select(literal_column("'task'"), tasks.c.state, func.count(), _ZERO, _ZERO).group_by(tasks.c.state),
    select(literal_column("'node'"), nodes.c.state, func.count(), func.coalesce(func.sum(nodes.c.cores), 0), _ZERO)
    .where(nodes.c.removed_at.is_(None)).group_by(nodes.c.state),
    select(literal_column("'usage'"), literal_column("'in_use'"), _ZERO, func.coalesce(func.sum(usage.c.cores), 0),
           func.coalesce(func.sum(usage.c.gpus), 0))
    .where(usage.c.key.like("project:%"), usage.c.key.not_like("%/%")),
)
