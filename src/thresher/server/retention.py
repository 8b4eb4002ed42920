"""Jobs and data kept in check: finished jobs archived (out of the lists, their statistics kept on the
job row) and deleted (every row they had), by hand (`api/retention.py`, `thresher archive`/`delete`)
or by the retention settings in the housekeeping loop, in bounded batches; nodes that are down removed
from the farm. Why archive at all: a month of a studio's work is tens of millions of task, attempt and
log rows that dispatch, listings and backups wade through; what later accounting needs of a finished
job is a handful of figures, which `summary` keeps.

Only finished jobs (succeeded, failed, killed) are archived or deleted: what runs, waits or is paused
is refused (409, naming the jobs), so nothing a node runs loses its rows under it. Nor is a failed or
killed job that unfinished jobs wait for to succeed (`holding`): without its rows they would run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import Connection

from thresher.model.states import FINAL_JOB_STATES, LIVE_ATTEMPT_STATES, AttemptState, NodeState
from thresher.server.db.queries import retention as q
from thresher.server.db.queries import studio as studio_q
from thresher.server.errors import BadInput, Conflict, NotFound

# Jobs a retention pass archives or deletes in one transaction: a farm with 100,000 old jobs catches up
# over many short passes instead of one transaction that stalls every report behind it.
BATCH = 500
# The most jobs one filter in a request acts on (ask again for more); the request commits every BATCH.
MOST_PER_CALL = 5_000


@dataclass
class Selection:
    """Which jobs a request means: ids, or a filter over the finished ones."""

    ids: list[int] | None = None
    states: list[str] | None = None
    project: str | None = None
    older_than_s: float | None = None
    archived: bool | None = None


def select_jobs(conn: Connection, chosen: Selection, now: datetime) -> list[int]:
    """The ids a selection names. Ids must exist, be finished and not hold waiters (404, 409 naming the
    others: `holding`); a filter only ever matches finished jobs that hold none (`waited_for` names those
    it leaves), so it refuses only a project that does not exist (422)."""
    if chosen.ids:
        rows = {r.id: r for r in conn.execute(q.JOBS_BY_IDS, {"job_ids": sorted(set(chosen.ids))})}
        missing = [i for i in chosen.ids if i not in rows]
        if missing:
            raise NotFound(f"no job with id {', '.join(map(str, missing))}")
        busy = [r for r in rows.values() if r.state not in FINAL_JOB_STATES]
        if busy:
            named = ", ".join(f"{r.id} ({r.name}, {r.state})" for r in busy)
            raise Conflict(f"only finished jobs can be archived or deleted; kill these first: {named}")
        held = holding(conn, sorted(rows))
        if held:
            raise Conflict("; ".join(_held_words(job_id, waiters) for job_id, waiters in held.items()))
        return sorted(rows)
    bad = [s for s in chosen.states or [] if s not in FINAL_JOB_STATES]
    if bad:
        raise BadInput("not a finished state", [{"field": "state", "message": f"{', '.join(bad)}: use one of "
                                                 f"{', '.join(sorted(FINAL_JOB_STATES))}"}])
    if chosen.states is None and chosen.project is None and chosen.older_than_s is None:
        raise BadInput("no jobs named", [{"field": "ids", "message": "give ids, or a filter: state, project, "
                                          "older_than_s"}])
    before = now - timedelta(seconds=chosen.older_than_s) if chosen.older_than_s is not None else None
    statement = q.jobs_matching(list(chosen.states or []), chosen.project, before, chosen.archived, MOST_PER_CALL)
    found = [r.id for r in conn.execute(statement)]
    if not found and chosen.project is not None and \
            conn.execute(studio_q.PROJECT_BY_NAME, {"name": chosen.project}).first() is None:
        # a misspelt project matches nothing: say so, not "0 jobs archived" (jobs keep the name of a
        # project removed since, so only a filter that matched nothing is checked)
        raise BadInput(f"unknown project {chosen.project!r}",
                       [{"field": "project", "message": f"no project named {chosen.project!r}"}])
    return found


def waited_for(conn: Connection, chosen: Selection, now: datetime, most: int = 20) -> list[int]:
    """The finished jobs a filter would match but leaves, as they hold their waiters (`holding`)."""
    before = now - timedelta(seconds=chosen.older_than_s) if chosen.older_than_s is not None else None
    statement = q.jobs_matching(list(chosen.states or []), chosen.project, before, chosen.archived, most, held=True)
    return [r.id for r in conn.execute(statement)]


def holding(conn: Connection, job_ids: list[int]) -> dict[int, list[Any]]:
    """Of these jobs, the failed or killed ones that unfinished jobs wait for to succeed, with those jobs
    (rows of `id`, `state`): archived or deleted, their waiters would read as met and run on failed work
    (`model/dependencies.HOLDS_ITS_WAITERS`), so they stay until the job is retried or the waiters are
    killed or no longer depend on it."""
    out: dict[int, list[Any]] = {}
    for row in conn.execute(q.WAITERS_FOR_SUCCESS_OF, {"job_ids": job_ids}) if job_ids else ():
        out.setdefault(row.target_job_id, []).append(row)
    return out


def _held_words(job_id: int, waiters: list[Any]) -> str:
    first = waiters[0]
    named = ", ".join(f"job {w.id} ({w.state})" for w in waiters[:5]) + (" ..." if len(waiters) > 5 else "")
    return (f"job {job_id} {first.target_state} and {named} wait{'s' if len(waiters) == 1 else ''} for it to "
            f"succeed: retry job {job_id}, or kill job {first.id} or drop its dependency (thresher undepend "
            f"{first.id} --on {job_id}), first")


def archived_before(conn: Connection, job_ids: list[int]) -> list[int]:
    """Which of these jobs an earlier archive archived: archiving them again does nothing, and the person
    who named one hears so (`thresher archive 1` twice said `0 jobs archived` and no more)."""
    if not job_ids:
        return []
    return sorted(r.id for r in conn.execute(q.JOBS_BY_IDS, {"job_ids": sorted(set(job_ids))})
                  if r.archived_at is not None)


def _wall_s(started: datetime | None, ended: datetime | None) -> float:
    if started is None or ended is None:
        return 0.0
    return max(0.0, (ended - started).total_seconds())


def summaries(conn: Connection, job_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What an archived job keeps of its tasks and attempts: task counts per state, attempts, failures,
    CPU and wall seconds, in all and per layer (by layer id, as strings: JSON keys)."""
    out: dict[int, dict[str, Any]] = {j: {"tasks": 0, "counts": {}, "attempts": 0, "failures": 0, "cpu_s": 0.0,
                                          "wall_s": 0.0, "layers": {}} for j in job_ids}

    def layer(job_id: int, layer_id: int) -> dict[str, Any]:
        layers = out[job_id]["layers"]
        return layers.setdefault(str(layer_id), {"tasks": 0, "counts": {}, "attempts": 0, "failures": 0,
                                                 "cpu_s": 0.0, "wall_s": 0.0})

    for r in conn.execute(q.TASK_STATES_BY_LAYER, {"job_ids": job_ids}):
        for part in (out[r.job_id], layer(r.job_id, r.layer_id)):
            part["tasks"] += r.n
            part["counts"][r.state] = part["counts"].get(r.state, 0) + r.n
    for r in conn.execute(q.ATTEMPT_FIGURES, {"job_ids": job_ids}):
        failed = r.state == AttemptState.FAILED
        for part in (out[r.job_id], layer(r.job_id, r.layer_id)):
            part["attempts"] += 1
            part["failures"] += 1 if failed else 0
            part["cpu_s"] += float(r.cpu_s or 0.0)
            part["wall_s"] += _wall_s(r.started_at, r.ended_at)
    return out


def _drop_task_rows(conn: Connection, job_ids: list[int]) -> None:
    params = {"job_ids": job_ids}
    for statement in (q.DELETE_LOGS, q.DELETE_ATTEMPTS, q.DELETE_TASK_EDGES, q.DELETE_TASKS):
        conn.execute(statement, params)


def archive(conn: Connection, job_ids: Iterable[int], now: datetime) -> list[int]:
    """Archive these finished jobs (those archived already are left as they are): the summary onto the
    job row, then their logs, attempts, task edges and tasks deleted. Returns the ids archived now."""
    rows = conn.execute(q.LOCK_JOBS_BY_IDS, {"job_ids": sorted(set(job_ids))}).all()
    fresh = [r.id for r in rows if r.archived_at is None and r.state in FINAL_JOB_STATES]
    held = holding(conn, fresh)  # a waiter submitted since the selection was read
    fresh = [j for j in fresh if j not in held]
    for start in range(0, len(fresh), BATCH):
        batch = fresh[start:start + BATCH]
        sums = summaries(conn, batch)
        conn.execute(q.ARCHIVE_JOB, [{"b_job_id": j, "b_now": now, "b_summary": sums[j]} for j in batch])
        _drop_task_rows(conn, batch)
    return fresh


def delete(conn: Connection, job_ids: Iterable[int]) -> list[int]:
    """Delete these finished jobs and every row they had (logs, attempts, tasks, dependencies, blocklists,
    layers). A finished job holds no usage counters (its attempts released them as they ended)."""
    rows = conn.execute(q.LOCK_JOBS_BY_IDS, {"job_ids": sorted(set(job_ids))}).all()
    gone = [r.id for r in rows if r.state in FINAL_JOB_STATES]
    held = holding(conn, gone)
    gone = [j for j in gone if j not in held]
    for start in range(0, len(gone), BATCH):
        batch = gone[start:start + BATCH]
        _drop_task_rows(conn, batch)
        for statement in (q.DELETE_EDGES, q.DELETE_NODE_FAILURES, q.DELETE_LAYERS, q.DELETE_JOBS):
            conn.execute(statement, {"job_ids": batch})
    return gone


def retention_pass(conn: Connection, archive_after_days: float, delete_after_days: float, now: datetime,
                   batch: int = BATCH) -> tuple[int, int]:
    """One bounded pass of the retention settings (0 turns either off): up to `batch` finished jobs
    archived, up to `batch` archived jobs deleted. Returns (archived, deleted)."""
    archived = deleted = 0
    if archive_after_days > 0:
        due = [r.id for r in conn.execute(q.DUE_FOR_ARCHIVE, {"cutoff": now - timedelta(days=archive_after_days),
                                                               "limit": batch})]
        archived = len(archive(conn, due, now))
    if delete_after_days > 0:
        due = [r.id for r in conn.execute(q.DUE_FOR_DELETE, {"cutoff": now - timedelta(days=delete_after_days),
                                                              "limit": batch})]
        deleted = len(delete(conn, due))
    return archived, deleted


def remove_node(conn: Connection, name: str, now: datetime) -> int:
    """Remove a node that is down and runs nothing (409 otherwise): it leaves the lists and its credentials
    are revoked; its row stays, so the attempts that ran on it still name it. An agent enrolling again
    under that name brings it back. Returns its id."""
    node = conn.execute(q.NODE_FOR_REMOVAL, {"name": name}).first()
    if node is None or node.removed_at is not None:
        raise NotFound(f"no node named {name!r}")
    live = conn.execute(q.LIVE_ATTEMPTS_OF_NODE, {"node_id": node.id, "states": list(LIVE_ATTEMPT_STATES)}).scalar()
    if live:
        raise Conflict(f"node {name!r} runs {live} attempt(s); disable it and let them end first")
    if node.state != NodeState.DOWN:
        raise Conflict(f"node {name!r} is {node.state}; stop its agent first (only a node that is down is removed)")
    conn.execute(q.REMOVE_NODE, {"b_node_id": node.id, "b_now": now})
    conn.execute(q.DELETE_NODE_TOKENS, {"node_id": node.id})
    conn.execute(q.DELETE_NODE_BLOCKLIST, {"node_id": node.id})
    return int(node.id)
