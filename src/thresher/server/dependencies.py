"""Dependencies on the database: the edges a spec asks for, written at submit; what a job's waiting
tasks wait for (the rule of `model/dependencies.py` over the targets' states); releasing what is met;
what a wrangler sees and drops.

Edges are rows of `dependencies`. A job's edges on jobs and layers are few and read whole when the job
is derived again (`lifecycle.refresh_job`); frame-by-frame edges are stored task on task and read
only by the tasks a report just ended (`release_ended`), through the index on their target, so a
10,000-task layer following another frame by frame costs each report a lookup, not a scan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Connection

from thresher.model import dependencies as rule
from thresher.model.checked import CheckedJob, CheckedLayer, chunk_size
from thresher.model.dependencies import RELEASED, Kind, Status, Verdict
from thresher.model.frames import iter_chunk_fields
from thresher.model.problems import Problem
from thresher.model.states import TaskState, layer_state
from thresher.server import layer_pause
from thresher.server.db.queries import dependencies as q
from thresher.server.db.queries import jobs as qj
from thresher.server.errors import BadInput, Conflict, NotFound
from thresher.wire.dependencies import DependencyEdge, JobDependencies

# Rows written per statement (executemany) when a frame-by-frame dependency expands.
_BATCH = 5000
# Failed target tasks whose frames a blocked reason names (a whole failed 100,000-task layer is not read).
_BLOCKERS_NAMED = 10_000


@dataclass(frozen=True)
class Planned:
    """One dependency a spec asks for, before it has ids: which layer of the new job waits (none: the
    whole job), for which job (none: the new job) and layer, frame by frame or not, in which mode."""

    waiter_layer: str | None
    target_job: int | None
    target_layer: str | None
    frames: bool
    mode: str
    field: str


def planned(job: CheckedJob) -> list[Planned]:
    """Every dependency of a checked spec, short forms and long forms alike, with the field it is at."""
    spec = job.spec
    out = [Planned(None, dep, None, False, rule.Mode.SUCCESS, f"depends_on.{k}") if isinstance(dep, int)
           else Planned(None, dep.job, dep.layer, False, dep.on, f"depends_on.{k}")
           for k, dep in enumerate(spec.depends_on)]
    index = {layer.name: i for i, layer in enumerate(spec.layers)}
    for checked in job.layers:
        layer = checked.spec
        where = f"layers.{index[layer.name]}.depends_on" if layer.name in index else "layers"
        for k, dep in enumerate(layer.depends_on):
            out.append(Planned(layer.name, None, dep, False, rule.Mode.SUCCESS, f"{where}.{k}") if isinstance(dep, str)
                       else Planned(layer.name, dep.job, dep.layer, dep.frames, dep.on, f"{where}.{k}"))
    return out


def problems(conn: Connection, job: CheckedJob) -> list[Problem]:
    """Another job's layer that does not exist, or a layer's dependency on a job that does not (the
    job's own `depends_on` ids are `farm_checks.dependency_problems`'). A cycle across jobs cannot be
    made at submit: every job waited for exists already, and the new job gets an id none of them knows."""
    found: list[Problem] = []
    for p in planned(job):
        if p.frames:
            found += _frame_problems(conn, job, p)
        if p.target_job is None or (p.waiter_layer is None and p.target_layer is None):
            continue
        if p.target_layer is None:
            if not conn.execute(q.JOB_NAMES, {"job_ids": [p.target_job]}).first():
                found.append({"field": p.field, "message": f"no job with id {p.target_job}"})
        elif conn.execute(q.LAYER_BY_NAME, {"job_id": p.target_job, "name": p.target_layer}).first() is None:
            found.append({"field": p.field, "message": f"job {p.target_job} has no layer named {p.target_layer!r}"
                          if conn.execute(q.JOB_NAMES, {"job_ids": [p.target_job]}).first()
                          else f"no job with id {p.target_job}"})
    return found


def _spans(layer: CheckedLayer) -> list[rule.Span]:
    """A checked layer's tasks as frame spans (first, last, index), as its task rows will hold them."""
    return [(first, last, i) for i, (_, first, last, _, _) in
            enumerate(iter_chunk_fields(layer.spec.frames, chunk_size(layer.spec)))]


def _frame_problems(conn: Connection, job: CheckedJob, p: Planned) -> list[Problem]:
    """A frame-by-frame dependency none of whose frames meet: written, it would wait for nothing (its
    tasks started at once, though the spec meant them to follow), as with offset numbering (a sim of
    frames 1001-1100, a render of 1-100). Also one on an archived job, whose tasks are gone."""
    by_name = {layer.spec.name: layer for layer in job.layers}
    waiter = by_name.get(p.waiter_layer or "")
    if waiter is None or p.target_layer is None:
        return []
    if p.target_job is None:
        target = by_name.get(p.target_layer)
        if target is None:
            return []
        targets, frames = _spans(target), target.spec.frames
    else:
        row = conn.execute(q.LAYER_BY_NAME, {"job_id": p.target_job, "name": p.target_layer}).first()
        if row is None:
            return []  # named by `problems`
        targets, frames = [tuple(r) for r in conn.execute(q.LAYER_SPANS, {"layer_id": row.id})], row.frames
        if not targets:
            return [{"field": p.field, "message": f"job {p.target_job} was archived: its tasks are gone, so no "
                     f"frame can follow them; drop frames: true to wait for layer {p.target_layer} whole"}]
    if next(rule.frame_edges(_spans(waiter), targets), None) is not None:
        return []
    return [{"field": p.field, "message": f"no frame of layer {p.target_layer} ({frames}) meets a frame of layer "
             f"{waiter.spec.name} ({waiter.spec.frames}): frame by frame it would wait for nothing; drop frames: "
             f"true to wait for the whole layer"}]


def write(conn: Connection, job: CheckedJob, job_id: int, layer_ids: dict[str, int]) -> int:
    """The new job's edges; frame-by-frame ones expanded to one row per pair of overlapping tasks (a
    sweep, `rule.frame_edges`). Returns how many rows were written."""
    rows: list[dict[str, Any]] = []
    for p in planned(job):
        target_job = p.target_job or job_id
        target_layer = None
        if p.target_layer is not None:
            target_layer = layer_ids[p.target_layer] if p.target_job is None else \
                conn.execute(q.LAYER_BY_NAME, {"job_id": target_job, "name": p.target_layer}).one().id
        base = {"waiter_job_id": job_id, "waiter_layer_id": layer_ids[p.waiter_layer] if p.waiter_layer else None,
                "waiter_task_id": None, "target_job_id": target_job, "target_layer_id": target_layer,
                "target_task_id": None, "mode": p.mode}
        if not p.frames:
            rows.append({**base, "kind": Kind.LAYER if target_layer else Kind.JOB})
            continue
        waiters = [tuple(r) for r in conn.execute(q.LAYER_SPANS, {"layer_id": base["waiter_layer_id"]})]
        targets = [tuple(r) for r in conn.execute(q.LAYER_SPANS, {"layer_id": target_layer})]
        rows.extend({**base, "kind": Kind.FRAME, "waiter_task_id": w, "target_task_id": t}
                    for w, t in rule.frame_edges(waiters, targets))
    for start in range(0, len(rows), _BATCH):
        conn.execute(q.INSERT_DEPENDENCY, rows[start:start + _BATCH])
    return len(rows)


# ---------------------------------------------------------------------------------------------
# What waits, released or blocked


@dataclass
class Evaluation:
    """A job's edges on jobs and layers judged: the job's own, and each waiting layer's."""

    job: Status = RELEASED
    layers: dict[int, list[Status]] = field(default_factory=lambda: defaultdict(list))
    # the other jobs whose edges block, by waiting layer (None: the job's own edges, for every layer)
    blocking: dict[int | None, set[int]] = field(default_factory=lambda: defaultdict(set))

    def of_layer(self, layer_id: int) -> Status:
        return rule.combine([self.job, *self.layers.get(layer_id, [])])


def _what(own: int, job_id: int, layer: str | None) -> str:
    if layer is None:
        return f"job {job_id}"
    return f"layer {layer}" if job_id == own else f"job {job_id} layer {layer}"


def _layer_facts(conn: Connection, layer_id: int, summary: dict[str, Any] | None) -> rule.TaskFacts:
    """What the rule asks of a layer's tasks: from its task rows, or, its job archived, from the counts
    its summary kept (no rows would read as met: a failed layer as if it had succeeded)."""
    if summary is not None:
        kept = (summary.get("layers") or {}).get(str(layer_id)) or {}
        return rule.TaskFacts.of_counts(kept.get("counts") or {})
    f = conn.execute(q.LAYER_FACTS, {"layer_id": layer_id}).one()
    return rule.TaskFacts(bad="failed" if f.failed else "killed" if f.killed else None, undone=bool(f.undone),
                          unended=bool(f.unended), waiting=bool(f.waiting))


def evaluate(conn: Connection, job_id: int) -> Evaluation:
    """The rule over the targets of a job's edges on jobs and layers, as they are now."""
    facts: dict[int, rule.TaskFacts] = {}
    ev = Evaluation()
    job_level: list[Status] = []
    for row in conn.execute(q.COARSE_OF_JOB, {"job_id": job_id}):
        what = _what(job_id, row.target_job_id, row.target_layer)
        if row.target_layer_id is None:
            status = rule.job_target(row.mode, what, row.target_job_state)
        else:
            if row.target_layer_id not in facts:
                facts[row.target_layer_id] = _layer_facts(conn, row.target_layer_id, row.target_summary)
            # a layer of this job held up elsewhere says so at its own waiting layers, not here
            other = None if row.target_job_id == job_id else row.target_job_state
            status = rule.tasks_target(row.mode, what, facts[row.target_layer_id], other)
        (job_level if row.waiter_layer_id is None else ev.layers[row.waiter_layer_id]).append(status)
        if status.verdict == Verdict.BLOCKED and row.target_job_id != job_id:
            ev.blocking[row.waiter_layer_id].add(row.target_job_id)
    ev.job = rule.combine(job_level)
    return ev


def task_blocker(conn: Connection, job_id: int) -> Status | None:
    """A waiting task held by a task that had to succeed and failed or was killed, if there is one: the
    first such target layer, with every failed (or killed) frame of it that holds a task of the job."""
    row = conn.execute(q.TASK_BLOCKER, {"job_id": job_id}).first()
    if row is None:
        return None
    frames: dict[str, list[str]] = defaultdict(list)
    for bad in conn.execute(q.TASK_BLOCKERS_IN_LAYER, {"job_id": job_id, "layer_id": row.layer_id,
                                                       "limit": _BLOCKERS_NAMED}):
        frames[str(bad.state)].append(bad.frames)
    return rule.bad_frames(_what(job_id, row.target_job_id, row.layer), frames)


def release(conn: Connection, job: Any) -> tuple[int, Status | None]:
    """Release the job's waiting tasks whose dependencies are met; returns how many became ready and
    what blocks the job, if something does (its state then says `blocked`)."""
    if job.killed:
        return 0, None
    ev = evaluate(conn, job.id)
    ready, blocked = 0, None
    for layer in conn.execute(qj.JOB_LAYERS, {"job_id": job.id}).all():
        if not conn.execute(qj.LAYER_WAITING_TASK, {"layer_id": layer.id}).first():
            continue
        status = ev.of_layer(layer.id)
        if status.verdict == Verdict.RELEASED:
            target = layer_pause.freed(conn, layer.id, bool(job.paused))  # a paused layer stays paused
            n = conn.execute(q.RELEASE_LAYER, {"b_layer_id": layer.id, "b_state": target}).rowcount
            ready += n if target == TaskState.READY else 0
        elif status.verdict == Verdict.BLOCKED and blocked is None:
            blocked = status
    return ready, blocked or task_blocker(conn, job.id)


def blockers(conn: Connection, job_id: int) -> tuple[Status | None, list[int]]:
    """What blocks the job's waiting tasks, as `release` finds it (its state's reason), and the other jobs
    whose failed, killed or blocked work blocks them (job, layer and task edges alike): whose failures a
    blocked job's failure summary names, since a blocked job has usually failed nothing itself."""
    ev = evaluate(conn, job_id)
    first: Status | None = None
    jobs: set[int] = set()
    for layer in conn.execute(qj.JOB_LAYERS, {"job_id": job_id}).all():
        if not conn.execute(qj.LAYER_WAITING_TASK, {"layer_id": layer.id}).first():
            continue
        status = ev.of_layer(layer.id)
        if status.verdict == Verdict.BLOCKED:
            first = first or status
            jobs |= ev.blocking[None] | ev.blocking[layer.id]
    jobs.update(conn.execute(q.TASK_BLOCKER_JOBS, {"job_id": job_id}).scalars())
    return first or task_blocker(conn, job_id), sorted(jobs)


def release_ended(conn: Connection, task_ids: Iterable[int]) -> int:
    """The tasks a report just ended release the tasks that wait for them frame by frame (or task on
    task), when nothing else holds those: the edges are found by target, through its index."""
    ids = sorted(set(task_ids))
    if not ids:
        return 0
    waiters = conn.execute(q.WAITERS_OF_TASKS, {"task_ids": ids}).all()
    by_layer: dict[tuple[int, int, bool], list[int]] = defaultdict(list)
    for w in waiters:
        if not w.killed:
            by_layer[w.job_id, w.layer_id, bool(w.paused)].append(w.id)
    ready = 0
    evaluations: dict[int, Evaluation] = {}
    for (job_id, layer_id, paused), tasks in sorted(by_layer.items()):
        ev = evaluations.setdefault(job_id, evaluate(conn, job_id))
        if ev.of_layer(layer_id).verdict != Verdict.RELEASED:
            continue
        target = layer_pause.freed(conn, layer_id, paused)
        n = conn.execute(q.RELEASE_TASKS, {"b_task_ids": tasks, "b_state": target}).rowcount
        ready += n if target == TaskState.READY else 0
    return ready


def waiting_jobs_on(conn: Connection, job_id: int) -> list[int]:
    """Other unfinished jobs with an edge on this one: derived again when it changes."""
    return sorted(conn.execute(q.WAITER_JOBS_OF, {"job_id": job_id}).scalars())


def layer_reasons(conn: Connection, job_id: int, layer_ids: Iterable[int]) -> dict[int, str]:
    """Why each of these layers' waiting tasks wait, in words ("blocked: job 12 layer render failed")."""
    ev = evaluate(conn, job_id)
    out = {}
    blocker: Status | None = None
    for layer_id in layer_ids:
        status = ev.of_layer(layer_id)
        if status.verdict == Verdict.RELEASED:
            blocker = blocker or task_blocker(conn, job_id) or Status(Verdict.WAITING, "the frames it follows")
            status = blocker
        out[layer_id] = status.words or ""
    return out


# ---------------------------------------------------------------------------------------------
# Seen, added (task on task) and dropped


def _layer_reaches(conn: Connection, start: int, start_job: int, goal: int) -> bool:
    """Whether layer `start` waits, through any chain of edges, for layer `goal` (a walk over layers:
    a job-wide edge counts for each of its layers, a frame edge for its whole layer)."""
    seen, todo = {start}, [(start, start_job)]
    while todo:
        layer_id, job_id = todo.pop()
        for row in conn.execute(q.EDGES_FROM_LAYER, {"job_id": job_id, "layer_id": layer_id}).all():
            nexts = [row.target_layer_id] if row.target_layer_id is not None else \
                list(conn.execute(q.LAYER_IDS_OF_JOB, {"job_id": row.target_job_id}).scalars())
            for nxt in nexts:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, row.target_job_id))
    return False


def _task_reaches(conn: Connection, start: int, goal: int) -> bool:
    """Whether task `start` waits, through task edges, for task `goal`."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in conn.execute(q.TASK_TARGETS, {"task_id": todo.pop()}).scalars():
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def add_task_edge(conn: Connection, job_id: int, task_id: int, on_task: int, mode: str) -> None:
    """Task `task_id` of this job waits for task `on_task` (of any job). Refused (422 at `on_task`) when
    it would close a cycle, also across jobs: between two layers, when the target's layer already waits
    for the waiter's (a walk over layers, so refused even where only other frames would wait); in one
    layer, when the target task already waits for the waiter. A ready waiter waits again."""
    waiter = conn.execute(q.TASK_JOB, {"task_id": task_id}).first()
    if waiter is None or waiter.job_id != job_id:
        raise BadInput(f"job {job_id} has no task {task_id}", [{"field": "task", "message": f"no task {task_id} "
                                                                f"in job {job_id}"}])
    if waiter.state not in (TaskState.WAITING, TaskState.READY):
        raise Conflict(f"task {task_id} is {waiter.state}; only a waiting or ready task can be made to wait")
    target = conn.execute(q.TASK_JOB, {"task_id": on_task}).first()
    if target is None:
        raise BadInput(f"no task {on_task}", [{"field": "on_task", "message": f"no task with id {on_task}"}])
    cycle = on_task == task_id or (
        _task_reaches(conn, on_task, task_id) if target.layer_id == waiter.layer_id
        else _layer_reaches(conn, target.layer_id, target.job_id, waiter.layer_id))
    if cycle:
        raise BadInput("dependency cycle", [{"field": "on_task", "message": (
            f"task {on_task} already waits (through job {target.job_id}) for task {task_id}'s layer: "
            "a dependency cycle")}])
    conn.execute(q.INSERT_DEPENDENCY, [{
        "waiter_job_id": job_id, "waiter_layer_id": waiter.layer_id, "waiter_task_id": task_id,
        "target_job_id": target.job_id, "target_layer_id": target.layer_id, "target_task_id": on_task,
        "kind": Kind.TASK, "mode": mode}])
    conn.execute(q.WAIT_AGAIN, {"b_task_id": task_id})


def edges(conn: Connection, job_id: int) -> list[Any]:
    """What the job waits for and what waits for it: one row per pair of (job, layer) ends, with how
    many task edges a frame-by-frame dependency holds."""
    return list(conn.execute(q.EDGES_OF_JOB, {"job_id": job_id}).all())


def _one_task(row: Any) -> bool:
    return row.kind == Kind.TASK and row.edges == 1


def _target_states(conn: Connection, rows: list[Any], jobs: dict[int, Any]) -> list[str]:
    """The state of what each edge waits for, not only its job's: a layer's job may have failed while
    the layer waited for succeeded, or still run while it failed. A task edge on one task: the task's;
    a layer or frame-by-frame edge (or task edges over a layer): the layer's, by **the** rule
    `model.states.layer_state` the job's layer rows use (an archived job's from its summary); a job
    edge: the job's."""
    task_ids = sorted({r.target_task_id for r in rows if _one_task(r)})
    layer_ids = sorted({r.target_layer_id for r in rows if r.target_layer_id is not None and not _one_task(r)})
    tasks = {r.id: r.state for r in conn.execute(q.TASK_STATES_OF, {"task_ids": task_ids})} if task_ids else {}
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    paused: dict[int, bool] = {}
    if layer_ids:
        for c in conn.execute(q.LAYER_STATE_COUNTS, {"layer_ids": layer_ids}):
            counts[c.layer_id][c.state] = c.n
        paused = {r.id: bool(r.paused) for r in conn.execute(q.LAYERS_PAUSED, {"layer_ids": layer_ids})}

    def state(r: Any) -> str:
        job = jobs[r.target_job_id]
        if r.target_layer_id is None:
            return str(job.state)
        if _one_task(r) and r.target_task_id in tasks:
            return str(tasks[r.target_task_id])
        archived = ((job.summary or {}).get("layers") or {}).get(str(r.target_layer_id))
        mine = (archived.get("counts") or {}) if archived else counts[r.target_layer_id]
        return str(layer_state(mine, paused=paused.get(r.target_layer_id, False)))
    return [state(r) for r in rows]


def view(conn: Connection, job_id: int, pending: str | None) -> JobDependencies:
    """The job's dependencies both ways, for the API, the CLI and the job page."""
    rows = edges(conn, job_id)
    names = {r.id: r for r in conn.execute(q.END_JOBS, {"job_ids": sorted({r.target_job_id for r in rows})})}
    states = _target_states(conn, rows, names)

    def shown(r: Any, target_state: str) -> DependencyEdge:
        single = r.edges == 1
        return DependencyEdge(id=r.id, kind=r.kind, mode=r.mode, waiter_job=r.waiter_job_id, waiter_layer=r.waiter_layer,
                              waiter_task=r.waiter_task_id if single else None, target_job=r.target_job_id,
                              target_job_name=names[r.target_job_id].name, target_job_state=names[r.target_job_id].state,
                              target_state=target_state, target_layer=r.target_layer,
                              target_task=r.target_task_id if single else None, edges=r.edges)
    both = list(zip(rows, states, strict=True))
    return JobDependencies(job_id=job_id, waits_for=[shown(r, s) for r, s in both if r.waiter_job_id == job_id],
                           waited_by=[shown(r, s) for r, s in both if r.waiter_job_id != job_id], pending=pending)


def drop(conn: Connection, job_id: int, *, layer: str | None = None, task_id: int | None = None,
         on_job: int | None = None) -> int:
    """Drop a job's edges: all of them, or those of one layer or task, or those on one job. The caller
    derives the job again, which releases what only they held."""
    if not conn.execute(q.JOB_NAMES, {"job_ids": [job_id]}).first():
        raise NotFound(f"no job with id {job_id}")
    layer_id = None
    if layer is not None:
        row = conn.execute(q.LAYER_BY_NAME, {"job_id": job_id, "name": layer}).first()
        if row is None:
            raise BadInput(f"job {job_id} has no layer named {layer!r}",
                           [{"field": "layer", "message": f"no layer named {layer!r} in job {job_id}"}])
        layer_id = row.id
    if task_id is not None:
        task = conn.execute(q.TASK_JOB, {"task_id": task_id}).first()
        if task is None or task.job_id != job_id:
            raise BadInput(f"job {job_id} has no task {task_id}",
                           [{"field": "task", "message": f"no task {task_id} in job {job_id}"}])
    return int(conn.execute(q.DROP_EDGES, {"job_id": job_id, "layer_id": layer_id, "task_id": task_id,
                                           "on_job": on_job}).rowcount)
