"""Statements of `chunk: auto` (`server/auto_chunk.py`): what the measuring tasks took, the held tasks
rewritten into chunks, their task edges carried over."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, or_, select, update

from thresher.model.dependencies import EDGE_COLUMNS
from thresher.model.states import AttemptState, TaskState
from thresher.server.db.tables import attempts, dependencies, jobs, layers, tasks

d = dependencies

# The succeeded scout tasks of a layer with how long their succeeding attempt ran.
MEASURED = (select(tasks.c.id, tasks.c.frames, tasks.c.frame_count, attempts.c.started_at, attempts.c.ended_at)
            .join(attempts, attempts.c.id == tasks.c.attempt_id)
            .where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.scout.is_(True),
                   tasks.c.state == TaskState.SUCCEEDED, attempts.c.state == AttemptState.SUCCEEDED)
            .order_by(tasks.c.idx))

# A layer's held tasks (never started: dispatch never reads held), with what the rewrite copies.
HELD_TASKS = (select(tasks).where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.state == TaskState.HELD,
                                  tasks.c.attempt_id.is_(None)).order_by(tasks.c.idx))

# The task edges (frame by frame, task on task) touching these tasks, either end, as they are now.
EDGES_OF_TASKS = (select(*(d.c[name] for name in EDGE_COLUMNS))
                  .where(or_(d.c.waiter_task_id.in_(bindparam("task_ids", expanding=True)),
                             d.c.target_task_id.in_(bindparam("task_ids", expanding=True))))
                  .order_by(d.c.id))

# The edges of these tasks, either end, go with them.
DELETE_EDGES_OF_TASKS = delete(d).where(or_(d.c.waiter_task_id.in_(bindparam("b_task_ids", expanding=True)),
                                            d.c.target_task_id.in_(bindparam("b_task_ids", expanding=True))))

# These tasks are deleted (held ones, rewritten).
DELETE_TASKS = delete(tasks).where(tasks.c.id.in_(bindparam("b_task_ids", expanding=True)))

# A layer's held tasks with these indices (the rewritten ones, found again after their insert).
TASK_IDS_AT = select(tasks.c.idx, tasks.c.id).where(
    tasks.c.layer_id == bindparam("layer_id"), tasks.c.idx.in_(bindparam("indices", expanding=True)),
    tasks.c.state == TaskState.HELD)

# The layer's chunk size, what decided it, and its task count after the rewrite.
SET_LAYER_CHUNK = update(layers).where(layers.c.id == bindparam("b_layer_id")).values(
    chunk=bindparam("b_chunk"), chunk_decision=bindparam("b_decision"), total_tasks=bindparam("b_total"))

# A layer's task count.
LAYER_TASK_COUNT = select(func.count()).where(tasks.c.layer_id == bindparam("layer_id"))

# A job's task count, after one of its layers was rewritten.
SET_JOB_TOTAL = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(
    total_tasks=select(func.count()).where(tasks.c.job_id == bindparam("b_job_id")).scalar_subquery())
