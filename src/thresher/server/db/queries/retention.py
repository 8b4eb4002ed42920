"""Statements of jobs and data kept in check (`server/retention.py`): jobs archived (their statistics
summed onto the job row, their task, attempt and log rows deleted) and deleted, nodes removed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, or_, select, update

from thresher.model.dependencies import HOLDS_ITS_WAITERS, Mode
from thresher.model.states import FINAL_JOB_STATES
from thresher.server.db.tables import (
    attempts,
    dependencies,
    jobs,
    layers,
    log_chunks,
    node_failures,
    nodes,
    tasks,
    tokens,
)

_JOB_IDS: Any = bindparam("job_ids", expanding=True)
_FINAL = sorted(FINAL_JOB_STATES)

_WAITER = jobs.alias("waiter")
_WAITS_FOR_SUCCESS = (dependencies.join(_WAITER, _WAITER.c.id == dependencies.c.waiter_job_id), [
    dependencies.c.waiter_job_id != dependencies.c.target_job_id, dependencies.c.mode == Mode.SUCCESS,
    _WAITER.c.state.not_in(_FINAL)])

# Of these jobs, the failed or killed ones with the unfinished jobs that wait for them to succeed: what
# keeps them from being archived or deleted (`model/dependencies.HOLDS_ITS_WAITERS`).
_TARGET = jobs.alias("target")
WAITERS_FOR_SUCCESS_OF = (select(dependencies.c.target_job_id, _TARGET.c.state.label("target_state"),
                                 _WAITER.c.id, _WAITER.c.state).distinct()
                          .select_from(_WAITS_FOR_SUCCESS[0].join(_TARGET, _TARGET.c.id == dependencies.c.target_job_id))
                          .where(dependencies.c.target_job_id.in_(_JOB_IDS), _TARGET.c.state.in_(HOLDS_ITS_WAITERS),
                                 *_WAITS_FOR_SUCCESS[1])
                          .order_by(dependencies.c.target_job_id, _WAITER.c.id))

# A finished job that holds its waiters (as above): a filter and the retention passes leave it.
HELD_BY_WAITERS = jobs.c.state.in_(HOLDS_ITS_WAITERS) & exists(
    select(dependencies.c.id).select_from(_WAITS_FOR_SUCCESS[0])
    .where(dependencies.c.target_job_id == jobs.c.id, *_WAITS_FOR_SUCCESS[1]))

# These jobs with what decides whether they may be archived or deleted.
JOBS_BY_IDS = select(jobs.c.id, jobs.c.name, jobs.c.state, jobs.c.archived_at).where(jobs.c.id.in_(_JOB_IDS))

# The same, locked (PostgreSQL) in id order: a retry or resume of one of them (which takes the job row,
# `queries/jobs.LOCK_JOB`) waits until the archive or delete committed, or goes first and is seen.
LOCK_JOBS_BY_IDS = JOBS_BY_IDS.order_by(jobs.c.id).with_for_update()


def jobs_matching(states: list[str], project: str | None, finished_before: datetime | None, archived: bool | None,
                  limit: int, held: bool = False) -> Select[Any]:
    """Ids of the finished jobs a filter names (state, project, finished before, archived or not), oldest
    first: those that do not hold waiters (`HELD_BY_WAITERS`), or with `held` only those that do."""
    conditions: list[Any] = [jobs.c.state.in_(states or _FINAL), HELD_BY_WAITERS if held else ~HELD_BY_WAITERS]
    if project:
        conditions.append(jobs.c.project == project)
    if finished_before is not None:
        conditions.append(jobs.c.finished_at < finished_before)
    if archived is True:
        conditions.append(jobs.c.archived_at.is_not(None))
    elif archived is False:
        conditions.append(jobs.c.archived_at.is_(None))
    return select(jobs.c.id).where(*conditions).order_by(jobs.c.id).limit(limit)


# Finished jobs not archived yet that finished before `:cutoff`, oldest first (one retention batch), but
# those that hold their waiters.
DUE_FOR_ARCHIVE = (select(jobs.c.id).where(jobs.c.archived_at.is_(None), jobs.c.state.in_(_FINAL),
                                           jobs.c.finished_at < bindparam("cutoff"), ~HELD_BY_WAITERS)
                   .order_by(jobs.c.finished_at).limit(bindparam("limit")))

# Archived jobs archived before `:cutoff`, oldest first (one retention batch), but those that hold waiters.
DUE_FOR_DELETE = (select(jobs.c.id).where(jobs.c.archived_at < bindparam("cutoff"), ~HELD_BY_WAITERS)
                  .order_by(jobs.c.archived_at).limit(bindparam("limit")))

# How many tasks of each layer of these jobs are in each state.
TASK_STATES_BY_LAYER = (select(tasks.c.job_id, tasks.c.layer_id, tasks.c.state, func.count().label("n"))
                        .where(tasks.c.job_id.in_(_JOB_IDS)).group_by(tasks.c.job_id, tasks.c.layer_id, tasks.c.state))

# The attempts of these jobs, with what the summary sums (CPU, wall time, failures), by layer.
ATTEMPT_FIGURES = (select(attempts.c.job_id, tasks.c.layer_id, attempts.c.state, attempts.c.cpu_s,
                          attempts.c.started_at, attempts.c.ended_at)
                   .join(tasks, tasks.c.id == attempts.c.task_id).where(attempts.c.job_id.in_(_JOB_IDS)))

# A job archived with the summary of its statistics.
ARCHIVE_JOB = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(
    archived_at=bindparam("b_now"), summary=bindparam("b_summary"))

# The log pieces of these jobs' attempts.
DELETE_LOGS = delete(log_chunks).where(log_chunks.c.attempt_id.in_(
    select(attempts.c.id).where(attempts.c.job_id.in_(_JOB_IDS)).scalar_subquery()))

# These jobs' attempts.
DELETE_ATTEMPTS = delete(attempts).where(attempts.c.job_id.in_(_JOB_IDS))

# Dependencies naming a task of these jobs (on either side); job and layer edges stay while the job does.
DELETE_TASK_EDGES = delete(dependencies).where(or_(
    dependencies.c.waiter_task_id.in_(select(tasks.c.id).where(tasks.c.job_id.in_(_JOB_IDS)).scalar_subquery()),
    dependencies.c.target_task_id.in_(select(tasks.c.id).where(tasks.c.job_id.in_(_JOB_IDS)).scalar_subquery())))

# These jobs' tasks.
DELETE_TASKS = delete(tasks).where(tasks.c.job_id.in_(_JOB_IDS))

# Every dependency these jobs are on either side of.
DELETE_EDGES = delete(dependencies).where(or_(dependencies.c.waiter_job_id.in_(_JOB_IDS),
                                              dependencies.c.target_job_id.in_(_JOB_IDS)))

# These jobs' node blocklists.
DELETE_NODE_FAILURES = delete(node_failures).where(node_failures.c.job_id.in_(_JOB_IDS))

# These jobs' layers.
DELETE_LAYERS = delete(layers).where(layers.c.job_id.in_(_JOB_IDS))

# These jobs.
DELETE_JOBS = delete(jobs).where(jobs.c.id.in_(_JOB_IDS))

# -- nodes -----------------------------------------------------------------------------------

# A node with what decides whether it may be removed (its live attempts counted).
NODE_FOR_REMOVAL = select(nodes.c.id, nodes.c.name, nodes.c.state, nodes.c.removed_at).where(
    nodes.c.name == bindparam("name"))

# How many live attempts a node holds.
LIVE_ATTEMPTS_OF_NODE = select(func.count()).select_from(attempts).where(
    attempts.c.node_id == bindparam("node_id"), attempts.c.state.in_(bindparam("states", expanding=True)))

# A node removed: out of the lists, its row kept for the attempts that name it.
REMOVE_NODE = update(nodes).where(nodes.c.id == bindparam("b_node_id")).values(removed_at=bindparam("b_now"))

# A removed node's credentials, so its agent cannot come back on them.
DELETE_NODE_TOKENS = delete(tokens).where(tokens.c.node_id == bindparam("node_id"))

# A removed node's blocklist entries.
DELETE_NODE_BLOCKLIST = delete(node_failures).where(node_failures.c.node_id == bindparam("node_id"))
