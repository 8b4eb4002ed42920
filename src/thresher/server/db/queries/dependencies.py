"""Statements of dependencies (`server/dependencies.py`): the edges written at submit, what a job's
waiting tasks wait for, releasing them, and what a wrangler sees and drops.

Releasing reads edges by waiter (`ix_dependencies_waiter`) or by target (`ix_dependencies_target_*`),
never the whole table: a finish report looks up the few edges of the tasks it ended."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, exists, func, insert, literal, or_, select, update

from thresher.model.dependencies import ENDED_TASK_STATES, UNDONE_TASK_STATES, UNENDED_TASK_STATES, Mode
from thresher.model.states import DONE_TASK_STATES, FINAL_JOB_STATES, TaskState
from thresher.server.db.tables import dependencies as d
from thresher.server.db.tables import jobs, layers, tasks

_target = tasks.alias("target_task")
_waiter = tasks.alias("waiter_task")
_target_layer = layers.alias("target_layer")
_waiter_layer = layers.alias("waiter_layer")
_met = or_(_target.c.state.in_(sorted(DONE_TASK_STATES)),
           and_(d.c.mode == Mode.FINISHED, _target.c.state.in_(sorted(ENDED_TASK_STATES))))

# A dependency edge (many at once with executemany).
INSERT_DEPENDENCY = insert(d)

# A layer by its job and name (a dependency on another job's layer names it so).
LAYER_BY_NAME = select(layers.c.id, layers.c.job_id, layers.c.frames).where(layers.c.job_id == bindparam("job_id"),
                                                           layers.c.name == bindparam("name"))

# A layer's tasks as frame spans (id, first, last), for frame-by-frame edges.
LAYER_SPANS = select(tasks.c.frame_start, tasks.c.frame_end, tasks.c.id).where(tasks.c.layer_id == bindparam("layer_id"))

# The jobs these jobs wait for (one step of the walk that refuses a cycle across jobs).
TARGET_JOBS_OF = select(d.c.target_job_id).distinct().where(
    d.c.waiter_job_id.in_(bindparam("job_ids", expanding=True)))

# A job's edges on jobs and layers (not the task ones), with the target's job state and layer name, and
# the target's summary (set when it is archived: its task rows are gone, what its layers' tasks ended as
# is kept there).
COARSE_OF_JOB = (select(d.c.waiter_layer_id, d.c.target_job_id, d.c.target_layer_id, d.c.mode,
                        jobs.c.state.label("target_job_state"), _target_layer.c.name.label("target_layer"),
                        jobs.c.summary.label("target_summary"))
                 .select_from(d.join(jobs, jobs.c.id == d.c.target_job_id)
                              .outerjoin(_target_layer, _target_layer.c.id == d.c.target_layer_id))
                 .where(d.c.waiter_job_id == bindparam("job_id"), d.c.waiter_task_id.is_(None)))



def _some(states: Any) -> Any:
    return exists().where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.state.in_(list(states)))


# What the rule asks of a layer's tasks (`model.dependencies.TaskFacts`): index lookups, not a count.
LAYER_FACTS = select(_some([TaskState.FAILED]).label("failed"), _some([TaskState.KILLED]).label("killed"),
                     _some(UNDONE_TASK_STATES).label("undone"), _some(UNENDED_TASK_STATES).label("unended"),
                     _some([TaskState.WAITING]).label("waiting"))

# A task edge of this waiter not met yet (its target not succeeded, or not ended for `finished`).
_UNMET = exists().select_from(d.join(_target, _target.c.id == d.c.target_task_id)).where(
    d.c.waiter_task_id == tasks.c.id, ~_met)

# A layer's waiting tasks whose own task edges are all met are released (to ready, or paused).
RELEASE_LAYER = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"), tasks.c.state == TaskState.WAITING,
                                    ~_UNMET).values(state=bindparam("b_state"))

# These waiting tasks are released, those whose task edges are all met.
RELEASE_TASKS = update(tasks).where(tasks.c.id.in_(bindparam("b_task_ids", expanding=True)),
                                    tasks.c.state == TaskState.WAITING, ~_UNMET).values(state=bindparam("b_state"))

_HELD_BY_BAD_TASK = (d.c.waiter_job_id == bindparam("job_id"), d.c.waiter_task_id.is_not(None),
                     _waiter.c.state == TaskState.WAITING, d.c.mode == Mode.SUCCESS,
                     _target.c.state.in_([TaskState.FAILED, TaskState.KILLED]))
_TASK_EDGE_ENDS = (d.join(_waiter, _waiter.c.id == d.c.waiter_task_id)
                   .join(_target, _target.c.id == d.c.target_task_id)
                   .join(_target_layer, _target_layer.c.id == _target.c.layer_id))

# The first waiting task of the job held by a task that failed or was killed and had to succeed.
TASK_BLOCKER = (select(d.c.target_job_id, _target.c.layer_id, _target_layer.c.name.label("layer"), _target.c.frames,
                       _target.c.state)
                .select_from(_TASK_EDGE_ENDS).where(*_HELD_BY_BAD_TASK).limit(1))

# Every failed or killed task of that target layer holding a waiting task of the job (their frames named
# together: "frames 1-2 failed", not the first one's), at most `limit`.
TASK_BLOCKERS_IN_LAYER = (select(_target.c.frames, _target.c.state).distinct()
                          .select_from(_TASK_EDGE_ENDS)
                          .where(*_HELD_BY_BAD_TASK, _target.c.layer_id == bindparam("layer_id"))
                          .limit(bindparam("limit")))

# The other jobs whose failed or killed tasks hold waiting tasks of the job (task edges).
TASK_BLOCKER_JOBS = (select(d.c.target_job_id).distinct().select_from(_TASK_EDGE_ENDS)
                     .where(*_HELD_BY_BAD_TASK, d.c.target_job_id != bindparam("job_id")))

# The waiting tasks that wait for any of these tasks, with their job's pause and kill.
WAITERS_OF_TASKS = (select(_waiter.c.id, _waiter.c.job_id, _waiter.c.layer_id, jobs.c.paused, jobs.c.killed)
                    .distinct()
                    .select_from(d.join(_waiter, _waiter.c.id == d.c.waiter_task_id)
                                 .join(jobs, jobs.c.id == _waiter.c.job_id))
                    .where(d.c.target_task_id.in_(bindparam("task_ids", expanding=True)),
                           _waiter.c.state == TaskState.WAITING))

# Unfinished other jobs with an edge on this job (derived again when it changes).
WAITER_JOBS_OF = (select(d.c.waiter_job_id).distinct()
                  .select_from(d.join(jobs, jobs.c.id == d.c.waiter_job_id))
                  .where(d.c.target_job_id == bindparam("job_id"), d.c.waiter_job_id != bindparam("job_id"),
                         jobs.c.state.not_in(sorted(FINAL_JOB_STATES))))

# What a job waits for and what waits for it: one row per pair of (job, layer) ends, task edges counted.
EDGES_OF_JOB = (select(func.min(d.c.id).label("id"), d.c.kind, d.c.mode, d.c.waiter_job_id,
                       _waiter_layer.c.name.label("waiter_layer"), d.c.target_job_id,
                       _target_layer.c.name.label("target_layer"), func.count().label("edges"),
                       func.min(d.c.waiter_task_id).label("waiter_task_id"),
                       func.min(d.c.target_task_id).label("target_task_id"),
                       func.min(d.c.target_layer_id).label("target_layer_id"))
                .select_from(d.outerjoin(_waiter_layer, _waiter_layer.c.id == d.c.waiter_layer_id)
                             .outerjoin(_target_layer, _target_layer.c.id == d.c.target_layer_id))
                .where(or_(d.c.waiter_job_id == bindparam("job_id"), d.c.target_job_id == bindparam("job_id")))
                .group_by(d.c.kind, d.c.mode, d.c.waiter_job_id, _waiter_layer.c.name, d.c.target_job_id,
                          _target_layer.c.name)
                .order_by(d.c.waiter_job_id, _waiter_layer.c.name, d.c.target_job_id, _target_layer.c.name))

# The job and layer names of the other ends, for the pages.
JOB_NAMES = select(jobs.c.id, jobs.c.name, jobs.c.state).where(jobs.c.id.in_(bindparam("job_ids", expanding=True)))

# The jobs at the other ends as the edges show them, with an archived one's summary (its layers' counts:
# its tasks are gone).
END_JOBS = select(jobs.c.id, jobs.c.name, jobs.c.state, jobs.c.summary).where(
    jobs.c.id.in_(bindparam("job_ids", expanding=True)))

# Task counts per state of the layers edges wait for (their states, `model.states.layer_state`), off
# ix_tasks_layer_state.
LAYER_STATE_COUNTS = (select(tasks.c.layer_id, tasks.c.state, func.count().label("n"))
                      .where(tasks.c.layer_id.in_(bindparam("layer_ids", expanding=True)))
                      .group_by(tasks.c.layer_id, tasks.c.state))

# Whether these layers are paused by themselves (`layers.paused`).
LAYERS_PAUSED = select(layers.c.id, layers.c.paused).where(layers.c.id.in_(bindparam("layer_ids", expanding=True)))

# The states of the tasks task edges wait for.
TASK_STATES_OF = select(tasks.c.id, tasks.c.state).where(tasks.c.id.in_(bindparam("task_ids", expanding=True)))

# One task's job, layer and state (a task's edges are added and dropped through its job).
TASK_JOB = select(tasks.c.id, tasks.c.job_id, tasks.c.layer_id, tasks.c.state).where(tasks.c.id == bindparam("task_id"))

# What a layer waits for, its own edges and its job's: (job, layer or none for the whole job).
EDGES_FROM_LAYER = select(d.c.target_job_id, d.c.target_layer_id).distinct().where(
    d.c.waiter_job_id == bindparam("job_id"),
    or_(d.c.waiter_layer_id == bindparam("layer_id"), d.c.waiter_layer_id.is_(None)))

# A job's layers.
LAYER_IDS_OF_JOB = select(layers.c.id).where(layers.c.job_id == bindparam("job_id"))

# The tasks a task waits for.
TASK_TARGETS = select(d.c.target_task_id).where(d.c.waiter_task_id == bindparam("task_id"),
                                                d.c.target_task_id.is_not(None))

# A ready task given a dependency waits again (until `dependencies.release` judges it).
WAIT_AGAIN = update(tasks).where(tasks.c.id == bindparam("b_task_id"), tasks.c.state == TaskState.READY).values(
    state=TaskState.WAITING)

# A job's edges dropped: all of them, or those of one waiting layer or task, or those on one job.
DROP_EDGES = delete(d).where(
    d.c.waiter_job_id == bindparam("job_id"),
    or_(bindparam("layer_id", type_=Integer).is_(None), d.c.waiter_layer_id == bindparam("layer_id", type_=Integer)),
    or_(bindparam("task_id", type_=Integer).is_(None), d.c.waiter_task_id == bindparam("task_id", type_=Integer)),
    or_(bindparam("on_job", type_=Integer).is_(None), d.c.target_job_id == bindparam("on_job", type_=Integer)))

# Whether anything at all waits (the refresher skips the dependency reads for jobs without edges).
HAS_EDGES = select(literal(1)).where(d.c.waiter_job_id == bindparam("job_id")).limit(1)
