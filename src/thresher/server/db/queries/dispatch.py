"""Statements of dispatch (`server/dispatch.py`): the asking nodes, the candidate tasks, the claim.

Built once at import: building a SQLAlchemy statement costs more than running a small indexed query,
and statements built with bind parameters are compiled once per dialect with memoized cache keys.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)

from thresher.model.states import LIVE_ATTEMPT_STATES, AttemptState, JobState, TaskState
from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import attempts, jobs, layers, node_failures, nodes, tag_sets, tasks

_NODE_IDS = ids_in(nodes.c.id, "node_ids")
_ATTEMPT_NODE_IDS = ids_in(attempts.c.node_id, "node_ids")

# The asking nodes of a write batch, whole rows (resources, tags, states).
NODES_BY_ID = per_dialect(lambda d: select(nodes).where(_NODE_IDS[d]))

# What the asking nodes' live attempts hold (dispatch's view of what is free on each): the JSON columns
# as their stored text, which dispatch decodes once per distinct text (a farm's attempts hold few kinds:
# `dispatch._held`), instead of SQLAlchemy decoding every row of every round.
LIVE_HOLDINGS = per_dialect(lambda d: select(
    attempts.c.node_id, attempts.c.id, attempts.c.state, attempts.c.cores, attempts.c.memory_mb,
    cast(attempts.c.gpu_ids, Text).label("gpu_ids"), cast(attempts.c.booked, Text).label("booked"))
    .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES)))

# Every tag set a layer ever asked for (a short list that only grows; cached in memory by dispatch).
TAG_KEYS = select(tag_sets.c.key)

# One project's ready tasks in its dispatch order (urgent jobs, folder priority, job priority, the oldest
# job, frame order), read off the partial index of ready tasks (ix_tasks_ready). The state is spelled as
# a literal, not a bound parameter: a planner can use a partial index only for a condition it sees
# matches the index's (SQLite always, PostgreSQL in its generic plans for prepared statements).
assert TaskState.READY == "ready"
# Only what the rule decides on: the frames of the few tasks chosen are read after (TASK_FRAMES), not
# those of the hundreds of rows a round reads and passes over.
_READY_OF_PROJECT = (
    select(tasks.c.id, tasks.c.job_id, tasks.c.layer_id, tasks.c.cores, tasks.c.memory_mb, tasks.c.gpus,
           tasks.c.tag_key, tasks.c.project_id, tasks.c.folder_id, tasks.c.folder_priority, tasks.c.limit_key,
           tasks.c.urgent, tasks.c.priority, tasks.c.node_id, tasks.c.tries)
    .where(tasks.c.state == literal_column("'ready'"), tasks.c.project_id == bindparam("project_id"))
    .order_by(tasks.c.urgent.desc(), tasks.c.folder_priority.desc(), tasks.c.priority.desc(), tasks.c.job_id,
              tasks.c.id)
    .limit(bindparam("limit"))
)


def _fits_room(suffix: str = "") -> Any:
    """The tasks that fit one room: its placements (`keys`), free cores, memory and GPUs."""
    return and_(tasks.c.tag_key.in_(bindparam(f"keys{suffix}", expanding=True)),
                tasks.c.cores <= bindparam(f"free_cores{suffix}"),
                tasks.c.memory_mb <= bindparam(f"free_memory{suffix}"),
                tasks.c.gpus <= bindparam(f"free_gpus{suffix}"))


CANDIDATES = _READY_OF_PROJECT.where(_fits_room())

# The frames of these (claimed) tasks, as their commands are built from (`task_commands.command_line`).
TASK_FRAMES = per_dialect(lambda d: select(
    tasks.c.id, tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end, tasks.c.frame_step,
    tasks.c.frame_count, tasks.c.part).where(ids_in(tasks.c.id, "task_ids")[d]))

# The candidates with their rows locked: several server processes on PostgreSQL skip the rows another
# dispatcher is claiming instead of waiting on them.
CANDIDATES_LOCKED = CANDIDATES.with_for_update(skip_locked=True, of=tasks)


# The rows after one in dispatch order (`after_urgent`, `after_folder_priority`, `after_priority`,
# `after_job_id`, `after_id`: that row's), spelled out since the order mixes descending and ascending
# columns: a read made longer reads on from its last row (`dispatch_reads.ProjectReads`).
_AFTER = or_(
    tasks.c.urgent < bindparam("after_urgent"),
    and_(tasks.c.urgent == bindparam("after_urgent"), or_(
        tasks.c.folder_priority < bindparam("after_folder_priority"),
        and_(tasks.c.folder_priority == bindparam("after_folder_priority"), or_(
            tasks.c.priority < bindparam("after_priority"),
            and_(tasks.c.priority == bindparam("after_priority"), or_(
                tasks.c.job_id > bindparam("after_job_id"),
                and_(tasks.c.job_id == bindparam("after_job_id"), tasks.c.id > bindparam("after_id")))))))))


@functools.lru_cache(maxsize=256)
def candidates(dialect: str, licences: int, folders: bool, lock: bool, after: bool = False, rooms: int = 1) -> Any:
    """CANDIDATES (locked: CANDIDATES_LOCKED), with `rooms` > 1 the tasks that fit any of that many
    rooms (`keys_0`, `free_cores_0`, `free_memory_0`, `free_gpus_0`, `keys_1`, ...: the asking nodes'
    placements and free room, `dispatch_reads.rooms`), less the tasks refused farm-wide all round
    (`model.round_shut`): with `folders`, none of the folders in `shut_folders`; and none holding one
    of `licences` full licences, bound as `shut_licence_0`, ... each ",name=" (a task's `limit_key`
    with a comma before it holds that licence when it contains that); with `after`, only the rows
    after the one bound as `after_*` (see `_AFTER`). One statement per shape, built once; with nothing
    shut it is CANDIDATES itself."""
    statement = CANDIDATES_LOCKED if lock else CANDIDATES
    if rooms > 1:
        statement = _READY_OF_PROJECT.where(or_(*(_fits_room(f"_{i}") for i in range(rooms))))
        if lock:
            statement = statement.with_for_update(skip_locked=True, of=tasks)
    if after:
        statement = statement.where(_AFTER)
    if folders:
        statement = statement.where(or_(tasks.c.folder_id.is_(None),
                                        tasks.c.folder_id.not_in(bindparam("shut_folders", expanding=True))))
    find = func.instr if dialect == "sqlite" else func.strpos  # both: 1-based position, 0 when absent
    for i in range(licences):
        statement = statement.where(find(literal_column("','", String) + tasks.c.limit_key, bindparam(f"shut_licence_{i}")) == 0)
    return statement


# Projects whose jobs may have ready tasks (queued or running jobs; ix_jobs_state).
ACTIVE_PROJECTS = select(jobs.c.project_id).distinct().where(
    jobs.c.state.in_([JobState.QUEUED, JobState.RUNNING]))

# Of these nodes and jobs, the jobs whose blocklist names each node.
BLOCKED_JOBS = per_dialect(lambda d: select(node_failures.c.node_id, node_failures.c.job_id).where(
    ids_in(node_failures.c.node_id, "node_ids")[d], node_failures.c.blocked.is_(True)))

# Is any task ready at all? One step into the partial index of ready tasks: an idle farm's periodic
# look for news (dispatch.nodes_with_news) then reads no node and no candidate.
ANY_READY = select(tasks.c.id).where(tasks.c.state == literal_column("'ready'")).limit(1)

# Of these nodes, those with an attempt to kill (ix_attempts_node_state).
KILLING_ON_NODES = per_dialect(lambda d: select(attempts.c.node_id).distinct().where(
    _ATTEMPT_NODE_IDS[d], attempts.c.state == AttemptState.KILLING))

# The highest attempt number of each of these tasks (the next attempt takes the one after).
LAST_ATTEMPT_NUMBERS = (select(attempts.c.task_id, func.max(attempts.c.number))
                        .where(attempts.c.task_id.in_(bindparam("task_ids", expanding=True)))
                        .group_by(attempts.c.task_id))

# New attempts, executed with one parameter set per claimed task (one INSERT ... RETURNING for all).
INSERT_ATTEMPTS = insert(attempts).returning(attempts.c.id, sort_by_parameter_order=True)

# The compare-and-set that makes "at most one live attempt per task" hold: only a ready task is claimed.
CLAIM_TASK = update(tasks).where(tasks.c.id == bindparam("b_task_id"), tasks.c.state == TaskState.READY).values(
    state=TaskState.RUNNING, attempt_id=bindparam("b_attempt_id"), node_id=bindparam("b_node_id"),
    started_at=bindparam("b_now"), ended_at=None, progress=0.0)

# Of these tasks, those that these attempts hold (after a claim that did not take every row).
CLAIMED_BY = select(tasks.c.id).where(tasks.c.id.in_(bindparam("task_ids", expanding=True)),
                                     tasks.c.attempt_id.in_(bindparam("attempt_ids", expanding=True)))

# PostgreSQL: the whole claim of a batch of answers in one statement and one round trip. One array per
# column, so the text never changes with the number of tasks and psycopg converts and prepares it once (a
# multi-row VALUES list of over 50 parameters it converts anew on every call). It numbers and inserts the
# attempts and claims their tasks with the same compare-and-set as CLAIM_TASK; a task not claimed is
# reported (`claimed` false) and its attempt deleted by the caller. The candidate rows are locked by
# this transaction already (CANDIDATES_LOCKED), so the numbering cannot race.
CLAIM_PG = text("""
WITH v AS (
  SELECT * FROM unnest(CAST(:task_ids AS integer[]), CAST(:job_ids AS integer[]), CAST(:node_ids AS integer[]),
                       CAST(:cores AS integer[]), CAST(:memory AS integer[]), CAST(:gpu_ids AS text[]),
                       CAST(:booked AS text[]))
    AS v(task_id, job_id, node_id, cores, memory_mb, gpu_ids, booked)
), ins AS (
  INSERT INTO attempts (task_id, job_id, number, node_id, state, cores, memory_mb, gpu_ids, started_at, log_size,
                      booked)
  SELECT v.task_id, v.job_id, COALESCE((SELECT max(a.number) FROM attempts a WHERE a.task_id = v.task_id), 0) + 1,
         v.node_id, 'running', v.cores, v.memory_mb, CAST(v.gpu_ids AS json), :now, 0, CAST(v.booked AS json)
  FROM v
  RETURNING id, task_id, node_id
), claimed AS (
  UPDATE tasks SET state = 'running', attempt_id = ins.id, node_id = ins.node_id, started_at = :now,
                   ended_at = NULL, progress = 0
  FROM ins
  WHERE tasks.id = ins.task_id AND tasks.state = 'ready'
  RETURNING tasks.id
)
SELECT ins.id, ins.task_id, claimed.id IS NOT NULL AS claimed
FROM ins LEFT JOIN claimed ON claimed.id = ins.task_id
""")
assert AttemptState.RUNNING == TaskState.RUNNING == "running"

# Attempts created for tasks that somebody else claimed first (see CLAIMED_BY, CLAIM_PG's `claimed`).
DELETE_ATTEMPTS = delete(attempts).where(attempts.c.id.in_(bindparam("attempt_ids", expanding=True)))

# What building a layer's commands needs: the layer, its job's name and path mapping (and submit time,
# for the submit-to-start histogram of server/metrics.py).
LAYER_FOR_COMMANDS = (select(layers, jobs.c.name.label("job_name"), jobs.c.path_mapping.label("path_mapping"),
                             jobs.c.submitted_at.label("job_submitted_at"))
                      .join(jobs, jobs.c.id == layers.c.job_id).where(layers.c.id == bindparam("layer_id")))

# An attempt's task as its command was built from, with the node it ran on (`server/commands.py`).
ATTEMPT_FOR_COMMAND = (select(tasks.c.layer_id, tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end,
                              tasks.c.frame_step, tasks.c.frame_count, tasks.c.part, attempts.c.cores,
                              attempts.c.id.label("attempt_id"), nodes.c.os, nodes.c.apps, nodes.c.name.label("node"))
                       .select_from(attempts.join(tasks, tasks.c.id == attempts.c.task_id)
                                    .join(nodes, nodes.c.id == attempts.c.node_id))
                       .where(attempts.c.id == bindparam("attempt_id")))

# Why the server asks to stop these attempts (`steering.MARK_KILLING`, `reports.STOP_RERUN`).
KILL_REASONS = select(attempts.c.id, attempts.c.reason).where(attempts.c.id.in_(bindparam("attempt_ids", expanding=True)))
