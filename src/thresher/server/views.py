"""Read-side queries and the JSON shapes of jobs, layers, tasks, attempts and nodes (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from thresher.model.spec import MAX_ID
from thresher.model.states import DONE_TASK_STATES, LIVE_ATTEMPT_STATES, TASK_STATES
from thresher.server.clock import iso
from thresher.server.db.tables import attempts, jobs, layers, nodes, tasks
from thresher.server.errors import BadInput, NotFound

JOB_SORTS = {"id": jobs.c.id, "-id": jobs.c.id.desc(), "priority": jobs.c.priority, "-priority": jobs.c.priority.desc(),
             "name": jobs.c.name, "-name": jobs.c.name.desc(), "submitted": jobs.c.id, "-submitted": jobs.c.id.desc()}


def _empty_counts() -> dict[str, int]:
    return {state: 0 for state in TASK_STATES}


def _progress(counts: dict[str, int], total: int, running: float = 0.0) -> float:
    """Mean task progress: done tasks count 100, running tasks what their agent last parsed."""
    done = sum(counts.get(s, 0) for s in DONE_TASK_STATES)
    return min(round((100.0 * done + running) / total, 1), 100.0) if total else 100.0


def running_progress(conn: Connection, key: Any, where: Any) -> dict[int, float]:
    """Sum of the progress of running tasks per `key` (tasks.c.job_id or tasks.c.layer_id)."""
    rows = conn.execute(select(key, func.sum(tasks.c.progress)).where(
        where, tasks.c.state == "running", tasks.c.progress.is_not(None)).group_by(key))
    return {r[0]: float(r[1] or 0.0) for r in rows}


def job_summary(row: Any, counts: dict[str, int], running: float = 0.0) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "owner": row.owner, "project": row.project, "sequence": row.sequence,
        "shot": row.shot, "priority": row.priority, "state": row.state, "paused": bool(row.paused),
        "submitted_at": iso(row.submitted_at), "finished_at": iso(row.finished_at), "counts": counts,
        "total_tasks": row.total_tasks, "progress": _progress(counts, row.total_tasks, running),
    }


def counts_by_job(conn: Connection, job_ids: list[int]) -> dict[int, dict[str, int]]:
    out = {job_id: _empty_counts() for job_id in job_ids}
    if job_ids:
        for r in conn.execute(select(tasks.c.job_id, tasks.c.state, func.count().label("n"))
                              .where(tasks.c.job_id.in_(job_ids)).group_by(tasks.c.job_id, tasks.c.state)):
            out[r.job_id][r.state] = r.n
    return out


def list_jobs(conn: Connection, *, state: str | None, project: str | None, owner: str | None, name: str | None,
              limit: int, offset: int, sort: str) -> dict[str, Any]:
    if sort not in JOB_SORTS:
        raise BadInput("unknown sort", [{"field": "sort", "message": f"use one of {', '.join(JOB_SORTS)}"}])
    conditions = []
    if state:
        conditions.append(jobs.c.state.in_(state.split(",")))
    if project:
        conditions.append(jobs.c.project == project)
    if owner:
        conditions.append(jobs.c.owner == owner)
    if name:
        conditions.append(jobs.c.name.contains(name, autoescape=True))
    total = conn.execute(select(func.count()).select_from(jobs).where(*conditions)).scalar() or 0
    rows = conn.execute(select(jobs).where(*conditions).order_by(JOB_SORTS[sort], jobs.c.id.desc())
                        .limit(limit).offset(offset)).all()
    counts = counts_by_job(conn, [r.id for r in rows])
    ids = [r.id for r in rows if counts[r.id].get("running")]
    running = running_progress(conn, tasks.c.job_id, tasks.c.job_id.in_(ids)) if ids else {}
    return {"items": [job_summary(r, counts[r.id], running.get(r.id, 0.0)) for r in rows], "total": total}


def _known(kind: str, row_id: int) -> None:
    """An id past the id columns' range names nothing (and must not reach the database: PostgreSQL
    refuses to compare a 32-bit column with it, SQLite to bind a number past 64 bits)."""
    if not 1 <= row_id <= MAX_ID:
        raise NotFound(f"no {kind} with id {row_id}")


def get_job(conn: Connection, job_id: int) -> dict[str, Any]:
    _known("job", job_id)
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job with id {job_id}")
    layer_counts: dict[int, dict[str, int]] = {}
    for r in conn.execute(select(tasks.c.layer_id, tasks.c.state, func.count().label("n"))
                          .where(tasks.c.job_id == job_id).group_by(tasks.c.layer_id, tasks.c.state)):
        layer_counts.setdefault(r.layer_id, _empty_counts())[r.state] = r.n
    job_counts = _empty_counts()
    for counts in layer_counts.values():
        for state, n in counts.items():
            job_counts[state] += n
    running = running_progress(conn, tasks.c.layer_id, tasks.c.job_id == job_id) if job_counts.get("running") else {}
    out = job_summary(row, job_counts, sum(running.values()))
    out["layers"] = [layer_view(layer, layer_counts.get(layer.id, _empty_counts()), running.get(layer.id, 0.0))
                     for layer in conn.execute(select(layers).where(layers.c.job_id == job_id).order_by(layers.c.idx))]
    out["depends_on"] = row.depends_on or []
    out["spec"] = row.spec
    return out


def layer_view(row: Any, counts: dict[str, int], running: float = 0.0) -> dict[str, Any]:
    from thresher.model.states import job_state_from_counts

    return {
        "id": row.id, "name": row.name, "template": row.template, "frames": row.frames, "chunk": row.chunk,
        "cores": row.cores, "memory_mb": row.memory_mb, "gpus": row.gpus, "tags": row.tags or [],
        "retries": row.retries, "timeout": row.timeout, "depends_on": row.depends_on or [],
        "state": job_state_from_counts(counts, paused=False, killed=False), "counts": counts,
        "total_tasks": row.total_tasks, "progress": _progress(counts, row.total_tasks, running),
    }


def _task_query():  # type: ignore[no-untyped-def]
    return (select(tasks, layers.c.name.label("layer_name"), nodes.c.name.label("node_name"))
            .join(layers, layers.c.id == tasks.c.layer_id).outerjoin(nodes, nodes.c.id == tasks.c.node_id))


def task_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "job_id": row.job_id, "layer_id": row.layer_id, "layer": row.layer_name, "index": row.idx,
        "frames": row.frames, "state": row.state, "tries": row.tries, "lost": row.lost, "node": row.node_name,
        "attempt_id": row.attempt_id, "progress": row.progress, "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at), "part": row.part,
    }


def list_tasks(conn: Connection, job_id: int, *, layer: str | None, state: str | None, limit: int,
               offset: int) -> dict[str, Any]:
    _known("job", job_id)
    if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
        raise NotFound(f"no job with id {job_id}")
    conditions = [tasks.c.job_id == job_id]
    if layer:
        conditions.append(layers.c.name == layer)
    if state:
        conditions.append(tasks.c.state.in_(state.split(",")))
    total = conn.execute(select(func.count()).select_from(tasks.join(layers, layers.c.id == tasks.c.layer_id))
                         .where(*conditions)).scalar() or 0
    rows = conn.execute(_task_query().where(*conditions).order_by(layers.c.idx, tasks.c.idx).limit(limit).offset(offset))
    return {"items": [task_view(r) for r in rows], "total": total}


def get_task(conn: Connection, task_id: int) -> dict[str, Any]:
    _known("task", task_id)
    row = conn.execute(_task_query().where(tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    out = task_view(row)
    out["attempts"] = list_attempts(conn, task_id)
    return out


def attempt_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "task_id": row.task_id, "number": row.number, "node": row.node_name, "state": row.state,
        "started_at": iso(row.started_at), "ended_at": iso(row.ended_at), "exit_code": row.exit_code,
        "cpu_s": row.cpu_s, "peak_rss_mb": row.peak_rss_mb, "reason": row.reason, "log_size": row.log_size,
        "gpus": row.gpu_ids or [],
    }


def list_attempts(conn: Connection, task_id: int) -> list[dict[str, Any]]:
    _known("task", task_id)
    if conn.execute(select(tasks.c.id).where(tasks.c.id == task_id)).first() is None:
        raise NotFound(f"no task with id {task_id}")
    rows = conn.execute(select(attempts, nodes.c.name.label("node_name")).join(nodes, nodes.c.id == attempts.c.node_id)
                        .where(attempts.c.task_id == task_id).order_by(attempts.c.number))
    return [attempt_view(r) for r in rows]


def node_view(row: Any, running: list[dict[str, Any]]) -> dict[str, Any]:
    used_cores = sum(r["cores"] for r in running)
    used_mem = sum(r["memory_mb"] for r in running)
    used_gpus = {g for r in running for g in r["gpus"]}
    return {
        "id": row.id, "name": row.name, "hostname": row.hostname, "os": row.os, "state": row.state,
        "admin_state": row.admin_state, "cores": row.cores, "memory_mb": row.memory_mb, "gpus": row.gpus or [],
        "tags": row.tags or [], "apps": row.apps or {}, "last_seen": iso(row.last_seen), "registered_at": iso(row.registered_at),
        "cpu_percent": row.cpu_percent, "memory_used_mb": row.memory_used_mb, "load": row.load,
        "running": running,
        "free": {"cores": row.cores - used_cores, "memory_mb": row.memory_mb - used_mem,
                 "gpus": len([g for g in (row.gpus or []) if g["index"] not in used_gpus])},
    }


def _running_by_node(conn: Connection, node_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {n: [] for n in node_ids}
    if node_ids:
        for r in conn.execute(select(attempts.c.id, attempts.c.task_id, attempts.c.job_id, attempts.c.node_id,
                                     attempts.c.cores, attempts.c.memory_mb, attempts.c.gpu_ids, attempts.c.state)
                              .where(attempts.c.node_id.in_(node_ids), attempts.c.state.in_(LIVE_ATTEMPT_STATES))):
            out[r.node_id].append({"attempt_id": r.id, "task_id": r.task_id, "job_id": r.job_id, "cores": r.cores,
                                   "memory_mb": r.memory_mb, "gpus": r.gpu_ids or [], "state": r.state})
    return out


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(nodes).order_by(nodes.c.name)).all()
    running = _running_by_node(conn, [r.id for r in rows])
    return [node_view(r, running[r.id]) for r in rows]


def find_node(conn: Connection, ident: str) -> Any:
    """A node by id or by name (a name made of digits is tried as an id first)."""
    if "\x00" in ident:
        raise BadInput("invalid node name", [{"field": "ident", "message": "must not contain NUL characters"}])
    as_id = ident.isascii() and ident.isdigit() and 1 <= int(ident) <= MAX_ID
    row = conn.execute(select(nodes).where(nodes.c.id == int(ident))).first() if as_id else None
    if row is None:
        row = conn.execute(select(nodes).where(nodes.c.name == ident)).first()
    if row is None:
        raise NotFound(f"no node named {ident!r}")
    return row


def get_node(conn: Connection, ident: str) -> dict[str, Any]:
    row = find_node(conn, ident)
    return node_view(row, _running_by_node(conn, [row.id])[row.id])
