"""The hot-path statements, built once and named, so the dispatcher and the report handler reuse them.

Building a SQLAlchemy statement costs more than running a small indexed query; statements built at
import time with bind parameters are compiled once per dialect and their cache keys are memoized.
Everything here is plain SQLAlchemy Core over `tables.py`, so SQLite and PostgreSQL read the same text.
"""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, insert, literal_column, select, text, update

from thresher.model.states import LIVE_ATTEMPT_STATES, AttemptState, JobState, NodeState, TaskState
from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import attempts, jobs, layers, nodes, tag_sets, tasks

# -- dispatch --------------------------------------------------------------------------------

NODE_LIVE = select(attempts.c.id, attempts.c.state, attempts.c.cores, attempts.c.memory_mb, attempts.c.gpu_ids).where(
    attempts.c.node_id == bindparam("node_id"), attempts.c.state.in_(LIVE_ATTEMPT_STATES))


_NODE_IDS = ids_in(nodes.c.id, "node_ids")
_ATTEMPT_NODE_IDS = ids_in(attempts.c.node_id, "node_ids")

# Several agents asking for work in one write batch: their nodes and live attempts in two statements.
NODES_BY_ID = per_dialect(lambda d: select(nodes).where(_NODE_IDS[d]))
NODES_LIVE = per_dialect(lambda d: select(attempts.c.node_id, attempts.c.id, attempts.c.state, attempts.c.cores,
                                          attempts.c.memory_mb, attempts.c.gpu_ids)
                         .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES)))

TAG_KEYS = select(tag_sets.c.key)

# The dispatch order: highest priority, then the oldest job, then frame order, read off the partial
# index of ready tasks (ix_tasks_ready). The state is spelled as a literal, not a bound parameter: a
# planner can use a partial index only for a condition it sees matches the index's (SQLite always,
# PostgreSQL in its generic plans for prepared statements).
assert TaskState.READY.value == "ready"
CANDIDATES = (
    select(tasks.c.id, tasks.c.job_id, tasks.c.layer_id, tasks.c.cores, tasks.c.memory_mb, tasks.c.gpus,
           tasks.c.tag_key, tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end, tasks.c.frame_step,
           tasks.c.frame_count, tasks.c.part)
    .where(tasks.c.state == literal_column("'ready'"),
           tasks.c.tag_key.in_(bindparam("keys", expanding=True)),
           tasks.c.cores <= bindparam("free_cores"),
           tasks.c.memory_mb <= bindparam("free_memory"),
           tasks.c.gpus <= bindparam("free_gpus"))
    .order_by(tasks.c.priority.desc(), tasks.c.job_id, tasks.c.id)
    .limit(bindparam("limit"))
)
# Is any task ready at all? One step into the partial index of ready tasks: an idle farm's periodic
# look for news (dispatch.nodes_with_news) then reads no node and no candidate.
ANY_READY = select(tasks.c.id).where(tasks.c.state == literal_column("'ready'")).limit(1)
# Of these nodes, those with an attempt to kill (ix_attempts_node_state).
KILLING_ON_NODES = per_dialect(lambda d: select(attempts.c.node_id).distinct().where(
    _ATTEMPT_NODE_IDS[d], attempts.c.state == AttemptState.KILLING.value))
# Several server processes on PostgreSQL: rows another dispatcher is claiming are skipped, not waited on.
CANDIDATES_LOCKED = CANDIDATES.with_for_update(skip_locked=True, of=tasks)

LAST_ATTEMPT_NUMBERS = (select(attempts.c.task_id, func.max(attempts.c.number))
                        .where(attempts.c.task_id.in_(bindparam("task_ids", expanding=True)))
                        .group_by(attempts.c.task_id))

# Executed with one parameter set per claimed task (one INSERT ... RETURNING for the whole answer).
INSERT_ATTEMPTS = insert(attempts).returning(attempts.c.id, sort_by_parameter_order=True)

# PostgreSQL: the whole claim of an answer in one statement and one round trip. One array per column,
# so the text never changes with the number of tasks and psycopg converts and prepares it once (a
# multi-row VALUES list of over 50 parameters it converts anew on every call). It numbers and inserts
# the attempts, claims their tasks with the same compare-and-set as CLAIM_TASK (a task not claimed is
# reported, and its attempt deleted by the caller), and marks the jobs running as JOBS_RUNNING does.
# The candidate rows are ours already (FOR UPDATE SKIP LOCKED), so the numbering cannot race.
CLAIM_PG = text(
    "WITH v AS (SELECT * FROM unnest(CAST(:task_ids AS integer[]), CAST(:job_ids AS integer[]), "
    "  CAST(:node_ids AS integer[]), CAST(:cores AS integer[]), CAST(:memory AS integer[]), CAST(:gpu_ids AS text[])) "
    "  AS v(task_id, job_id, node_id, cores, memory_mb, gpu_ids)), "
    "ins AS (INSERT INTO attempts (task_id, job_id, number, node_id, state, cores, memory_mb, gpu_ids, started_at, log_size) "
    "  SELECT v.task_id, v.job_id, COALESCE((SELECT max(a.number) FROM attempts a WHERE a.task_id = v.task_id), 0) + 1, "
    "    v.node_id, :attempt_state, v.cores, v.memory_mb, CAST(v.gpu_ids AS json), :now, 0 FROM v "
    "  RETURNING id, task_id, node_id), "
    "claimed AS (UPDATE tasks SET state = :running, attempt_id = ins.id, node_id = ins.node_id, started_at = :now, "
    "    ended_at = NULL, progress = 0 "
    "  FROM ins WHERE tasks.id = ins.task_id AND tasks.state = :ready RETURNING tasks.id), "
    "started AS (UPDATE jobs SET state = :job_running WHERE id IN (SELECT id FROM jobs "
    "  WHERE id IN (SELECT job_id FROM v) AND state <> :job_running AND NOT killed FOR UPDATE SKIP LOCKED)) "
    "SELECT ins.id, ins.task_id, claimed.id IS NOT NULL AS claimed FROM ins LEFT JOIN claimed ON claimed.id = ins.task_id"
).bindparams(attempt_state=AttemptState.RUNNING.value, running=TaskState.RUNNING.value, ready=TaskState.READY.value,
             job_running=JobState.RUNNING.value)

CLAIMED_BY = select(tasks.c.id).where(tasks.c.id.in_(bindparam("task_ids", expanding=True)),
                                     tasks.c.attempt_id.in_(bindparam("attempt_ids", expanding=True)))

# The compare-and-set that makes "at most one live attempt per task" hold.
CLAIM_TASK = update(tasks).where(tasks.c.id == bindparam("b_task_id"), tasks.c.state == TaskState.READY.value).values(
    state=TaskState.RUNNING.value, attempt_id=bindparam("b_attempt_id"), node_id=bindparam("b_node_id"),
    started_at=bindparam("b_now"), ended_at=None, progress=0.0)

# A job row that someone else holds (a person pausing or killing it, a report completing it) is
# skipped, not waited on: waiting while holding the claimed task rows could deadlock with them, and the
# job's state is derived again whenever its tasks change.
JOBS_RUNNING = update(jobs).where(jobs.c.id.in_(
    select(jobs.c.id).where(jobs.c.id.in_(bindparam("job_ids", expanding=True)),
                            jobs.c.state != JobState.RUNNING.value, jobs.c.killed.is_(False))
    .with_for_update(skip_locked=True).scalar_subquery())).values(state=JobState.RUNNING.value)

LAYER_FOR_COMMANDS = (select(layers, jobs.c.name.label("job_name"), jobs.c.path_mapping.label("path_mapping"))
                      .join(jobs, jobs.c.id == layers.c.job_id).where(layers.c.id == bindparam("layer_id")))

# -- reports ---------------------------------------------------------------------------------

_ATTEMPT_AND_TASK = (
    select(attempts.c.id, attempts.c.node_id, attempts.c.state, attempts.c.log_size, attempts.c.task_id,
           attempts.c.exit_code, attempts.c.ended_at, attempts.c.reason,
           tasks.c.attempt_id.label("task_attempt_id"), tasks.c.state.label("task_state"), tasks.c.tries,
           tasks.c.lost, tasks.c.job_id, tasks.c.layer_id, layers.c.retries)
    .join(tasks, tasks.c.id == attempts.c.task_id).join(layers, layers.c.id == tasks.c.layer_id)
)
_ATTEMPT_IDS = ids_in(attempts.c.id, "attempt_ids")
ATTEMPTS_WITH_TASKS = per_dialect(lambda d: _ATTEMPT_AND_TASK.where(_ATTEMPT_IDS[d]))

END_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_id")).values(
    state=bindparam("b_state"), reason=bindparam("b_reason"), exit_code=bindparam("b_exit_code"),
    cpu_s=bindparam("b_cpu_s"), peak_rss_mb=bindparam("b_peak_rss_mb"), ended_at=bindparam("b_now"))

# PostgreSQL: a batch of reports' common outcomes in one statement (END_ATTEMPT for every ended attempt,
# TASK_SUCCEEDED for the succeeded tasks), one array per column so the text never changes. An
# executemany of each costs a pipeline and a sync per call and psycopg's per-row work.
FINISH_PG = text(
    "WITH ended AS (UPDATE attempts SET state = e.state, reason = e.reason, exit_code = e.exit_code, "
    "    cpu_s = e.cpu_s, peak_rss_mb = e.peak_rss_mb, ended_at = :now "
    "  FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:reasons AS text[]), "
    "    CAST(:exit_codes AS integer[]), CAST(:cpu_s AS float8[]), CAST(:peak_rss_mb AS float8[])) "
    "    AS e(id, state, reason, exit_code, cpu_s, peak_rss_mb) "
    "  WHERE attempts.id = e.id RETURNING attempts.id) "
    "UPDATE tasks SET state = :succeeded, ended_at = :now, progress = 100 "
    "FROM unnest(CAST(:task_ids AS integer[]), CAST(:attempt_ids AS integer[])) AS s(task_id, attempt_id) "
    "WHERE tasks.id = s.task_id AND tasks.attempt_id = s.attempt_id AND tasks.state = :running"
).bindparams(succeeded=TaskState.SUCCEEDED.value, running=TaskState.RUNNING.value)

_RUNNING_ATTEMPT = (tasks.c.id == bindparam("b_task_id"), tasks.c.attempt_id == bindparam("b_attempt_id"),
                    tasks.c.state == TaskState.RUNNING.value)

TASK_SUCCEEDED = update(tasks).where(*_RUNNING_ATTEMPT).values(
    state=TaskState.SUCCEEDED.value, ended_at=bindparam("b_now"), progress=100.0)

TASK_TRIED = update(tasks).where(*_RUNNING_ATTEMPT).values(
    state=bindparam("b_state"), tries=bindparam("b_tries"), ended_at=bindparam("b_ended_at"))

TASK_REQUEUED = update(tasks).where(*_RUNNING_ATTEMPT).values(state=TaskState.READY.value, lost=tasks.c.lost + 1)

# Deriving a job's state reads its other tasks. Two reports ending a job's last tasks at once would each
# see the other still running (READ COMMITTED) and neither would complete it; whoever takes this row lock
# last sees every finish committed before it. SQLite serializes writers already (no FOR UPDATE there).
LOCK_JOB = select(jobs).where(jobs.c.id == bindparam("job_id")).with_for_update()

# After a report: is the layer still open, and has the job still work queued or running? One round trip.
LAYER_OPEN_JOB_BUSY = select(
    exists().where(tasks.c.layer_id == bindparam("layer_id"),
                   tasks.c.state.not_in([TaskState.SUCCEEDED.value, TaskState.SKIPPED.value])).label("layer_open"),
    exists().where(tasks.c.job_id == bindparam("job_id"),
                   tasks.c.state.in_([TaskState.READY.value, TaskState.RUNNING.value])).label("job_busy"))

STUCK_JOBS = select(jobs.c.id).where(
    jobs.c.state == JobState.RUNNING.value,
    ~exists().where(tasks.c.job_id == jobs.c.id, tasks.c.state.in_([TaskState.READY.value, TaskState.RUNNING.value])))

# -- heartbeats ------------------------------------------------------------------------------

# Executed with one parameter set per heartbeat of a write batch.
NODE_SEEN = update(nodes).where(nodes.c.id == bindparam("b_node_id")).values(
    last_seen=bindparam("b_now"), state=NodeState.UP.value, cpu_percent=bindparam("b_cpu_percent"),
    memory_used_mb=bindparam("b_memory_used_mb"), load=bindparam("b_load"))

NODES_STATES = per_dialect(lambda d: select(nodes.c.id, nodes.c.admin_state, nodes.c.state).where(_NODE_IDS[d]))

LIVE_ON_NODES = per_dialect(lambda d: select(attempts.c.node_id, attempts.c.id, attempts.c.state, attempts.c.started_at)
                            .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES)))

TASK_PROGRESS = update(tasks).where(tasks.c.attempt_id == bindparam("b_attempt_id")).values(
    progress=bindparam("b_progress"))


def _attempt_usage(dialect: str):  # type: ignore[no-untyped-def]
    """Live CPU time and the running peak of memory; a two-argument max is spelled per dialect."""
    larger = func.max if dialect == "sqlite" else func.greatest
    return update(attempts).where(attempts.c.id == bindparam("b_attempt_id")).values(
        cpu_s=bindparam("b_cpu_s"),
        peak_rss_mb=larger(func.coalesce(attempts.c.peak_rss_mb, 0), bindparam("b_rss_mb")))


ATTEMPT_USAGE = per_dialect(_attempt_usage)
