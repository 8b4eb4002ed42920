"""Statements of people steering jobs and tasks (`server/lifecycle.py`): kill, pause, resume, retry,
skip, priority."""

from __future__ import annotations

from sqlalchemy import bindparam, false, func, select, update

from thresher.model.states import AttemptState, TaskState
from thresher.server.db.tables import attempts, jobs, layers, tasks

# Task states a person may move a task out of by hand (besides running).
STEERABLE_TASK_STATES = (TaskState.READY, TaskState.WAITING, TaskState.PAUSED, TaskState.HELD)

# One job, whole.
JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))

# A job's layer by name.
LAYER_OF_JOB = select(layers.c.id).where(layers.c.job_id == bindparam("job_id"), layers.c.name == bindparam("name"))

# One task's job and state.
TASK_JOB_AND_STATE = select(tasks.c.job_id, tasks.c.state).where(tasks.c.id == bindparam("task_id"))

# The running tasks of a job, with their live attempt and node.
RUNNING_IN_JOB = select(tasks.c.attempt_id, tasks.c.node_id).where(
    tasks.c.job_id == bindparam("job_id"), tasks.c.state == TaskState.RUNNING)

# The task, with its live attempt and node, if it is running.
RUNNING_TASK = select(tasks.c.attempt_id, tasks.c.node_id).where(
    tasks.c.id == bindparam("task_id"), tasks.c.state == TaskState.RUNNING)

# The server asks the agents running these attempts to stop them, and says why ("job killed by ana"): the
# attempt keeps that reason when its agent reports it killed (`lifecycle._finish_one`).
MARK_KILLING = update(attempts).where(
    attempts.c.id.in_(bindparam("attempt_ids", expanding=True)), attempts.c.state == AttemptState.RUNNING
).values(state=AttemptState.KILLING, reason=bindparam("b_reason"))

# Every unfinished task of a job is killed.
KILL_JOB_TASKS = update(tasks).where(
    tasks.c.job_id == bindparam("b_job_id"), tasks.c.state.in_([*STEERABLE_TASK_STATES, TaskState.RUNNING])
).values(state=TaskState.KILLED, ended_at=bindparam("now"))

# Whether a job was killed or paused by a person (its state is derived from this and its tasks).
SET_JOB_KILLED = update(jobs).where(jobs.c.id == bindparam("job_id")).values(killed=bindparam("b_killed"))
SET_JOB_PAUSED = update(jobs).where(jobs.c.id == bindparam("job_id")).values(paused=bindparam("b_paused"))

# A job's tasks in one state move to another (pause: ready -> paused; resume: paused -> ready).
MOVE_JOB_TASKS = update(tasks).where(
    tasks.c.job_id == bindparam("b_job_id"), tasks.c.state == bindparam("from_state")
).values(state=bindparam("to_state"))

# These tasks of a job, with their states (to check a retry of named tasks).
JOB_TASKS_BY_ID = select(tasks.c.id, tasks.c.state).where(
    tasks.c.job_id == bindparam("job_id"), tasks.c.id.in_(bindparam("task_ids", expanding=True)))

# Named tasks of a job get a fresh set of tries and losses (they go through the dependency check again).
RETRY_JOB_TASKS = update(tasks).where(
    tasks.c.job_id == bindparam("b_job_id"), tasks.c.id.in_(bindparam("task_ids", expanding=True))
).values(state=bindparam("b_state"), tries=0, lost=0, ended_at=None)

# Every failed or killed task of a job gets a fresh set of tries and losses.
RETRY_FAILED_TASKS = update(tasks).where(
    tasks.c.job_id == bindparam("b_job_id"), tasks.c.state.in_([TaskState.FAILED, TaskState.KILLED])
).values(state=bindparam("b_state"), tries=0, lost=0, ended_at=None)

# A retried job is no longer killed nor finished.
REOPEN_JOB = update(jobs).where(jobs.c.id == bindparam("job_id")).values(killed=False, finished_at=None)

# One task ends by hand: skipped (counted done) or killed.
END_TASK = update(tasks).where(tasks.c.id == bindparam("task_id")).values(
    state=bindparam("b_state"), ended_at=bindparam("now"))

# A job's priority, copied onto its tasks (the dispatch order reads it from the task rows).
SET_JOB_PRIORITY = update(jobs).where(jobs.c.id == bindparam("job_id")).values(priority=bindparam("b_priority"))
SET_TASKS_PRIORITY = update(tasks).where(tasks.c.job_id == bindparam("b_job_id")).values(
    priority=bindparam("b_priority"))

# ---------------------------------------------------------------- one layer at a time (`server/layer_steering.py`)

# A job's layer by name, with its id (the layer actions name layers as the spec did).
LAYER_BY_NAME = select(layers.c.id, layers.c.name, layers.c.paused).where(layers.c.job_id == bindparam("job_id"),
                                                         layers.c.name == bindparam("name"))

# A layer's tasks in some states, with their live attempt and node.
LAYER_TASKS_IN = select(tasks.c.id, tasks.c.state, tasks.c.attempt_id, tasks.c.node_id).where(
    tasks.c.layer_id == bindparam("layer_id"), tasks.c.state.in_(bindparam("states", expanding=True)))

# A layer's tasks in one state move to another (pause: ready -> paused; resume: paused -> ready).
MOVE_LAYER_TASKS = update(tasks).where(
    tasks.c.layer_id == bindparam("b_layer_id"), tasks.c.state == bindparam("from_state")
).values(state=bindparam("to_state"))

# Whether a person paused this layer by itself (`layers.paused`, migration 0012).
LAYER_PAUSED = select(layers.c.paused.label("layer_paused")).where(layers.c.id == bindparam("layer_id"))

# Whether a layer's tasks freed now wait as paused: its job is paused, or the layer is.
PAUSE_OF_LAYER = (select(jobs.c.paused.label("job_paused"), layers.c.paused.label("layer_paused"))
                  .select_from(layers.join(jobs, jobs.c.id == layers.c.job_id))
                  .where(jobs.c.id == bindparam("job_id"), layers.c.id == bindparam("layer_id")))

# A layer's own pause set or lifted (`server/layer_steering.py`).
SET_LAYER_PAUSED = update(layers).where(layers.c.id == bindparam("layer_id")).values(paused=bindparam("b_paused"))

# A layer's tasks by state (what an action on it would change: `model/steering_rule.layer_refusal`).
LAYER_TASK_COUNTS = (select(tasks.c.state, func.count().label("n")).where(tasks.c.layer_id == bindparam("layer_id"))
                     .group_by(tasks.c.state))

# A job's paused tasks become ready again, but for the layers paused by themselves (a job's resume leaves
# those alone: `server/layer_pause.py`).
RESUME_JOB_TASKS = update(tasks).where(
    tasks.c.job_id == bindparam("b_job_id"), tasks.c.state == TaskState.PAUSED,
    tasks.c.layer_id.in_(select(layers.c.id).where(layers.c.job_id == bindparam("b_job_id"),
                                                   layers.c.paused == false()))
).values(state=TaskState.READY)

# A layer's tasks in some states end by hand: skipped (counted done) or killed.
END_LAYER_TASKS = update(tasks).where(
    tasks.c.layer_id == bindparam("b_layer_id"), tasks.c.state.in_(bindparam("from_states", expanding=True))
).values(state=bindparam("b_state"), ended_at=bindparam("now"))
