"""Statements of job state and dependencies (`server/lifecycle.py`): a job's state derived from its
tasks, layers and jobs released when what they wait for is done."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, or_, select, text, update

from thresher.model.states import DONE_TASK_STATES, JobState, TaskState
from thresher.server.db.tables import jobs, layers, tasks

# Deriving a job's state reads its other tasks. Two reports ending a job's last tasks at once would each
# see the other still running (READ COMMITTED) and neither would complete it; whoever takes this row lock
# last sees every finish committed before it. SQLite serializes writers already (no FOR UPDATE there).
LOCK_JOB = select(jobs).where(jobs.c.id == bindparam("job_id")).with_for_update()

# How many of a job's tasks are in each state.
TASK_COUNTS = (select(tasks.c.state, func.count().label("n")).where(tasks.c.job_id == bindparam("job_id"))
               .group_by(tasks.c.state))

# A job's derived state, and when it finished (None while it is not over).
SET_JOB_STATE = update(jobs).where(jobs.c.id == bindparam("job_id")).values(
    state=bindparam("b_state"), finished_at=bindparam("b_finished_at"))

# Jobs whose tasks just started are running (a job with a running task is running, whatever else it
# has). A job row someone else holds (a person pausing or killing it, a report completing it) is
# skipped, not waited on: waiting while holding the claimed task rows could deadlock with them, and the
# job's state is derived again whenever its tasks change.
JOBS_STARTED = update(jobs).where(jobs.c.id.in_(
    select(jobs.c.id).where(jobs.c.id.in_(bindparam("job_ids", expanding=True)),
                            jobs.c.state != JobState.RUNNING, jobs.c.killed.is_(False))
    .with_for_update(skip_locked=True).scalar_subquery())).values(state=JobState.RUNNING)

# After a report: is the layer still open, and has the job still work queued or running? One round trip.
# The job is busy when the reported task's layer (one of its own) has a task queued or running, asked
# first, off ix_tasks_layer_state; only when it has none is the whole job asked (PostgreSQL runs the
# second look only then). Asked of the job alone, PostgreSQL's planner walked the table from its start
# for the job's first row (its estimate of where they lie: anywhere), 30 ms a report batch with twenty
# jobs of 5,000 tasks (bench/dispatch.py, studio scenario), inside the write batch that settles it.
_BUSY = [TaskState.READY, TaskState.RUNNING]
LAYER_OPEN_JOB_BUSY = select(
    exists().where(tasks.c.layer_id == bindparam("layer_id"),
                   tasks.c.state.not_in(list(DONE_TASK_STATES))).label("layer_open"),
    or_(exists().where(tasks.c.layer_id == bindparam("layer_id"), tasks.c.state.in_(_BUSY)),
        exists().where(tasks.c.job_id == bindparam("job_id"), tasks.c.state.in_(_BUSY))).label("job_busy"))
# PostgreSQL: the same for many (job, layer) pairs in one round trip (the settle check of a whole batch of
# reports: twenty-odd pairs, each a round trip of its own before), same looks and same order per pair.
_DONE_SQL = ", ".join(f"'{state}'" for state in sorted(DONE_TASK_STATES))
_BUSY_SQL = ", ".join(f"'{state}'" for state in _BUSY)
LAYERS_OPEN_JOBS_BUSY_PG = text(f"""
SELECT p.job_id, p.layer_id,
       EXISTS (SELECT 1 FROM tasks t WHERE t.layer_id = p.layer_id AND t.state NOT IN ({_DONE_SQL})) AS layer_open,
       (EXISTS (SELECT 1 FROM tasks t WHERE t.layer_id = p.layer_id AND t.state IN ({_BUSY_SQL}))
        OR EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = p.job_id AND t.state IN ({_BUSY_SQL}))) AS job_busy
FROM unnest(CAST(:job_ids AS integer[]), CAST(:layer_ids AS integer[])) AS p(job_id, layer_id)
""")

# Running jobs with nothing queued or running (a crash between a report and the check after it).
STUCK_JOBS = select(jobs.c.id).where(
    jobs.c.state == JobState.RUNNING,
    ~exists().where(tasks.c.job_id == jobs.c.id, tasks.c.state.in_([TaskState.READY, TaskState.RUNNING])))

# One task of the layer that is not done yet, if any (a layer is done when all its tasks are).
LAYER_UNDONE_TASK = select(tasks.c.id).where(
    tasks.c.layer_id == bindparam("layer_id"), tasks.c.state.not_in(list(DONE_TASK_STATES))).limit(1)

# How many of these jobs succeeded (a job waits until every job it depends on did).
JOBS_SUCCEEDED = select(func.count()).where(jobs.c.id.in_(bindparam("job_ids", expanding=True)),
                                            jobs.c.state == JobState.SUCCEEDED)

# A job's layers with what each waits for.
JOB_LAYERS = select(layers.c.id, layers.c.name, layers.c.depends_on).where(layers.c.job_id == bindparam("job_id"))

# One waiting task of the layer, if any.
LAYER_WAITING_TASK = select(tasks.c.id).where(
    tasks.c.layer_id == bindparam("layer_id"), tasks.c.state == TaskState.WAITING).limit(1)

# A layer's waiting tasks are released: to ready, or to paused in a paused job.
RELEASE_LAYER = update(tasks).where(tasks.c.layer_id == bindparam("b_layer_id"),
                                    tasks.c.state == TaskState.WAITING).values(state=bindparam("b_state"))

# Waiting jobs with what they depend on (those that waited for a job that just succeeded are derived again).
WAITING_JOBS = select(jobs.c.id, jobs.c.depends_on).where(jobs.c.state == JobState.WAITING)
