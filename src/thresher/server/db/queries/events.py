"""The dashboard broadcaster's statements (server/events/): what changed, read once per tick for all tabs.

The grid statements return plain columns in a fixed order, so a 10,000-task job reads as tuples in a
few milliseconds and an unchanged grid compares equal to its last read at C speed.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select

from thresher.model.states import AttemptState
from thresher.server.db.tables import attempts, jobs, layers, nodes, tasks

# The jobs that finished attempts belong to (an attempt's news is its job's news).
JOBS_OF_ATTEMPTS = (select(attempts.c.job_id).where(attempts.c.id.in_(bindparam("attempt_ids", expanding=True)))
                    .distinct())

# State, pause, priority and task total of changed jobs (their counts by state come from views.counts_by_job).
JOB_INFO = (select(jobs.c.id, jobs.c.state, jobs.c.paused, jobs.c.priority, jobs.c.total_tasks)
            .where(jobs.c.id.in_(bindparam("job_ids", expanding=True))))

# What an open task page shows live: its state, live or latest attempt and tries.
WATCHED_TASKS = (select(tasks.c.id, tasks.c.job_id, tasks.c.state, tasks.c.attempt_id, tasks.c.tries)
                 .where(tasks.c.id.in_(bindparam("task_ids", expanding=True))))

# Every node's name, for the grid cells' "which node" column.
NODE_NAMES = select(nodes.c.id, nodes.c.name)

# A job's layers in order: the grid's layer column names them by position.
GRID_LAYERS = select(layers.c.idx, layers.c.name).where(layers.c.job_id == bindparam("job_id")).order_by(layers.c.idx)

# A job's task cells in grid order (layer, then task): the grid's first read into the shared snapshot.
GRID_CELLS = (select(tasks.c.id, layers.c.idx, tasks.c.state, tasks.c.frames, tasks.c.node_id)
              .join(layers, layers.c.id == tasks.c.layer_id).where(tasks.c.job_id == bindparam("job_id"))
              .order_by(layers.c.idx, tasks.c.idx))

# A watched job's task states in id order, re-read while it changes and diffed against the snapshot.
GRID_STATES = (select(tasks.c.id, tasks.c.state, tasks.c.node_id).where(tasks.c.job_id == bindparam("job_id"))
               .order_by(tasks.c.id))

# How many jobs that are not archived are in each state, for the farm summary.
JOBS_BY_STATE = (select(jobs.c.state, func.count().label("n")).where(jobs.c.archived_at.is_(None))
                 .group_by(jobs.c.state))

# Succeeded attempts that ended since a moment, with their frame counts: the frames-per-minute chart.
FRAMES_FINISHED_SINCE = (select(attempts.c.id, attempts.c.ended_at, tasks.c.frame_count)
                         .join(tasks, tasks.c.id == attempts.c.task_id)
                         .where(attempts.c.state == AttemptState.SUCCEEDED, attempts.c.ended_at >= bindparam("since")))
