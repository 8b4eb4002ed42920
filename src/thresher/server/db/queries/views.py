"""What the API's read routes show: jobs, layers, tasks, attempts, logs and nodes (`server/views.py`).

Statements with a fixed shape are names; those whose filters come from the request (a page of jobs,
a page of tasks) are builder functions taking the filters, so no route or view spells SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Select, and_, bindparam, case, false, func, or_, select, true

from thresher.model.states import PAUSE_HOLDS_STATES, JobState, TaskState
from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import attempts, folders, jobs, layers, log_chunks, nodes, tasks

# -- jobs ------------------------------------------------------------------------------------

# The orders a job list may ask for (`sort`), each with the newest job first among equals.
JOB_SORTS = {"id": jobs.c.id, "-id": jobs.c.id.desc(), "priority": jobs.c.priority, "-priority": jobs.c.priority.desc(),
             "name": jobs.c.name, "-name": jobs.c.name.desc(), "submitted": jobs.c.id, "-submitted": jobs.c.id.desc()}


# What the jobs list can be grouped by (`?group=`): each a run of columns, wider to narrower; the page is
# ordered by them first so each group's jobs are together (no value sorts first in both databases).
JOB_GROUPS = {"project": [jobs.c.project], "sequence": [jobs.c.project, jobs.c.sequence],
              "shot": [jobs.c.project, jobs.c.sequence, jobs.c.shot]}


def _group_order(group: str | None) -> list[Any]:
    return [func.coalesce(column, "") for column in JOB_GROUPS[group]] if group else []


def _state_condition(wanted: list[str]) -> Any:
    """Jobs in these states; `paused` also names the jobs paused while their tasks still run (`running
    (paused)`: `model/states.PAUSE_HOLDS_STATES`). Both read `ix_jobs_state`: the paused flag is only
    checked among the unfinished jobs, a small part of a farm's 10,000s."""
    if JobState.PAUSED not in wanted:
        return jobs.c.state.in_(wanted)
    unfinished = sorted(set(wanted) | PAUSE_HOLDS_STATES)
    return and_(jobs.c.state.in_(unfinished), or_(jobs.c.state.in_(wanted), jobs.c.paused == true()))


def _job_filters(state: str | None, project: str | None, owner: str | None, name: str | None,
                 folder: str | None = None, archived: bool = False, sequence: str | None = None,
                 shot: str | None = None) -> list[Any]:
    # archived jobs leave the lists (`server/retention.py`); `archived=true` lists only them
    conditions: list[Any] = [jobs.c.archived_at.is_not(None) if archived else jobs.c.archived_at.is_(None)]
    if state:
        conditions.append(_state_condition(state.split(",")))
    if project:
        conditions.append(jobs.c.project == project)
    if owner:
        conditions.append(jobs.c.owner == owner)
    if name:
        conditions.append(jobs.c.name.contains(name, autoescape=True))
    if folder:  # by name: the folders of that name (of the project, when one is given too)
        conditions.append(jobs.c.folder_id.in_(select(folders.c.id).where(folders.c.name == folder)))
    if sequence:  # the spec's sequence and shot, exactly (a shot name is often reused across sequences)
        conditions.append(jobs.c.sequence == sequence)
    if shot:
        conditions.append(jobs.c.shot == shot)
    return conditions


def count_jobs(state: str | None, project: str | None, owner: str | None, name: str | None,
               folder: str | None = None, archived: bool = False, *, sequence: str | None = None,
               shot: str | None = None) -> Select[Any]:
    """How many jobs match a job list's filters (state: comma separated; name: a substring)."""
    return select(func.count()).select_from(jobs).where(
        *_job_filters(state, project, owner, name, folder, archived, sequence, shot))


def page_of_jobs(state: str | None, project: str | None, owner: str | None, name: str | None, *, sort: str,
                 limit: int, offset: int, folder: str | None = None, archived: bool = False,
                 sequence: str | None = None, shot: str | None = None, group: str | None = None) -> Select[Any]:
    """One page of the jobs matching a job list's filters, in the order `sort` names (a JOB_SORTS key),
    within the groups `group` names (a JOB_GROUPS key) when given."""
    return (select(jobs).where(*_job_filters(state, project, owner, name, folder, archived, sequence, shot))
            .order_by(*_group_order(group), JOB_SORTS[sort], jobs.c.id.desc()).limit(limit).offset(offset))


def jobs_per_group(state: str | None, project: str | None, owner: str | None, name: str | None, *, group: str,
                   folder: str | None = None, archived: bool = False, sequence: str | None = None,
                   shot: str | None = None) -> Select[Any]:
    """How many jobs matching the filters each group holds (its columns, then `n`), for the groups' headers."""
    columns = JOB_GROUPS[group]
    return (select(*columns, func.count().label("n"))
            .where(*_job_filters(state, project, owner, name, folder, archived, sequence, shot)).group_by(*columns))


# Task counts per job and state, for a page of jobs.
COUNTS_BY_JOB = (select(tasks.c.job_id, tasks.c.state, func.count().label("n"))
                 .where(tasks.c.job_id.in_(bindparam("job_ids", expanding=True)))
                 .group_by(tasks.c.job_id, tasks.c.state))

# Sum of the progress of the running tasks of each of these jobs.
RUNNING_PROGRESS_BY_JOB = (select(tasks.c.job_id.label("key"), func.sum(tasks.c.progress).label("sum"))
                           .where(tasks.c.job_id.in_(bindparam("job_ids", expanding=True)),
                                  tasks.c.state == TaskState.RUNNING, tasks.c.progress.is_not(None))
                           .group_by(tasks.c.job_id))

# Sum of the progress of the running tasks of each layer of one job.
RUNNING_PROGRESS_BY_LAYER = (select(tasks.c.layer_id.label("key"), func.sum(tasks.c.progress).label("sum"))
                             .where(tasks.c.job_id == bindparam("job_id"), tasks.c.state == TaskState.RUNNING,
                                    tasks.c.progress.is_not(None))
                             .group_by(tasks.c.layer_id))

# One job row.
JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))

# Does this job exist?
JOB_EXISTS = select(jobs.c.id).where(jobs.c.id == bindparam("job_id"))

# Task counts and frames per layer and state of one job: read layer by layer off ix_tasks_layer_state,
# which holds the frames too, so no task row is read and no sort is needed (migration 0015 says why).
LAYER_COUNTS = (select(tasks.c.layer_id, tasks.c.state, func.count().label("n"),
                       func.sum(tasks.c.frame_count).label("frames"))
                .where(tasks.c.layer_id.in_(select(layers.c.id).where(layers.c.job_id == bindparam("job_id"))))
                .group_by(tasks.c.layer_id, tasks.c.state))

# The layers of one job, in spec order.
LAYERS_OF_JOB = select(layers).where(layers.c.job_id == bindparam("job_id")).order_by(layers.c.idx)

# -- tasks -----------------------------------------------------------------------------------

# A task as `wire.jobs.Task` shows it, its columns named as the model's fields: its layer's name, and the
# name of the node its latest attempt ran on, and why that attempt ended (its reason).
_TASK_ROWS = (select(tasks.c.id, tasks.c.job_id, tasks.c.layer_id, layers.c.name.label("layer"),
                     tasks.c.idx.label("index"), tasks.c.frames, tasks.c.state, tasks.c.tries, tasks.c.lost,
                     nodes.c.name.label("node"), tasks.c.attempt_id, tasks.c.progress, tasks.c.started_at,
                     tasks.c.ended_at, tasks.c.part, attempts.c.reason)
              .join(layers, layers.c.id == tasks.c.layer_id).outerjoin(nodes, nodes.c.id == tasks.c.node_id)
              .outerjoin(attempts, attempts.c.id == tasks.c.attempt_id))


def _task_filters(layer: str | None, state: str | None) -> list[Any]:
    conditions = [tasks.c.job_id == bindparam("job_id")]
    if layer:
        conditions.append(layers.c.name == layer)
    if state:
        conditions.append(tasks.c.state.in_(state.split(",")))
    return conditions


def count_tasks(layer: str | None, state: str | None) -> Select[Any]:
    """How many tasks of the job `:job_id` match a task list's filters (layer name; states, comma separated)."""
    return (select(func.count()).select_from(tasks.join(layers, layers.c.id == tasks.c.layer_id))
            .where(*_task_filters(layer, state)))


def page_of_tasks(layer: str | None, state: str | None, *, limit: int, offset: int) -> Select[Any]:
    """One page of the tasks of the job `:job_id` matching a task list's filters, in layer and frame order."""
    return (_TASK_ROWS.where(*_task_filters(layer, state)).order_by(layers.c.idx, tasks.c.idx)
            .limit(limit).offset(offset))


_FRAME = bindparam("frame", type_=BigInteger)


def tasks_near_frame(layer: str | None, state: str | None) -> Select[Any]:
    """The tasks of the job `:job_id` (a task list's filters) that may hold frame `:frame`, with their
    `frame_step`: exactly those of the chunks that are one arithmetic run (start..end by step, either way),
    and every chunk that is not (`frame_step` 0: the `y` and `:` specs' chunks, whose first and last frames
    do not bound the rest), which the caller checks (`model.frames.holds`). A frame is in a few tasks at
    most (one per layer, or per tile or wedge value), so there is no paging here."""
    in_range = or_(and_(tasks.c.frame_start <= _FRAME, tasks.c.frame_end >= _FRAME),
                   and_(tasks.c.frame_start >= _FRAME, tasks.c.frame_end <= _FRAME))
    # Within its range the distance to the first frame fits in 64 bits (a CASE is evaluated in order).
    on_run = case((tasks.c.frame_step == 0, true()),
                  (in_range, (_FRAME - tasks.c.frame_start) % func.nullif(tasks.c.frame_step, 0) == 0), else_=false())
    return (_TASK_ROWS.add_columns(tasks.c.frame_step).where(*_task_filters(layer, state), on_run)
            .order_by(layers.c.idx, tasks.c.idx))


# One task row (as in a page of tasks).
TASK = _TASK_ROWS.where(tasks.c.id == bindparam("task_id"))

# Does this task exist?
TASK_EXISTS = select(tasks.c.id).where(tasks.c.id == bindparam("task_id"))

# -- attempts and logs -----------------------------------------------------------------------

# How many attempts a task had.
COUNT_ATTEMPTS = select(func.count()).select_from(attempts).where(attempts.c.task_id == bindparam("task_id"))

# The attempts of one task as `wire.jobs.Attempt` shows them (columns named as its fields), first try
# first (`:limit` from `:offset`).
ATTEMPTS_OF_TASK = (select(attempts.c.id, attempts.c.task_id, attempts.c.number, nodes.c.name.label("node"),
                           attempts.c.state, attempts.c.started_at, attempts.c.ended_at, attempts.c.exit_code,
                           attempts.c.cpu_s, attempts.c.peak_rss_mb, attempts.c.reason, attempts.c.log_size,
                           attempts.c.gpu_ids.label("gpus"), attempts.c.memory_mb,
                           func.coalesce(attempts.c.out_of_memory, false()).label("out_of_memory"))
                    .join(nodes, nodes.c.id == attempts.c.node_id)
                    .where(attempts.c.task_id == bindparam("task_id")).order_by(attempts.c.number)
                    .limit(bindparam("limit")).offset(bindparam("offset")))

# Whether an attempt still runs, and how much log it has.
ATTEMPT_LOG_STATE = select(attempts.c.state, attempts.c.log_size).where(attempts.c.id == bindparam("attempt_id"))

# Where the stored row holding byte `:offset` of an attempt's log starts (the primary key's index).
_ROW_AT = (select(func.max(log_chunks.c.offset))
           .where(log_chunks.c.attempt_id == bindparam("attempt_id"), log_chunks.c.offset <= bindparam("offset"))
           .scalar_subquery())

# Where the first stored row past byte `:offset` of an attempt's log starts (past the middle a cap dropped).
LOG_ROW_AFTER = select(func.min(log_chunks.c.offset)).where(log_chunks.c.attempt_id == bindparam("attempt_id"),
                                                            log_chunks.c.offset > bindparam("offset"))

# One page of an attempt's log: the stored rows from the one holding byte `:offset` to those starting
# before `:until` (`views.read_log`; rows are at most `log_cap.ROW_BYTES`, so a page is bounded).
LOG_PAGE = (select(log_chunks.c.offset, log_chunks.c.data, log_chunks.c.arrived_at)
            .where(log_chunks.c.attempt_id == bindparam("attempt_id"),
                   log_chunks.c.offset >= func.coalesce(_ROW_AT, bindparam("offset")),
                   log_chunks.c.offset < bindparam("until"))
            .order_by(log_chunks.c.offset))

# -- nodes -----------------------------------------------------------------------------------

# How many nodes the farm has.
COUNT_NODES = select(func.count()).select_from(nodes).where(nodes.c.removed_at.is_(None))

# One page of nodes, by name.
PAGE_OF_NODES = (select(nodes).where(nodes.c.removed_at.is_(None)).order_by(nodes.c.name)
                 .limit(bindparam("limit")).offset(bindparam("offset")))

# Every node, by name (the dashboard's farm summary).
ALL_NODES = select(nodes).where(nodes.c.removed_at.is_(None)).order_by(nodes.c.name)

# Every node by name, with only what a filter by state or name reads (`views.list_nodes`).
NODES_TO_FILTER = (select(nodes.c.id, nodes.c.name, nodes.c.hostname, nodes.c.state, nodes.c.admin_state)
                   .where(nodes.c.removed_at.is_(None)).order_by(nodes.c.name))

# These nodes, by name (the page a filter kept).
_NODE_IDS = ids_in(nodes.c.id, "node_ids")
NODES_BY_IDS = per_dialect(lambda d: select(nodes).where(_NODE_IDS[d]).order_by(nodes.c.name))

# A node by id (by name: `queries.nodes.NODE_BY_NAME`).
NODE_BY_ID = select(nodes).where(nodes.c.id == bindparam("node_id"))
