"""Time estimates read from the farm's history: a job's and its layers' ETA, a node's speed.

Reads the facts with `db/queries/estimates.py` and leaves every decision to the one rule,
`model/estimate.py`; `server/views.py` puts the results on the job and node detail views (not on the
job listing: it costs a few reads per job).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Sequence

from sqlalchemy import Connection

from thresher.model import estimate as rule
from thresher.model.states import JobState, TaskState
from thresher.server import scouts
from thresher.server.clock import as_utc
from thresher.server.db.queries import estimates as q
from thresher.wire.jobs import Estimate
from thresher.wire.nodes import NodeSpeed

LEFT_STATES = (TaskState.WAITING, TaskState.READY, TaskState.PAUSED, TaskState.HELD)
STOPPED_WORDS: dict[str, str] = {
    JobState.FAILED: "the job failed",
    JobState.KILLED: "the job was killed",
    JobState.BLOCKED: "the job waits for a dependency that failed or was killed",
    JobState.PAUSED: "the job is paused",
}
"""Why what is left of a job in these states runs only when someone acts (a retry, a resume). A paused job
that still runs tasks is running: its layers say it (`waiting_for_person`)."""


def _seconds(start: datetime | None, end: datetime | None) -> float:
    s, e = as_utc(start), as_utc(end)
    return max((e - s).total_seconds(), 0.0) if s and e else 0.0


def _finished(row: Any, epoch: datetime) -> rule.Finished:
    return rule.Finished(seconds=_seconds(row.started_at, row.ended_at), frames=row.frames or 1,
                         started=_seconds(epoch, row.started_at), ended=_seconds(epoch, row.ended_at))


def wire(est: rule.Estimate, now: datetime) -> Estimate:
    at = now + timedelta(seconds=est.eta_s) if est.eta_s is not None else None
    return Estimate(task_s=est.task_s, low_s=est.low_s, high_s=est.high_s, samples=est.samples, eta_s=est.eta_s,
                    eta_at=at, confidence=est.confidence, basis=est.basis, reason=est.reason)


def kept_counts(summary: dict[str, Any]) -> list[Any]:
    """An archived job's counts as `job_estimates` takes them (`LAYER_COUNTS` rows), from what its summary
    kept: its task rows are gone, and read from them every layer looked "done", a failed one too."""
    return [SimpleNamespace(layer_id=int(layer_id), state=state, n=n, frames=0)
            for layer_id, part in (summary.get("layers") or {}).items()
            for state, n in (part.get("counts") or {}).items()]


def job_estimates(conn: Connection, job_id: int, layer_rows: list[Any], counts: Sequence[Any], now: datetime,
                  state: str | None = None, job_paused: bool = False) -> tuple[Estimate, dict[int, Estimate]]:
    """The job's estimate and each layer's (by layer id); `counts`: the job's `queries.views.LAYER_COUNTS`
    rows (tasks and frames per layer and state), which the job page has read already. A job in `state`
    failed, killed or blocked runs nothing more until someone acts: what is left of it has no ETA; nor
    has a layer's paused tasks, or those held for a person's release (`waiting_for_person`)."""
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    finished: dict[int, list[rule.Finished]] = {}
    for layer in layer_rows:
        finished[layer.id] = [_finished(r, epoch) for r in conn.execute(q.FINISHED_OF_LAYER, {"layer_id": layer.id})]
    running: dict[int, list[rule.Running]] = {}
    for run in conn.execute(q.RUNNING_OF_JOB, {"job_id": job_id}):
        running.setdefault(run.layer_id, []).append(
            rule.Running(elapsed_s=_seconds(run.started_at, now), progress=run.progress, frames=run.frames or 1))
    left: dict[int, list[int]] = {}
    totals: dict[int, list[int]] = {}
    for r in counts:
        frames = int(r.frames or 0)
        t = totals.setdefault(r.layer_id, [0, 0])
        t[0], t[1] = t[0] + r.n, t[1] + frames
        if r.state in LEFT_STATES:
            lt = left.setdefault(r.layer_id, [0, 0])
            lt[0], lt[1] = lt[0] + r.n, lt[1] + frames
    unsuccessful: dict[int, dict[str, int]] = {}
    for r in counts:
        if r.state in (TaskState.FAILED, TaskState.KILLED):
            unsuccessful.setdefault(r.layer_id, {})[r.state] = r.n
    names = {row.id: row.name for row in layer_rows}
    waits = waiting_for_person(conn, job_id, layer_rows, counts, job_paused)
    facts = []
    for row in layer_rows:
        n_tasks, n_frames = totals.get(row.id, [0, 0])
        tasks_left, frames_left = left.get(row.id, [0, 0])
        facts.append(rule.LayerFacts(
            name=row.name, finished=finished.get(row.id, []), running=running.get(row.id, []),
            tasks_left=tasks_left, frames_left=frames_left,
            frames_per_task=n_frames / n_tasks if n_tasks else 1.0, depends_on=tuple(row.depends_on or []),
            waits_for_person=waits.get(row.id), unsuccessful=rule.unsuccessful_words(**unsuccessful.get(row.id, {}))))
    result = rule.estimate_job(facts, stopped=STOPPED_WORDS.get(state or ""))
    by_id = {layer_id: wire(result.layers[name], now) for layer_id, name in names.items()}
    return wire(result.job, now), by_id


def waiting_for_person(conn: Connection, job_id: int, layer_rows: list[Any], counts: Sequence[Any],
                       job_paused: bool) -> dict[int, str]:
    """Layers whose tasks left start only when a person acts, with why: paused ones (the job or the layer
    was paused: resume it) and those held behind scout frames for a release by hand or a retry
    (`scouts.held_for_a_person`). Their running tasks still end."""
    paused = {r.layer_id for r in counts if r.state == TaskState.PAUSED and r.n}
    held = {r.layer_id for r in counts if r.state == TaskState.HELD and r.n}
    out = {row.id: "the job is paused" if job_paused else "the layer is paused"
           for row in layer_rows if row.id in paused or (row.paused and row.id in held)}
    if held - set(out):
        out |= {layer_id: why for layer_id, why in scouts.held_for_a_person(conn, job_id).items() if layer_id not in out}
    return out


def node_speed(conn: Connection, node_id: int) -> NodeSpeed | None:
    """The node's speed relative to the farm over its newest succeeded attempts (None when unknown)."""
    own: dict[int, list[float]] = {}
    for r in conn.execute(q.NODE_RECENT, {"node_id": node_id}):
        own.setdefault(r.layer_id, []).append(_seconds(r.started_at, r.ended_at) / max(r.frames or 1, 1))
    if not own:
        return None
    layers: dict[int, list[tuple[int, float]]] = {}
    for layer_id in own:
        layers[layer_id] = [(row.node_id, _seconds(row.started_at, row.ended_at) / max(row.frames or 1, 1))
                            for row in conn.execute(q.FINISHED_OF_LAYER, {"layer_id": layer_id})]
    speed = rule.node_speed(node_id, own, layers)
    return NodeSpeed(speed=speed.speed, layers=speed.layers, samples=speed.samples) if speed else None
