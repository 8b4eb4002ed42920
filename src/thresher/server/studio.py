"""Projects, folders, pools and licence limits as the server keeps them, and the policy dispatch
weighs (`model.dispatch_rule.Policy`). Every function runs in the caller's transaction.

Each record makes its usage counters when it is made (`server/usage.py`): a project one per pool, a
pool one per project, a folder and a limit one each.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import Connection

from thresher.model.dispatch_rule import Folder, Limit, Policy, Project, Stake, folder_key, project_key, stake_key
from thresher.server import usage
from thresher.server.clock import utcnow
from thresher.server.db.queries import studio as q
from thresher.server.errors import BadInput

DEFAULT_POOL = "default"


def project_for_submit(conn: Connection, name: str, *, create: bool) -> int:
    """The id of the project a submit names; a project not known yet is made when the server allows it
    (`ServerSettings.create_unknown_projects`), else refused naming the field."""
    row = conn.execute(q.PROJECT_BY_NAME, {"name": name}).first()
    if row is not None:
        return int(row.id)
    if not create:
        message = f"no project named {name!r} (an admin adds it: thresher project add {name})"
        raise BadInput(f"unknown project {name!r}", [{"field": "project", "message": message}])
    return add_project(conn, name)


def add_project(conn: Connection, name: str, weight: float = 1.0, max_cores: int | None = None,
                max_gpus: int | None = None) -> int:
    """A new project with its usage counters (farm-wide and per pool)."""
    project_id = int(conn.execute(q.INSERT_PROJECT, {"name": name, "weight": weight, "max_cores": max_cores,
                                                     "max_gpus": max_gpus, "created_at": utcnow()}).scalar_one())
    pools = list(conn.execute(q.ALL_POOL_NAMES).scalars())
    usage.ensure(conn, [project_key(project_id)] + [stake_key(project_id, pool) for pool in pools])
    return project_id


def ensure_pool(conn: Connection, name: str) -> None:
    """Make the pool a node names if it is new (an agent's flag is how a studio says where a node
    serves), with every project's counter in it."""
    if conn.execute(q.POOL_BY_NAME, {"name": name}).first() is not None:
        return
    conn.execute(q.INSERT_POOL, {"name": name, "created_at": utcnow()})
    usage.ensure(conn, [stake_key(p.id, name) for p in conn.execute(q.ALL_PROJECTS)])


def folder_for_submit(conn: Connection, project_id: int, name: str) -> tuple[int, int]:
    """(id, priority) of the project's folder of this name, made (priority 0, no minimum or cap) if new."""
    row = conn.execute(q.FOLDER_BY_NAME, {"project_id": project_id, "name": name}).first()
    if row is not None:
        return int(row.id), int(row.priority)
    folder_id = int(conn.execute(q.INSERT_FOLDER, {"project_id": project_id, "name": name, "priority": 0})
                    .scalar_one())
    usage.ensure(conn, [folder_key(folder_id)])
    return folder_id, 0


def limit_names(conn: Connection) -> dict[str, Limit]:
    """Every licence limit by name."""
    return {r.name: Limit(r.name, r.max_total, r.max_per_node) for r in conn.execute(q.ALL_LIMITS)}


def pool_names(conn: Connection) -> list[str]:
    return list(conn.execute(q.ALL_POOL_NAMES).scalars())


def read_policy(conn: Connection, project_ids: Iterable[int]) -> Policy:
    """What dispatch weighs for these projects: their weights and caps, stakes, folders, and every limit."""
    wanted = sorted(set(project_ids))
    projects = {r.id: Project(r.id, r.name, r.weight, r.max_cores, r.max_gpus) for r in conn.execute(q.ALL_PROJECTS)}
    stakes = {(r.project_id, r.pool): Stake(r.guaranteed_cores, r.max_cores, r.guaranteed_gpus, r.max_gpus)
              for r in conn.execute(q.ALL_STAKES)}
    folders = {r.id: Folder(r.id, r.name, r.priority, r.min_cores, r.max_cores)
               for r in conn.execute(q.FOLDERS_OF_PROJECTS, {"project_ids": wanted})} if wanted else {}
    return Policy(projects, stakes, folders, limit_names(conn))
