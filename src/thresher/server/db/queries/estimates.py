"""Statements the time estimates read (`server/estimates.py`, the rule in `model/estimate.py`): the
succeeded attempts of a job's layers (the newest 200 of each, so a job of 100,000 tasks stays fast), its tasks left by state with their frames, its running tasks' start and progress; and a node's
recent succeeded attempts with their layers' other attempts, for the node's speed.

Durations are computed by the caller from started_at/ended_at (SQLite and PostgreSQL spell date
arithmetic differently), and so are medians (neither database has one both spell alike).
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from thresher.model.states import AttemptState, TaskState
from thresher.server.db.tables import attempts, tasks

SAMPLES_PER_LAYER = 200     # succeeded attempts of a layer the estimate rests on, newest first
NODE_SAMPLES = 200          # a node's succeeded attempts its speed rests on, newest first

# The newest succeeded tasks of one layer (at most SAMPLES_PER_LAYER, newest task first) with the
# attempt that succeeded (a succeeded task's latest attempt, rule 1): read off ix_tasks_layer_state, so
# a layer of 100,000 tasks costs no more than one of 200. Run once per layer (a job has few).
FINISHED_OF_LAYER = (select(tasks.c.layer_id, tasks.c.frame_count.label("frames"), attempts.c.node_id,
                            attempts.c.started_at, attempts.c.ended_at)
                     .join(attempts, attempts.c.id == tasks.c.attempt_id)
                     .where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.state == TaskState.SUCCEEDED,
                            attempts.c.state == AttemptState.SUCCEEDED, attempts.c.ended_at.is_not(None))
                     .order_by(tasks.c.id.desc()).limit(SAMPLES_PER_LAYER))

# The running tasks of one job: their layer, frames, progress and when their live attempt started.
RUNNING_OF_JOB = (select(tasks.c.layer_id, tasks.c.frame_count.label("frames"), tasks.c.progress,
                         attempts.c.started_at)
                  .join(attempts, attempts.c.id == tasks.c.attempt_id)
                  .where(tasks.c.job_id == bindparam("job_id"), tasks.c.state == TaskState.RUNNING))

# A node's newest succeeded attempts (at most NODE_SAMPLES): their layer, frames and times.
NODE_RECENT = (select(tasks.c.layer_id, tasks.c.frame_count.label("frames"), attempts.c.started_at,
                      attempts.c.ended_at)
               .join(tasks, tasks.c.id == attempts.c.task_id)
               .where(attempts.c.node_id == bindparam("node_id"), attempts.c.state == AttemptState.SUCCEEDED,
                      attempts.c.ended_at.is_not(None))
               .order_by(attempts.c.id.desc()).limit(NODE_SAMPLES))
