"""Statements of scout frames (`server/scouts.py`): the scout tasks marked and the rest held at
submit, what holds a layer, and its held tasks released."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, or_, select, update

from thresher.model.states import TaskState
from thresher.server.db.tables import layers, tasks

# The tasks of a new layer at these indices hold scout frames.
MARK_SCOUT_TASKS = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"),
                                       tasks.c.idx.in_(bindparam("b_indices", expanding=True))).values(scout=True)

# A new layer's other tasks are held until its scouts are done (or a person releases them).
HOLD_OTHERS = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"),
                                  tasks.c.scout.is_(False)).values(state=TaskState.HELD)

# The layers with scout frames among these tasks, with their scout record.
SCOUT_LAYERS_OF_TASKS = (select(layers.c.id, layers.c.job_id, layers.c.name, layers.c.scout, layers.c.chunk_decision)
                         .where(layers.c.id.in_(select(tasks.c.layer_id).where(
                             tasks.c.id.in_(bindparam("task_ids", expanding=True)), tasks.c.scout.is_(True))))
                         .order_by(layers.c.job_id, layers.c.id))

# A layer's scout tasks counted by state.
SCOUT_COUNTS = (select(tasks.c.state, func.count().label("n"))
                .where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.scout.is_(True)).group_by(tasks.c.state))

# The layers of a job that hold tasks back, with their scout record.
HELD_LAYERS_OF_JOB = (select(layers.c.id, layers.c.job_id, layers.c.name, layers.c.scout, layers.c.chunk_decision)
                      .where(layers.c.job_id == bindparam("job_id"),
                             exists().where(tasks.c.layer_id == layers.c.id, tasks.c.state == TaskState.HELD))
                      .order_by(layers.c.idx))

# A layer's held tasks are let go: to waiting, where the dependency check decides (`dependencies.release`).
RELEASE_HELD = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"),
                                   tasks.c.state == TaskState.HELD).values(state=TaskState.WAITING)

# A layer's scout record, rewritten (released, by whom).
SET_LAYER_SCOUT = update(layers).where(layers.c.id == bindparam("b_layer_id")).values(scout=bindparam("b_scout"))

# Task states a scout may be changed in: none of the layer's tasks has started.
NOT_STARTED = (TaskState.HELD, TaskState.READY, TaskState.WAITING, TaskState.PAUSED)

# A layer by its job and name, with its frames and scout record.
LAYER_BY_NAME = select(layers.c.id, layers.c.job_id, layers.c.name, layers.c.frames, layers.c.scout,
                       layers.c.chunk_decision).where(layers.c.job_id == bindparam("job_id"),
                                                      layers.c.name == bindparam("name"))

# A layer's tasks with their frames.
LAYER_TASK_FRAMES = select(tasks.c.id, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end).where(
    tasks.c.layer_id == bindparam("layer_id"))

# Some task of the layer started (ran, runs, ended, or was tried).
LAYER_STARTED = select(exists().where(
    tasks.c.layer_id == bindparam("layer_id"),
    or_(tasks.c.state.not_in(NOT_STARTED), tasks.c.tries > 0, tasks.c.attempt_id.is_not(None))))

# The layer's scout marks set again: these tasks are its scouts, the others not.
SET_SCOUT_MARKS = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id")).values(
    scout=tasks.c.id.in_(bindparam("b_task_ids", expanding=True)))

# Its scouts wait (the dependency check decides), the others are held; only tasks not started.
SCOUTS_WAIT = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"), tasks.c.scout.is_(True),
                                  tasks.c.state.in_(NOT_STARTED)).values(state=TaskState.WAITING)
OTHERS_HELD = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"), tasks.c.scout.is_(False),
                                  tasks.c.state.in_(NOT_STARTED)).values(state=TaskState.HELD)
