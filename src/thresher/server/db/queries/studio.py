"""Statements of studio scheduling (`server/studio.py`, `server/usage.py`): projects, folders, pools,
projects' stakes in pools, licence limits, and the usage counters the caps are checked against."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from thresher.server.db.tables import folders, jobs, limits, nodes, pools, project_pools, projects, usage

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

# The usage counters of these keys; the same rows locked, in key order, on PostgreSQL: dispatchers and
# finishers always lock counters in this one order, so they never deadlock on them.
USAGE_OF = select(usage).where(usage.c.key.in_(bindparam("keys", expanding=True))).order_by(usage.c.key)
USAGE_OF_LOCKED = USAGE_OF.with_for_update()
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
