"""What the read routes answer: jobs, layers, tasks, attempts and nodes as the wire models
(`thresher.wire`), built from the statements of `db/queries/views.py`.

The API routes, the dashboard's pages and the event broadcaster all read these, so a person sees the
same figures wherever they look.
"""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import TypeAdapter
from sqlalchemy import Connection

from thresher.model.failure_summary import FailedAttempt, blocked_line, failure_line, group_failures, last_line
from thresher.model.fit import gpu_indices, node_free
from thresher.model.frames import holds
from thresher.model.log_times import LineTimes
from thresher.model.node_chips import counts_as, name_holds
from thresher.model.spec import MAX_ID
from thresher.model.states import (
    DONE_TASK_STATES,
    LIVE_ATTEMPT_STATES,
    TASK_STATES,
    JobState,
    TaskState,
    layer_state,
)
from thresher.model.text import readable
from thresher.server import dependencies, estimates, failures, layer_steering, log_cap, log_text, why
from thresher.server.clock import utcnow
from thresher.server.db import dialects
from thresher.server.db.queries import failure_summary as qf
from thresher.server.db.queries import nodes as qn
from thresher.server.db.queries import studio as qs
from thresher.server.db.queries import views as q
from thresher.server.errors import BadInput, NotFound
from thresher.wire.common import Page
from thresher.wire.jobs import (
    Attempt,
    ChunkDecision,
    FailureGroup,
    FailureSummary,
    Job,
    JobStats,
    JobSummary,
    Layer,
    LineTime,
    LogPiece,
    Scout,
    Task,
    TaskCounts,
    TaskDetail,
)
from thresher.wire.nodes import Node, NodeFree, RunningOnNode

JOB_SORTS = q.JOB_SORTS


def _empty_counts() -> dict[str, int]:
    return {state: 0 for state in TASK_STATES}


def _progress(counts: dict[str, int], total: int, running: float = 0.0) -> float:
    """Mean task progress: done tasks count 100, running tasks what their agent last parsed."""
    done = sum(counts.get(s, 0) for s in DONE_TASK_STATES)
    return min(round((100.0 * done + running) / total, 1), 100.0) if total else 100.0


def _known(kind: str, row_id: int) -> None:
    """An id past the id columns' range names nothing (and must not reach the database: PostgreSQL
    refuses to compare a 32-bit column with it, SQLite to bind a number past 64 bits)."""
    if not 1 <= row_id <= MAX_ID:
        raise NotFound(f"no {kind} with id {row_id}")


# -- jobs ------------------------------------------------------------------------------------

def counts_by_job(conn: Connection, job_ids: list[int]) -> dict[int, dict[str, int]]:
    """Task counts per state of each of these jobs (every state present, zero or not)."""
    out = {job_id: _empty_counts() for job_id in job_ids}
    if job_ids:
        for r in conn.execute(q.COUNTS_BY_JOB, {"job_ids": job_ids}):
            out[r.job_id][r.state] = r.n
    return out


def _sums(conn: Connection, statement: Any, params: dict[str, Any]) -> dict[int, float]:
    return {r.key: float(r.sum or 0.0) for r in conn.execute(statement, params)}


def _archived_counts(summary: dict[str, Any]) -> dict[str, int]:
    """An archived job's (or layer's) task counts, from its summary (its tasks are gone)."""
    return {**_empty_counts(), **(summary.get("counts") or {})}


def _summary_fields(row: Any, counts: dict[str, int], running: float) -> dict[str, Any]:
    summary = getattr(row, "summary", None)
    if summary:
        counts = _archived_counts(summary)
    return dict(archived_at=getattr(row, "archived_at", None),
                stats=JobStats(**{k: v for k, v in summary.items() if k != "layers"}) if summary else None,
                id=row.id, name=row.name, owner=row.owner, submitted_by=getattr(row, "submitted_by", None),
                project=row.project, sequence=row.sequence, shot=row.shot,
                priority=row.priority, state=row.state, paused=bool(row.paused), submitted_at=row.submitted_at,
                finished_at=row.finished_at, counts=TaskCounts(**counts), total_tasks=row.total_tasks,
                progress=_progress(counts, row.total_tasks, running))


def job_summary(row: Any, counts: dict[str, int], running: float = 0.0) -> JobSummary:
    return JobSummary(**_summary_fields(row, counts, running))


def list_jobs(conn: Connection, *, state: str | None, project: str | None, owner: str | None, name: str | None,
              limit: int, offset: int, sort: str, folder: str | None = None, archived: bool = False,
              sequence: str | None = None, shot: str | None = None, group: str | None = None) -> Page[JobSummary]:
    if sort not in JOB_SORTS:
        raise BadInput("unknown sort", [{"field": "sort", "message": f"use one of {', '.join(JOB_SORTS)}"}])
    total = conn.execute(q.count_jobs(state, project, owner, name, folder, archived, sequence=sequence,
                                      shot=shot)).scalar() or 0
    rows = conn.execute(q.page_of_jobs(state, project, owner, name, sort=sort, limit=limit, offset=offset,
                                       folder=folder, archived=archived, sequence=sequence, shot=shot,
                                       group=group)).all()
    counts = counts_by_job(conn, [r.id for r in rows])
    busy = [r.id for r in rows if counts[r.id].get(TaskState.RUNNING)]
    running = _sums(conn, q.RUNNING_PROGRESS_BY_JOB, {"job_ids": busy}) if busy else {}
    return Page[JobSummary](items=[job_summary(r, counts[r.id], running.get(r.id, 0.0)) for r in rows],
                            total=total)


def layer_view(row: Any, counts: dict[str, int], running: float = 0.0, pending: str | None = None) -> Layer:
    return Layer(
        id=row.id, name=row.name, template=row.template, frames=row.frames, chunk=row.chunk, cores=row.cores,
        memory_mb=row.memory_mb, gpus=row.gpus, tags=row.tags or [], pools=row.pools or [], limits=row.limits or {},
        pending=pending, retries=row.retries, timeout=row.timeout, service=row.service,
        depends_on=row.depends_on or [], paused=bool(getattr(row, "paused", False)),  # `server/layer_pause.py`
        state=layer_state(counts, paused=bool(getattr(row, "paused", False))),
        counts=TaskCounts(**counts), total_tasks=row.total_tasks, progress=_progress(counts, row.total_tasks, running),
        scout=Scout(**row.scout) if getattr(row, "scout", None) else None,
        chunk_decision=ChunkDecision(**row.chunk_decision) if getattr(row, "chunk_decision", None) else None)


def get_job(conn: Connection, job_id: int) -> Job:
    _known("job", job_id)
    row = conn.execute(q.JOB, {"job_id": job_id}).first()
    if row is None:
        raise NotFound(f"no job with id {job_id}")
    layer_counts: dict[int, dict[str, int]] = {}
    count_rows = conn.execute(q.LAYER_COUNTS, {"job_id": job_id}).all()
    for r in count_rows:
        layer_counts.setdefault(r.layer_id, _empty_counts())[r.state] = r.n
    for layer_id, part in ((row.summary or {}).get("layers") or {}).items():  # archived: its tasks are gone
        layer_counts[int(layer_id)] = _archived_counts(part)
    job_counts = _empty_counts()
    for counts in layer_counts.values():
        for state, n in counts.items():
            job_counts[state] += n
    running = _sums(conn, q.RUNNING_PROGRESS_BY_LAYER, {"job_id": job_id}) if job_counts[TaskState.RUNNING] else {}
    layer_rows = list(conn.execute(q.LAYERS_OF_JOB, {"job_id": job_id}))
    pending, by_layer = why.pending_reasons(conn, row, layer_rows, layer_counts)
    kept = count_rows if row.summary is None else estimates.kept_counts(row.summary)  # archived: its rows are gone
    job_eta, layer_eta = estimates.job_estimates(conn, job_id, layer_rows, kept, utcnow(), row.state, bool(row.paused))
    layers = [layer_view(layer, layer_counts.get(layer.id, _empty_counts()), running.get(layer.id, 0.0),
                         by_layer.get(layer.id)).model_copy(update={"estimate": layer_eta.get(layer.id)})
              for layer in layer_rows]
    folder = conn.execute(qs.FOLDER_BY_ID, {"folder_id": row.folder_id}).first() if row.folder_id else None
    return Job(**_summary_fields(row, job_counts, sum(running.values())), layers=layers,
               depends_on=row.depends_on or [], spec=row.spec, pending=pending, urgent=bool(row.urgent),
               urgent_by=row.urgent_by, urgent_at=row.urgent_at, folder=folder.name if folder else None,
               failures=row.failures, stop_reason=row.stop_reason, blocklist=failures.blocklist(conn, job_id),
               estimate=job_eta)


FAILED_ATTEMPTS_GROUPED = 20_000
"""The newest failed attempts a failure summary groups: enough for any real job, bounded for a runaway one."""


def job_failures(conn: Connection, job_id: int, _seen: frozenset[int] = frozenset()) -> FailureSummary:
    """A job's failed attempts grouped by normalised reason (`model/failure_summary.py`): what `thresher job`,
    `thresher wait` and the job page say when a job failed. A blocked job says what blocks it and the
    failure summaries of the jobs that do (`dependencies.blockers`; through a chain of blocked jobs, each
    job once), as `thresher wait` says it."""
    _known("job", job_id)
    row = conn.execute(q.JOB, {"job_id": job_id}).first()
    if row is None:
        raise NotFound(f"no job with id {job_id}")
    rows = conn.execute(qf.FAILED_ATTEMPTS_OF_JOB, {"job_id": job_id, "limit": FAILED_ATTEMPTS_GROUPED + 1}).all()
    failed = [FailedAttempt(task_id=r.task_id, node=r.node, reason=r.reason) for r in rows[:FAILED_ATTEMPTS_GROUPED]]
    groups = group_failures(failed)
    failed_tasks = list(conn.execute(qf.FAILED_TASKS_OF_JOB, {"job_id": job_id}).scalars())
    summary = FailureSummary(job_id=job_id, state=row.state, failed_tasks=failed_tasks, failed_attempts=len(failed),
                             truncated=len(rows) > FAILED_ATTEMPTS_GROUPED,
                             groups=[FailureGroup(**vars(g), last_line=last_line(g.example)) for g in groups],
                             summary=failure_line(len(failed_tasks), groups, job_state=row.state))
    if row.state != JobState.BLOCKED:
        return summary
    blocker, upstream_ids = dependencies.blockers(conn, job_id)
    seen = _seen | {job_id}
    upstream = [job_failures(conn, other, seen) for other in upstream_ids if other not in seen]
    summary.blocked_by = blocker.reason if blocker else None
    summary.upstream = upstream
    summary.summary = blocked_line(summary.blocked_by, summary.summary if failed else None,
                                   [(u.job_id, u.state, u.summary) for u in upstream])
    return summary


# -- tasks and attempts ----------------------------------------------------------------------

# Rows whose columns are named as the model's fields (queries/views.py) become models in one validation
# call for the whole list: a page of 100,000 tasks is read fast.
_TASKS = TypeAdapter(list[Task])
_ATTEMPTS = TypeAdapter(list[Attempt])


def _rows(result: Any) -> list[dict[str, Any]]:
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def list_tasks(conn: Connection, job_id: int, *, layer: str | None, state: str | None, limit: int,
               offset: int, frame: int | None = None) -> Page[Task]:
    _known("job", job_id)
    if conn.execute(q.JOB_EXISTS, {"job_id": job_id}).first() is None:
        raise NotFound(f"no job with id {job_id}")
    if layer is not None:
        layer_steering.layer_named(conn, job_id, layer)
    if frame is not None:  # "frame 1042 failed": the task (or tiles, or layers' tasks) rendering it
        near = conn.execute(q.tasks_near_frame(layer, state), {"job_id": job_id, "frame": frame})
        found = [r for r in _rows(near) if r.pop("frame_step") or holds(r["frames"], frame)]
        return Page[Task](items=_TASKS.validate_python(found[offset:offset + limit]), total=len(found))
    total = conn.execute(q.count_tasks(layer, state), {"job_id": job_id}).scalar() or 0
    rows = conn.execute(q.page_of_tasks(layer, state, limit=limit, offset=offset), {"job_id": job_id})
    return Page[Task](items=_TASKS.validate_python(_rows(rows)), total=total)


def get_task(conn: Connection, task_id: int) -> TaskDetail:
    _known("task", task_id)
    row = conn.execute(q.TASK, {"task_id": task_id}).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    return TaskDetail(**row._asdict(), attempts=_attempts(conn, task_id, limit=MAX_ID, offset=0))


def _attempts(conn: Connection, task_id: int, *, limit: int, offset: int) -> list[Attempt]:
    rows = conn.execute(q.ATTEMPTS_OF_TASK, {"task_id": task_id, "limit": limit, "offset": offset})
    return _ATTEMPTS.validate_python(_rows(rows))


def list_attempts(conn: Connection, task_id: int, *, limit: int, offset: int) -> Page[Attempt]:
    _known("task", task_id)
    if conn.execute(q.TASK_EXISTS, {"task_id": task_id}).first() is None:
        raise NotFound(f"no task with id {task_id}")
    total = conn.execute(q.COUNT_ATTEMPTS, {"task_id": task_id}).scalar() or 0
    return Page[Attempt](items=_attempts(conn, task_id, limit=limit, offset=offset), total=total)


# -- logs ------------------------------------------------------------------------------------

def read_log(conn: Connection, attempt_id: int, *, offset: int, limit: int) -> LogPiece:
    """About `limit` bytes of an attempt's log from byte `offset`: the stored rows that hold them, cut where
    the limit falls (within a character), so one page costs the server about `limit` bytes whatever the
    log's size; `next_offset` is where the next page starts, `more` whether the server holds bytes past it
    now, `complete` whether that is the end of a log that grows no more."""
    attempt = conn.execute(q.ATTEMPT_LOG_STATE, {"attempt_id": attempt_id}).first()
    if attempt is None:
        raise NotFound(f"no attempt with id {attempt_id}")
    page = _Page(offset, limit)
    page.read(conn, attempt_id, offset)
    if not page.full and page.position < attempt.log_size:  # rows resume past the middle a cap dropped
        resume = conn.execute(q.LOG_ROW_AFTER, {"attempt_id": attempt_id, "offset": page.position}).scalar()
        if resume is not None:
            page.read(conn, attempt_id, resume)
    data = b"".join(page.pieces).decode("utf-8", errors="replace")
    ended = attempt.state not in LIVE_ATTEMPT_STATES
    more = page.position < attempt.log_size
    return LogPiece(attempt_id=attempt_id, offset=offset, data=data, next_offset=page.position, more=more,
                    complete=ended and not more,
                    times=[LineTime(line=line, at=at) for line, at in page.times.entries])


class _Page:
    """The bytes of one page of a log as its rows are read (`read_log`)."""

    def __init__(self, position: int, limit: int) -> None:
        self.position, self.limit, self.taken = position, limit, 0
        self.pieces: list[bytes] = []
        self.times = LineTimes()  # when its lines arrived (`model/log_times.py`)
        self.full = False  # the limit was reached (or falls inside a character of a row)

    def read(self, conn: Connection, attempt_id: int, start: int) -> None:
        """Take the rows from the one holding byte `start` until the page is full."""
        rows = conn.execute(q.LOG_PAGE, {"attempt_id": attempt_id, "offset": start,
                                         "until": min(start + self.limit - self.taken, 2**63 - 1)})
        for row in rows:
            raw = log_text.from_stored(row.data)
            if row.offset + len(raw) <= self.position:
                continue
            if row.offset > self.position:  # the middle of a log past its cap (`server/log_cap.py`)
                self.pieces.append(log_cap.cut_marker(row.offset - self.position))
                self.times.add(self.pieces[-1], None)
                self.position = row.offset
            part = raw[self.position - row.offset:]
            if self.taken + len(part) >= self.limit:  # the page ends in this row: at a character's start
                part = part[:_char_end(part, max(1, self.limit - self.taken))]
                self.full = True
            self.pieces.append(part)
            self.times.add(part, row.arrived_at)
            self.taken += len(part)
            self.position += len(part)
            if self.full:
                return


def _char_end(raw: bytes, at: int) -> int:
    """`at`, moved back to the start of the UTF-8 character it falls in (never to 0: a page moves on)."""
    back = at
    while max(1, at - 3) < back < len(raw) and (raw[back] & 0xC0) == 0x80:
        back -= 1
    return back


# -- nodes -----------------------------------------------------------------------------------

def node_view(row: Any, live: list[Any], blocklisted_by: list[int] | None = None) -> Node:
    """A node with what it runs and what it has free (the one fit rule's `node_free`)."""
    free = node_free(row.cores, row.memory_mb, gpu_indices(row.gpus), live)
    return Node(
        id=row.id, name=row.name, hostname=readable(row.hostname), os=readable(row.os), state=row.state,
        admin_state=row.admin_state, cores=row.cores, memory_mb=row.memory_mb, gpus=readable(row.gpus or []),
        tags=readable(row.tags or []), apps=readable(row.apps or {}), mac=row.mac,
        pool=row.pool,
        last_seen=row.last_seen, registered_at=row.registered_at, cpu_percent=row.cpu_percent,
        memory_used_mb=row.memory_used_mb, load=row.load,
        running=[RunningOnNode(attempt_id=a.id, task_id=a.task_id, job_id=a.job_id, cores=a.cores,
                               memory_mb=a.memory_mb, gpus=a.gpu_ids or [], state=a.state,
                               job_name=a.job_name, layer=a.layer, frames=a.frames, progress=a.progress)
                 for a in live],
        # Tasks kept waiting on the node (`tasks_ahead`) hold more than it has: none free, not less.
        free=NodeFree(cores=max(free.cores, 0), memory_mb=max(free.memory_mb, 0), gpus=len(free.gpu_ids)),
        blocklisted_by=blocklisted_by or [])


def _live_by_node(conn: Connection, node_ids: list[int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {n: [] for n in node_ids}
    if node_ids:
        for r in conn.execute(dialects.pick(conn, qn.LIVE_ON_NODES_SHOWN), {"node_ids": node_ids}):
            out[r.node_id].append(r)
    return out


def _nodes(conn: Connection, rows: Sequence[Any]) -> list[Node]:
    live = _live_by_node(conn, [r.id for r in rows])
    blocked = failures.blocked_by(conn, [r.id for r in rows])
    return [node_view(r, live[r.id], blocked[r.id]) for r in rows]


def nodes_of(conn: Connection, rows: Sequence[Any]) -> list[Node]:
    """These node rows as nodes with what they run (a pool's members)."""
    return _nodes(conn, rows)


def list_nodes(conn: Connection, *, limit: int, offset: int, state: str = "", name: str = "") -> Page[Node]:
    """A page of the nodes, by name; with `state` (one of `NODE_CHIPS`) or `name` only those the dashboard's
    nodes page keeps (`model/node_chips.py`), `total` counting what the filter kept. A filter reads every
    node's row and live count, and what they run only for the page it answers."""
    if not (state or name):
        total = conn.execute(q.COUNT_NODES).scalar() or 0
        rows = conn.execute(q.PAGE_OF_NODES, {"limit": limit, "offset": offset}).all()
        return Page[Node](items=_nodes(conn, rows), total=total)
    kept = [r for r in conn.execute(q.NODES_TO_FILTER) if name_holds(name, r.name, r.hostname)]
    if state and kept:
        ids = [r.id for r in kept]
        running = {r.node_id: r.n for r in conn.execute(dialects.pick(conn, qn.LIVE_COUNTS_ON_NODES), {"node_ids": ids})}
        kept = [r for r in kept if counts_as(state, state=r.state, admin_state=r.admin_state, running=running.get(r.id, 0))]
    shown = [r.id for r in kept[offset:offset + limit]]
    rows = conn.execute(dialects.pick(conn, q.NODES_BY_IDS), {"node_ids": shown}).all() if shown else []
    return Page[Node](items=_nodes(conn, rows), total=len(kept))


def all_nodes(conn: Connection) -> list[Node]:
    """Every node, by name (the dashboard's farm summary)."""
    return _nodes(conn, conn.execute(q.ALL_NODES).all())


def find_node(conn: Connection, ident: str) -> Any:
    """A node's row by id or by name (a name made of digits is tried as an id first)."""
    if "\x00" in ident:
        raise BadInput("invalid node name", [{"field": "ident", "message": "must not contain NUL characters"}])
    as_id = ident.isascii() and ident.isdigit() and 1 <= int(ident) <= MAX_ID
    row = conn.execute(q.NODE_BY_ID, {"node_id": int(ident)}).first() if as_id else None
    if row is None:
        row = conn.execute(qn.NODE_BY_NAME, {"name": ident}).first()
    if row is None:
        raise NotFound(f"no node named {ident!r}")
    return row


def get_node(conn: Connection, ident: str) -> Node:
    row = find_node(conn, ident)
    node = node_view(row, _live_by_node(conn, [row.id])[row.id], failures.blocked_by(conn, [row.id])[row.id])
    node.speed = estimates.node_speed(conn, row.id)
    return node
