"""Statements of what agents report (`server/lifecycle.py`): attempts ending, logs, lost attempts."""

from __future__ import annotations

from sqlalchemy import DateTime, bindparam, delete, func, insert, or_, select, text, update

from thresher.model.states import LIVE_ATTEMPT_STATES, AttemptState, TaskState
from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import attempts, layers, log_chunks, nodes, tasks

_ATTEMPT_IDS = ids_in(attempts.c.id, "attempt_ids")

# The reported attempts with their tasks' state, retry policy and blocklist threshold: one read for a whole batch of reports.
ATTEMPTS_WITH_TASKS = per_dialect(lambda d: select(
    attempts.c.id, attempts.c.node_id, attempts.c.state, attempts.c.log_size, attempts.c.task_id, attempts.c.started_at,
    attempts.c.exit_code, attempts.c.ended_at, attempts.c.reason, attempts.c.booked,
    attempts.c.memory_mb.label("reserved_mb"), tasks.c.memory_mb.label("task_memory_mb"),
    tasks.c.attempt_id.label("task_attempt_id"), tasks.c.state.label("task_state"), tasks.c.tries,
    tasks.c.lost, tasks.c.job_id, tasks.c.layer_id, layers.c.retries, layers.c.blocklist_after)
    .join(tasks, tasks.c.id == attempts.c.task_id).join(layers, layers.c.id == tasks.c.layer_id)
    .where(_ATTEMPT_IDS[d]))

# When the process really started (`clock.run_start`), where the report moves it; NULL keeps the assignment's.
_RUN_START = bindparam("b_started_at", type_=DateTime(timezone=True))

# An attempt ended: its final state, reason and figures (one parameter set per ended attempt).
END_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("b_id")).values(
    state=bindparam("b_state"), reason=bindparam("b_reason"), exit_code=bindparam("b_exit_code"),
    cpu_s=bindparam("b_cpu_s"), peak_rss_mb=bindparam("b_peak_rss_mb"), ended_at=bindparam("b_now"),
    out_of_memory=bindparam("b_out_of_memory"), started_at=func.coalesce(_RUN_START, attempts.c.started_at))

_RUNNING_ATTEMPT = (tasks.c.id == bindparam("b_task_id"), tasks.c.attempt_id == bindparam("b_attempt_id"),
                    tasks.c.state == TaskState.RUNNING)

# A task whose live attempt succeeded is done (compare-and-set: it succeeds at most once).
TASK_SUCCEEDED = update(tasks).where(*_RUNNING_ATTEMPT).values(
    state=TaskState.SUCCEEDED, ended_at=bindparam("b_now"), progress=100.0,
    started_at=func.coalesce(_RUN_START, tasks.c.started_at))

# A task whose live attempt failed: back to ready with a try counted, or failed for good.
TASK_TRIED = update(tasks).where(*_RUNNING_ATTEMPT).values(
    state=bindparam("b_state"), tries=bindparam("b_tries"), ended_at=bindparam("b_ended_at"))

# A task whose live attempt was lost goes back to ready (or paused, `server/layer_pause.py`) without counting a try.
TASK_REQUEUED = update(tasks).where(*_RUNNING_ATTEMPT).values(state=bindparam("b_state"), lost=tasks.c.lost + 1)

# A task lost once too often (its node went away while running it, again and again) fails for good.
TASK_LOST_FOR_GOOD = update(tasks).where(*_RUNNING_ATTEMPT).values(
    state=TaskState.FAILED, lost=tasks.c.lost + 1, ended_at=bindparam("b_now"))

# PostgreSQL: a batch of reports' common outcomes in one statement (END_ATTEMPT for every ended attempt,
# TASK_SUCCEEDED for the succeeded tasks), one array per column so the text never changes. An
# executemany of each costs a pipeline and a sync per call and psycopg's per-row work.
# Each succeeded task is found by its primary key (the LATERAL look-up, kept from being flattened by its
# LIMIT) and locked there, its compare-and-set checked on the row as locked; the UPDATE then touches only
# those rows. Written as a plain join with `tasks.state = 'running'`, the planner read the running tasks
# off ix_tasks_job_state whenever the statistics were taken while few tasks ran (right after a big
# submit) and joined every one of them to every report: 1.5-2 s per batch of 200-400 reports with 6,000
# running, while the other writers waited on its locks (bench/dispatch.py, studio scenario).
FINISH_PG = text("""
WITH ended AS (
  UPDATE attempts SET state = e.state, reason = e.reason, exit_code = e.exit_code, cpu_s = e.cpu_s,
                      peak_rss_mb = e.peak_rss_mb, ended_at = :now, out_of_memory = e.out_of_memory,
                      started_at = COALESCE(e.started_at, attempts.started_at)
  FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:reasons AS text[]),
              CAST(:exit_codes AS integer[]), CAST(:cpu_s AS float8[]), CAST(:peak_rss_mb AS float8[]),
              CAST(:out_of_memory AS boolean[]), CAST(:started_ats AS timestamptz[]))
    AS e(id, state, reason, exit_code, cpu_s, peak_rss_mb, out_of_memory, started_at)
  WHERE attempts.id = e.id
  RETURNING attempts.id
)
UPDATE tasks SET state = 'succeeded', ended_at = :now, progress = 100,
                 started_at = COALESCE(s.started_at, tasks.started_at)
FROM unnest(CAST(:task_ids AS integer[]), CAST(:attempt_ids AS integer[]), CAST(:task_started_ats AS timestamptz[]))
  AS s(task_id, attempt_id, started_at)
CROSS JOIN LATERAL (SELECT t.id FROM tasks t
                    WHERE t.id = s.task_id AND t.attempt_id = s.attempt_id AND t.state = 'running'
                    LIMIT 1 FOR UPDATE) AS done
WHERE tasks.id = done.id
""")
assert TaskState.SUCCEEDED == "succeeded" and TaskState.RUNNING == "running"

# The memory of the largest node known: no reservation is raised past it (`model/memory_rule.py`).
LARGEST_NODE_MEMORY = select(func.max(nodes.c.memory_mb))

# An out-of-memory task's retry reserves more memory (never less than it has).
RAISE_TASK_MEMORY = update(tasks).where(tasks.c.id == bindparam("b_task_id"),
                                        tasks.c.memory_mb < bindparam("b_memory_mb")).values(
    memory_mb=bindparam("b_memory_mb"))

# A layer's tasks that have not started reserve what a finished one peaked at (one parameter set per layer;
# the states spelled out with OR: an IN list is an expanding parameter, which executemany refuses).
RAISE_LAYER_MEMORY = update(tasks).where(
    tasks.c.layer_id == bindparam("b_layer_id"),
    or_(*(tasks.c.state == state for state in (TaskState.WAITING, TaskState.READY, TaskState.PAUSED,
                                                TaskState.HELD))),
    tasks.c.memory_mb < bindparam("b_memory_mb")).values(memory_mb=bindparam("b_memory_mb"))

# Where an attempt's log stands, and whose attempt it is.
ATTEMPT_LOG = select(attempts.c.node_id, attempts.c.log_size).where(attempts.c.id == bindparam("attempt_id"))

# A piece of an attempt's log, stored at its byte offset.
INSERT_LOG_CHUNK = insert(log_chunks)

# The pieces of a log past its cap between the kept head and the kept tail (`server/log_cap.py`).
DROP_LOG_MIDDLE = delete(log_chunks).where(log_chunks.c.attempt_id == bindparam("attempt_id"),
                                           log_chunks.c.offset >= bindparam("head"),
                                           log_chunks.c.offset < bindparam("tail_from"))

# The log's new size after a chunk was stored.
SET_LOG_SIZE = update(attempts).where(attempts.c.id == bindparam("attempt_id")).values(log_size=bindparam("size"))

# Of these attempts, the live ones (those a lost node or a forgetful agent leaves behind), with how
# often their task was lost before.
LIVE_ATTEMPTS = (select(attempts.c.id, attempts.c.node_id, attempts.c.job_id, attempts.c.task_id, attempts.c.booked,
                        tasks.c.lost, tasks.c.layer_id)
                 .join(tasks, tasks.c.id == attempts.c.task_id)
                 .where(attempts.c.id.in_(bindparam("attempt_ids", expanding=True)),
                        attempts.c.state.in_(LIVE_ATTEMPT_STATES)))

# An attempt is lost: its node went away or no longer runs it.
LOSE_ATTEMPT = update(attempts).where(attempts.c.id == bindparam("attempt_id")).values(
    state=AttemptState.LOST, reason=bindparam("b_reason"), ended_at=bindparam("now"))

# A task as it is now, for a late report of an attempt declared lost (`server/late_reports.py`).
TASK_NOW = select(tasks.c.state, tasks.c.attempt_id).where(tasks.c.id == bindparam("b_task_id"))

# A late success kept (`model/late_report.py`): the task succeeds with that attempt, compare-and-set on
# the state and attempt seen just before (rule 1: a success that landed in between wins).
TASK_LATE_SUCCESS = update(tasks).where(
    tasks.c.id == bindparam("b_task_id"), tasks.c.state == bindparam("b_seen_state"),
    tasks.c.attempt_id.is_not_distinct_from(bindparam("b_seen_attempt"))).values(
    state=TaskState.SUCCEEDED, attempt_id=bindparam("b_attempt_id"), ended_at=bindparam("b_now"), progress=100.0)

# The re-run of a task a late success completed is told to stop; gives its node, to wake it.
STOP_RERUN = update(attempts).where(attempts.c.id == bindparam("b_attempt_id"),
                                    attempts.c.state == AttemptState.RUNNING).values(
    state=AttemptState.KILLING, reason=bindparam("b_reason")).returning(attempts.c.node_id)
