"""What wranglers and admins read and change of studio scheduling (`api/studio.py` is its HTTP face):
projects and their folders and stakes, pools and which node serves which, licence limits, urgent jobs
and moves between folders. Every function runs in the caller's transaction.

Records are made through `server/studio.py`, which makes their usage counters with them, so a
dispatcher never meets a project, pool, folder or limit without its counter. A change of a folder's
priority or of a job's folder is written onto the tasks that have not started, because dispatch reads
the order from the task rows (`ix_tasks_ready`); running tasks keep what they booked, and release it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from thresher.model.dispatch_rule import folder_key, limit_usage_key, project_key, stake_key
from thresher.model.states import FINAL_JOB_STATES, JobState, TaskState
from thresher.model.steering_rule import Action, job_refusal
from thresher.server import studio, usage, views
from thresher.server.clock import utcnow
from thresher.server.db.queries import dispatch as qd
from thresher.server.db.queries import studio as q
from thresher.server.errors import BadInput, Conflict, NotFound
from thresher.wire import studio as w

NOT_STARTED = [TaskState.WAITING, TaskState.READY, TaskState.PAUSED, TaskState.HELD]


@contextmanager
def _unique(what: str) -> Iterator[None]:
    """A name taken by another request committed meanwhile (PostgreSQL, two server processes): 409,
    as when it was taken before; the transaction is rolled back with the error."""
    try:
        yield
    except IntegrityError:
        raise Conflict(f"{what} exists already", [{"field": "name", "message": "taken"}]) from None


def _counters(conn: Connection) -> dict[str, tuple[int, int, int]]:
    return {r.key: (r.cores, r.gpus, r.units) for r in conn.execute(q.ALL_USAGE)}


def _project_row(conn: Connection, name: str) -> Any:
    row = conn.execute(q.PROJECT_BY_NAME, {"name": name}).first()
    if row is None:
        raise NotFound(f"no project named {name!r}")
    return row


def _folder_view(row: Any, used: dict[str, tuple[int, int, int]]) -> w.Folder:
    return w.Folder(id=row.id, name=row.name, priority=row.priority, min_cores=row.min_cores,
                    max_cores=row.max_cores, running_cores=used.get(folder_key(row.id), (0, 0, 0))[0])


def _project_views(conn: Connection, rows: list[Any]) -> list[w.Project]:
    used = _counters(conn)
    pools = studio.pool_names(conn)
    stakes = {(r.project_id, r.pool): r for r in conn.execute(q.ALL_STAKES)}
    folders: dict[int, list[w.Folder]] = {}
    for f in conn.execute(q.ALL_FOLDERS):
        folders.setdefault(f.project_id, []).append(_folder_view(f, used))
    out = []
    for p in rows:
        mine = []
        for pool in pools:
            s = stakes.get((p.id, pool))
            cores, gpus, _ = used.get(stake_key(p.id, pool), (0, 0, 0))
            mine.append(w.Stake(pool=pool, guaranteed_cores=s.guaranteed_cores if s else 0,
                                max_cores=s.max_cores if s else None, guaranteed_gpus=s.guaranteed_gpus if s else 0,
                                max_gpus=s.max_gpus if s else None, running_cores=cores, running_gpus=gpus))
        cores, gpus, _ = used.get(project_key(p.id), (0, 0, 0))
        out.append(w.Project(id=p.id, name=p.name, weight=p.weight, max_cores=p.max_cores, max_gpus=p.max_gpus,
                             running_cores=cores, running_gpus=gpus, stakes=mine, folders=folders.get(p.id, [])))
    return out


# ---------------------------------------------------------------- projects and folders

def active_project_ids(conn: Connection) -> set[int]:
    """Projects with queued or running jobs: those fair share divides the farm between (by weight)."""
    return set(conn.execute(qd.ACTIVE_PROJECTS).scalars())


def list_projects(conn: Connection) -> list[w.Project]:
    return _project_views(conn, list(conn.execute(q.ALL_PROJECTS)))


def get_project(conn: Connection, name: str) -> w.Project:
    return _project_views(conn, [_project_row(conn, name)])[0]


def create_project(conn: Connection, body: w.ProjectCreate) -> None:
    if conn.execute(q.PROJECT_BY_NAME, {"name": body.name}).first() is not None:
        raise Conflict(f"a project named {body.name!r} exists already", [{"field": "name", "message": "taken"}])
    with _unique(f"a project named {body.name!r}"):
        studio.add_project(conn, body.name, body.weight, body.max_cores, body.max_gpus)


def update_project(conn: Connection, name: str, body: w.ProjectPatch) -> None:
    row = _project_row(conn, name)
    given = body.model_fields_set
    conn.execute(q.UPDATE_PROJECT, {
        "b_id": row.id, "b_weight": body.weight if "weight" in given and body.weight is not None else row.weight,
        "b_max_cores": body.max_cores if "max_cores" in given else row.max_cores,
        "b_max_gpus": body.max_gpus if "max_gpus" in given else row.max_gpus})


def _folder_row(conn: Connection, project_id: int, name: str) -> Any:
    row = conn.execute(q.FOLDER_BY_NAME, {"project_id": project_id, "name": name}).first()
    if row is None:
        raise NotFound(f"no folder named {name!r} in this project")
    return row


def create_folder(conn: Connection, project: str, body: w.FolderCreate) -> None:
    project_id = _project_row(conn, project).id
    if conn.execute(q.FOLDER_BY_NAME, {"project_id": project_id, "name": body.name}).first() is not None:
        raise Conflict(f"project {project!r} has a folder named {body.name!r} already",
                       [{"field": "name", "message": "taken"}])
    with _unique(f"folder {body.name!r}"):
        folder_id, _ = studio.folder_for_submit(conn, project_id, body.name)
    conn.execute(q.UPDATE_FOLDER, {"b_id": folder_id, "b_priority": body.priority, "b_min_cores": body.min_cores,
                                   "b_max_cores": body.max_cores})


def update_folder(conn: Connection, project: str, folder: str, body: w.FolderPatch) -> None:
    row = _folder_row(conn, _project_row(conn, project).id, folder)
    given = body.model_fields_set
    priority = body.priority if "priority" in given and body.priority is not None else row.priority
    min_cores = body.min_cores if "min_cores" in given else row.min_cores
    max_cores = body.max_cores if "max_cores" in given else row.max_cores
    if min_cores is not None and max_cores is not None and max_cores < min_cores:
        raise BadInput("a folder's cap is below its minimum", [{"field": "max_cores", "message": (
            f"must be at least min_cores ({min_cores}), or null for no cap")}])
    conn.execute(q.UPDATE_FOLDER, {"b_id": row.id, "b_priority": priority, "b_min_cores": min_cores,
                                   "b_max_cores": max_cores})
    if priority != row.priority:
        conn.execute(q.SET_FOLDER_PRIORITY_OF_TASKS, {"b_folder_id": row.id, "b_running": TaskState.RUNNING,
                                                      "b_priority": priority})


def set_stake(conn: Connection, project: str, pool: str, body: w.StakeBody) -> None:
    project_id = _project_row(conn, project).id
    if conn.execute(q.POOL_BY_NAME, {"name": pool}).first() is None:
        raise NotFound(f"no pool named {pool!r} (a node's agent names it, or: thresher node pool NODE {pool})")
    values = {"guaranteed_cores": body.guaranteed_cores, "max_cores": body.max_cores,
              "guaranteed_gpus": body.guaranteed_gpus, "max_gpus": body.max_gpus}
    if conn.execute(q.STAKE_OF, {"project_id": project_id, "pool": pool}).first() is None:
        conn.execute(q.INSERT_STAKE, {"project_id": project_id, "pool": pool, **values})
    else:
        conn.execute(q.UPDATE_STAKE, {"b_project_id": project_id, "b_pool": pool,
                                      **{f"b_{k}": v for k, v in values.items()}})
    usage.ensure(conn, [stake_key(project_id, pool)])


# ---------------------------------------------------------------- pools

def _pool_views(conn: Connection, names: list[str]) -> list[w.Pool]:
    per_pool = {r.pool: (int(r.n), int(r.cores)) for r in conn.execute(q.NODES_PER_POOL)}
    running: dict[str, list[int]] = {name: [0, 0] for name in names}
    for key, (cores, gpus, _) in _counters(conn).items():
        pool = key.partition("/pool:")[2] if key.startswith("project:") else ""
        if pool in running:
            running[pool][0] += cores
            running[pool][1] += gpus
    return [w.Pool(name=name, nodes=per_pool.get(name, (0, 0))[0], cores=per_pool.get(name, (0, 0))[1],
                   running_cores=running[name][0], running_gpus=running[name][1]) for name in names]


def list_pools(conn: Connection) -> list[w.Pool]:
    return _pool_views(conn, studio.pool_names(conn))


def get_pool(conn: Connection, name: str) -> w.PoolDetail:
    if conn.execute(q.POOL_BY_NAME, {"name": name}).first() is None:
        raise NotFound(f"no pool named {name!r}")
    pool = _pool_views(conn, [name])[0]
    return w.PoolDetail(**pool.model_dump(), members=views.nodes_of(conn, conn.execute(q.NODES_IN_POOL,
                                                                                        {"pool": name}).all()))


def move_node(conn: Connection, ident: str, pool: str) -> int:
    """A node serves another pool from its next request for work on (what it runs finishes where it
    started: its attempts release what they booked there). The id of the node."""
    node_id = int(views.find_node(conn, ident).id)
    studio.ensure_pool(conn, pool)
    conn.execute(q.SET_NODE_POOL, {"node_id": node_id, "b_pool": pool})
    return node_id


# ---------------------------------------------------------------- limits

def _limit_view(row: Any, used: dict[str, tuple[int, int, int]]) -> w.Limit:
    return w.Limit(name=row.name, max_total=row.max_total, max_per_node=row.max_per_node,
                   in_use=used.get(limit_usage_key(row.name), (0, 0, 0))[2])


def list_limits(conn: Connection) -> list[w.Limit]:
    used = _counters(conn)
    return [_limit_view(r, used) for r in conn.execute(q.ALL_LIMITS)]


def _limit_row(conn: Connection, name: str) -> Any:
    row = conn.execute(q.LIMIT_BY_NAME, {"name": name}).first()
    if row is None:
        raise NotFound(f"no limit named {name!r}")
    return row


def get_limit(conn: Connection, name: str) -> w.Limit:
    return _limit_view(_limit_row(conn, name), _counters(conn))


def create_limit(conn: Connection, body: w.LimitCreate) -> None:
    if conn.execute(q.LIMIT_BY_NAME, {"name": body.name}).first() is not None:
        raise Conflict(f"a limit named {body.name!r} exists already", [{"field": "name", "message": "taken"}])
    with _unique(f"a limit named {body.name!r}"):
        conn.execute(q.INSERT_LIMIT, {"name": body.name, "max_total": body.max_total,
                                      "max_per_node": body.max_per_node})
    usage.ensure(conn, [limit_usage_key(body.name)])


def update_limit(conn: Connection, name: str, body: w.LimitPatch) -> None:
    row = _limit_row(conn, name)
    given = body.model_fields_set
    conn.execute(q.UPDATE_LIMIT, {
        "b_name": name, "b_max_total": body.max_total if body.max_total is not None else row.max_total,
        "b_max_per_node": body.max_per_node if "max_per_node" in given else row.max_per_node})


def delete_limit(conn: Connection, name: str) -> None:
    """Refused while units are in use or a layer of an unfinished job names it: those tasks would
    otherwise run without it, or wait for a limit no one can see."""
    _limit_row(conn, name)
    in_use = _counters(conn).get(limit_usage_key(name), (0, 0, 0))[2]
    if in_use:
        raise Conflict(f"limit {name!r} has {in_use} units in use; remove it when they are released")
    for asked in conn.execute(q.LIMITS_OF_UNFINISHED_LAYERS, {"final": sorted(FINAL_JOB_STATES)}).scalars():
        if name in (asked or {}):
            raise Conflict(f"limit {name!r} is named by layers of unfinished jobs")
    conn.execute(q.DELETE_LIMIT, {"name": name})
    conn.execute(q.DELETE_USAGE, {"key": limit_usage_key(name)})


# ---------------------------------------------------------------- jobs

def _job_place(conn: Connection, job_id: int, action: Action | None = None) -> Any:
    """The job's project, folder and state; 409 when `action` would do nothing to it (**the** rule,
    `model/steering_rule.job_refusal`: urgency and moves weigh the job's state only, not its counts)."""
    row = conn.execute(q.JOB_PLACE, {"job_id": job_id}).first()
    if row is None:
        raise NotFound(f"no job with id {job_id}")
    refusal = None if action is None else job_refusal(action, job_id, JobState(row.state), paused=bool(row.paused),
                                                      counts={})
    if refusal:
        raise Conflict(refusal)
    return row


def set_urgent(conn: Connection, job_id: int, urgent: bool, by: str, now: datetime | None = None) -> None:
    """An urgent job's tasks go ahead of fair share (`dispatch_rule`); who asked, and when, is kept. A
    finished job is not marked (it starts nothing); the mark is always taken off."""
    _job_place(conn, job_id, Action.URGENT if urgent else None)
    conn.execute(q.SET_JOB_URGENT, {"b_job_id": job_id, "b_urgent": urgent, "b_by": by if urgent else None,
                                    "b_at": (now or utcnow()) if urgent else None})
    conn.execute(q.SET_TASKS_URGENT, {"b_job_id": job_id, "b_urgent": urgent})


def move_job(conn: Connection, job_id: int, folder: str) -> None:
    """The job joins a folder of its project (made if new); its tasks that have not started take the
    folder's place in the order."""
    job = _job_place(conn, job_id, Action.MOVE)
    folder_id, priority = studio.folder_for_submit(conn, job.project_id, folder)
    conn.execute(q.SET_JOB_FOLDER, {"b_job_id": job_id, "b_folder_id": folder_id})
    conn.execute(q.MOVE_TASKS, {"b_job_id": job_id, "b_states": NOT_STARTED, "b_folder_id": folder_id,
                                "b_priority": priority})
