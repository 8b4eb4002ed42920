"""Statements of studio scheduling (`server/studio.py`, `server/usage.py`): projects, folders, pools,
projects' stakes in pools, licence limits, and the usage counters the caps are checked against."""

from __future__ import annotations

from sqlalchemy import DateTime, and_, bindparam, delete, func, insert, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from thresher.server.db.tables import (
                                       folders,
                                       jobs,
                                       layers,
                                       limits,
                                       nodes,
                                       pools,
                                       project_pools,
                                       projects,
                                       tasks,
                                       usage,
                                       usage_history,
)

# A project by name (a submit names its project).
PROJECT_BY_NAME = select(projects).where(projects.c.name == bindparam("name"))
# A new project, giving back its id.
INSERT_PROJECT = insert(projects).returning(projects.c.id)
# Every project (a short list: a studio has tens of shows).
ALL_PROJECTS = select(projects).order_by(projects.c.name)

# A project's folder by name.
FOLDER_BY_NAME = select(folders).where(folders.c.project_id == bindparam("project_id"),
                                       folders.c.name == bindparam("name"))
# A new folder, giving back its id.
INSERT_FOLDER = insert(folders).returning(folders.c.id)
# Every folder with guarantees or caps, or of these projects (what dispatch weighs).
FOLDERS_OF_PROJECTS = select(folders).where(folders.c.project_id.in_(bindparam("project_ids", expanding=True)))

# A pool by name; a new pool; every pool's name.
POOL_BY_NAME = select(pools).where(pools.c.name == bindparam("name"))
INSERT_POOL = insert(pools)
ALL_POOL_NAMES = select(pools.c.name).order_by(pools.c.name)

# Every project's stake in each pool that has one set (guarantees and burst caps).
ALL_STAKES = select(project_pools)

# Every licence limit (a short list).
ALL_LIMITS = select(limits).order_by(limits.c.name)

# The usage counters of these keys; the same rows locked, in key order, on PostgreSQL, after the
# counters' advisory lock (USAGE_LOCK_PG, `server/usage.py`).
USAGE_OF = select(usage).where(usage.c.key.in_(bindparam("keys", expanding=True))).order_by(usage.c.key)
USAGE_OF_LOCKED = USAGE_OF.with_for_update()

# PostgreSQL: the one lock every transaction takes, to the end, before it locks any usage counter. Each
# statement locks its rows in key order, but one transaction locks several sets (a batch's reports
# release theirs, then its dispatch rounds read theirs), and two such transactions deadlocked: a
# second's wait for PostgreSQL's deadlock_timeout, then one batch aborted and run again call by call
# (bench/dispatch.py, studio scenario, several a run). Under this lock they queue instead. The key is
# any 64-bit number other software does not use (the two before it are the leader's and migrations').
USAGE_LOCK_KEY = 0x7468726573686574
USAGE_LOCK_PG = text(f"SELECT pg_advisory_xact_lock({USAGE_LOCK_KEY})")
# Which of these keys have a counter already.
USAGE_KEYS_OF = select(usage.c.key).where(usage.c.key.in_(bindparam("keys", expanding=True)))
# New counters at zero (a key another transaction made meanwhile is left as it is).
INSERT_USAGE = {"sqlite": sqlite_insert(usage).on_conflict_do_nothing(),
                "postgresql": pg_insert(usage).on_conflict_do_nothing()}
# A counter moved by a booking or a release (one parameter set per key, applied in key order).
ADD_USAGE = update(usage).where(usage.c.key == bindparam("b_key")).values(
    cores=usage.c.cores + bindparam("b_cores"), gpus=usage.c.gpus + bindparam("b_gpus"),
    units=usage.c.units + bindparam("b_units"))
# PostgreSQL: a batch's counter moves in one statement (after USAGE_OF_LOCKED took the rows in order).
ADD_USAGE_PG = text("""
UPDATE usage SET cores = usage.cores + d.cores, gpus = usage.gpus + d.gpus, units = usage.units + d.units
FROM unnest(CAST(:keys AS text[]), CAST(:cores AS integer[]), CAST(:gpus AS integer[]), CAST(:units AS integer[]))
  AS d(key, cores, gpus, units)
WHERE usage.key = d.key
""")

# Projects with jobs that may have ready tasks, with whether any of those is urgent.
ACTIVE_PROJECTS = (select(jobs.c.project_id, jobs.c.urgent).distinct()
                   .where(jobs.c.state.in_(bindparam("states", expanding=True))))

# A node's pool changed (by its agent's registration or a wrangler).
SET_NODE_POOL = update(nodes).where(nodes.c.id == bindparam("node_id")).values(pool=bindparam("b_pool"))


# ---------------------------------------------------------------- the admin surface (`server/studio_admin.py`)

# A project's weight and farm-wide caps changed.
UPDATE_PROJECT = update(projects).where(projects.c.id == bindparam("b_id")).values(
    weight=bindparam("b_weight"), max_cores=bindparam("b_max_cores"), max_gpus=bindparam("b_max_gpus"))
# Every folder, by project and name.
ALL_FOLDERS = select(folders).order_by(folders.c.project_id, folders.c.name)
# A folder by id (a job's folder, shown with the job).
FOLDER_BY_ID = select(folders).where(folders.c.id == bindparam("folder_id"))
# A folder's priority, minimum and cap changed.
UPDATE_FOLDER = update(folders).where(folders.c.id == bindparam("b_id")).values(
    priority=bindparam("b_priority"), min_cores=bindparam("b_min_cores"), max_cores=bindparam("b_max_cores"))
# The folder priority that orders a folder's tasks, on those not running (a running one keeps its place).
SET_FOLDER_PRIORITY_OF_TASKS = update(tasks).where(
    tasks.c.folder_id == bindparam("b_folder_id"), tasks.c.state != bindparam("b_running")).values(
    folder_priority=bindparam("b_priority"))

# A project's stake in one pool.
STAKE_OF = select(project_pools).where(project_pools.c.project_id == bindparam("project_id"),
                                       project_pools.c.pool == bindparam("pool"))
# A new stake.
INSERT_STAKE = insert(project_pools)
# A stake's guarantees and caps changed.
UPDATE_STAKE = update(project_pools).where(
    project_pools.c.project_id == bindparam("b_project_id"), project_pools.c.pool == bindparam("b_pool")).values(
    guaranteed_cores=bindparam("b_guaranteed_cores"), max_cores=bindparam("b_max_cores"),
    guaranteed_gpus=bindparam("b_guaranteed_gpus"), max_gpus=bindparam("b_max_gpus"))

# Every pool by name.
ALL_POOLS = select(pools).order_by(pools.c.name)
# How many nodes, and their cores, serve each pool.
NODES_PER_POOL = select(nodes.c.pool, func.count().label("n"), func.coalesce(func.sum(nodes.c.cores), 0)
                        .label("cores")).group_by(nodes.c.pool)
# The nodes of one pool, by name.
NODES_IN_POOL = select(nodes).where(nodes.c.pool == bindparam("pool")).order_by(nodes.c.name)

# A licence limit by name; a new one; its totals changed; gone.
LIMIT_BY_NAME = select(limits).where(limits.c.name == bindparam("name"))
INSERT_LIMIT = insert(limits)
UPDATE_LIMIT = update(limits).where(limits.c.name == bindparam("b_name")).values(
    max_total=bindparam("b_max_total"), max_per_node=bindparam("b_max_per_node"))
DELETE_LIMIT = delete(limits).where(limits.c.name == bindparam("name"))
# A counter no longer kept (that of a limit removed).
DELETE_USAGE = delete(usage).where(usage.c.key == bindparam("key"))
# The limits that layers of unfinished jobs ask for (a limit they name cannot be removed).
LIMITS_OF_UNFINISHED_LAYERS = (select(layers.c.limits).join(jobs, jobs.c.id == layers.c.job_id)
                               .where(jobs.c.state.not_in(bindparam("final", expanding=True))))
# Every usage counter (a short table: projects x pools, folders, limits).
ALL_USAGE = select(usage)

# A job's project, folder, state and pause (urgency and moves; a finished job is neither).
JOB_PLACE = select(jobs.c.id, jobs.c.project_id, jobs.c.folder_id, jobs.c.state, jobs.c.paused).where(
    jobs.c.id == bindparam("job_id"))
# A job marked urgent (by whom, when) or not, and its tasks alike.
SET_JOB_URGENT = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(
    urgent=bindparam("b_urgent"), urgent_by=bindparam("b_by"), urgent_at=bindparam("b_at"))
SET_TASKS_URGENT = update(tasks).where(tasks.c.job_id == bindparam("b_job_id")).values(urgent=bindparam("b_urgent"))
# A job moved to a folder, and its tasks that have not started (those running keep their booking).
SET_JOB_FOLDER = update(jobs).where(jobs.c.id == bindparam("b_job_id")).values(folder_id=bindparam("b_folder_id"))
MOVE_TASKS = update(tasks).where(tasks.c.job_id == bindparam("b_job_id"),
                                 tasks.c.state.in_(bindparam("b_states", expanding=True))).values(
    folder_id=bindparam("b_folder_id"), folder_priority=bindparam("b_priority"))


# ---------------------------------------------------------------- usage history (`server/usage_history.py`)

# Every counter in use now, and every project's own counter even at zero (the chart's time line), as
# one sample at :at: a counter at zero is not written (most folders and stakes, most of the time).
SAMPLE_USAGE = insert(usage_history).from_select(
    ["at", "key", "cores", "gpus", "units"],
    select(bindparam("at", type_=DateTime(timezone=True)), usage.c.key, usage.c.cores, usage.c.gpus, usage.c.units)
    .where(or_(usage.c.cores != 0, usage.c.gpus != 0, usage.c.units != 0,
               and_(usage.c.key.like("project:%"), not_(usage.c.key.contains("/"))))))
# Samples older than :cutoff.
PRUNE_USAGE_HISTORY = delete(usage_history).where(usage_history.c.at < bindparam("cutoff"))
# The samples of these keys since :since, by key and time (ix_usage_history_key_at).
USAGE_HISTORY_OF = (select(usage_history).where(usage_history.c.key.in_(bindparam("keys", expanding=True)),
                                                usage_history.c.at >= bindparam("since"))
                    .order_by(usage_history.c.key, usage_history.c.at))
