"""Scout frames on the database (the rule and the words are `model/scouts.py`): at submit the scout
tasks are marked (`tasks.scout`) and the layer's other tasks written `held`, a state dispatch never
reads, so scouts go first without any ordering trick; the layer's `scout` record keeps its frames,
how it is released (`auto`, `manual`) and whether it was.

Released by itself when a report makes every scout task of an `auto` layer succeeded (`lifecycle.
finish_reports` calls `release_succeeded` in the report's batch; `lifecycle.refresh_job` calls
`release_done`, for scouts done another way, a skip), or by a person (`lifecycle.
release_held`: `POST /jobs/{id}/release`, `thresher release`, the job page's Release button). A failed
scout keeps the layer held, and `reasons` says so (the job's state is then `failed`: nothing runs
until the scout is retried or a person releases the rest). Released tasks go to `waiting`, so the
dependency check (`dependencies.release`, run by `lifecycle.refresh_job`) decides what becomes ready.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Connection

from thresher.model import scouts as rule
from thresher.model.checked import CheckedLayer
from thresher.model.frames import parse_frames
from thresher.server import auto_chunk
from thresher.server.db.queries import scouts as q
from thresher.server.errors import BadInput, Conflict, NotFound


def record(checked: CheckedLayer) -> dict[str, Any] | None:
    """The `layers.scout` value of a new layer (none without scout frames)."""
    if checked.spec.scout is None:
        return None
    probes = bool(checked.auto_chunk and checked.auto_chunk.get("probes"))  # chunk: auto's own measuring frames
    return {"spec": checked.spec.scout, "frames": checked.scout_frames, "release": checked.spec.scout_release,
            "released": False, "released_by": None, "probes": probes}


def hold(conn: Connection, checked: CheckedLayer, layer_id: int) -> None:
    """Mark a new layer's scout tasks and hold the others (in the submit's transaction)."""
    if not checked.scout_tasks:
        return
    conn.execute(q.MARK_SCOUT_TASKS, {"b_layer_id": layer_id, "b_indices": checked.scout_tasks})
    conn.execute(q.HOLD_OTHERS, {"b_layer_id": layer_id})


def _facts(conn: Connection, layer: Any) -> rule.ScoutFacts:
    scout = layer.scout or {}
    counts = {r.state: r.n for r in conn.execute(q.SCOUT_COUNTS, {"layer_id": layer.id})}
    return rule.ScoutFacts(layer.name, scout.get("frames", []), scout.get("release", "auto"), counts,
                           bool(scout.get("probes")))


def _let_go(conn: Connection, layer: Any, by: str | None) -> int:
    n: int = conn.execute(q.RELEASE_HELD, {"b_layer_id": layer.id}).rowcount
    if layer.scout is not None:
        conn.execute(q.SET_LAYER_SCOUT, {"b_layer_id": layer.id,
                                         "b_scout": {**layer.scout, "released": True, "released_by": by}})
    return n


def release_succeeded(conn: Connection, succeeded: Iterable[int]) -> list[int]:
    """Of the tasks a report just made succeed, the scout tasks that complete their `auto` layer's
    scouts release its held tasks; returns the jobs to derive again (in job order)."""
    ids = sorted(set(succeeded))
    if not ids:
        return []
    jobs: list[int] = []
    for layer in conn.execute(q.SCOUT_LAYERS_OF_TASKS, {"task_ids": ids}).all():
        if _settle(conn, layer) and layer.job_id not in jobs:
            jobs.append(layer.job_id)
    return jobs


def release_done(conn: Connection, job_id: int) -> bool:
    """The same for every held layer of a job, whatever made its scouts done (a report, a skip, a
    retry): `lifecycle.refresh_job` asks it first. True when something changed."""
    changed = False
    for layer in conn.execute(q.HELD_LAYERS_OF_JOB, {"job_id": job_id}).all():
        changed = _settle(conn, layer) or changed
    return changed


def _settle(conn: Connection, layer: Any) -> bool:
    """A layer whose scouts all succeeded: `chunk: auto` decides its chunks, an `auto` release lets
    its held tasks go. True when something changed."""
    scout = layer.scout or {}
    if scout.get("released") or not _facts(conn, layer).all_succeeded():
        return False
    changed = False
    if auto_chunk.pending(layer):  # measured: the held frames are chunked to the target now
        auto_chunk.rechunk(conn, layer)
        changed = True
    if scout.get("release", "auto") == "auto":
        changed = bool(_let_go(conn, layer, None)) or changed
    return changed


def release_by_hand(conn: Connection, job_id: int, layer_name: str | None, who: str) -> list[str]:
    """A person lets a job's held tasks go (those of one layer, or of every held layer); returns the
    names of the layers released (empty: nothing was held)."""
    released = []
    for layer in conn.execute(q.HELD_LAYERS_OF_JOB, {"job_id": job_id}).all():
        if layer_name is None or layer.name == layer_name:
            if auto_chunk.pending(layer):  # released before the measuring ended: with what was measured
                auto_chunk.rechunk(conn, layer)
            _let_go(conn, layer, who)
            released.append(layer.name)
    return released


def reasons(conn: Connection, job_id: int) -> dict[int, str]:
    """Why each held layer of a job holds its tasks (`model.scouts.held_reason`)."""
    return {layer.id: rule.held_reason(_facts(conn, layer))
            for layer in conn.execute(q.HELD_LAYERS_OF_JOB, {"job_id": job_id}).all()}


def held_for_a_person(conn: Connection, job_id: int) -> dict[int, str]:
    """The held layers of a job whose tasks go only when a person acts (`model.scouts.waits_for_person`),
    with why: what an estimate of the job says instead of an ETA."""
    out = {}
    for layer in conn.execute(q.HELD_LAYERS_OF_JOB, {"job_id": job_id}).all():
        facts = _facts(conn, layer)
        if rule.waits_for_person(facts):
            out[layer.id] = rule.held_reason(facts)
    return out


def repick(conn: Connection, job_id: int, layer_name: str, scout: str, release: str, who: str) -> None:
    """Change a layer's scout frames before any of its tasks started: the tasks holding the new frames
    wait (the dependency check releases them), the others are held (`lifecycle.change_scout`)."""
    layer = conn.execute(q.LAYER_BY_NAME, {"job_id": job_id, "name": layer_name}).first()
    if layer is None:
        raise NotFound(f"job {job_id} has no layer named {layer_name!r}")
    if conn.execute(q.LAYER_STARTED, {"layer_id": layer.id}).scalar():
        raise Conflict(f"layer {layer_name} of job {job_id} has started: its scout frames can no longer change")
    try:
        frames = rule.pick(scout, [int(f) for f in parse_frames(layer.frames)])
    except rule.ScoutSpecError as exc:
        raise BadInput(str(exc), [{"field": "scout", "message": str(exc)}]) from None
    wanted = sorted(frames)
    ids = [t.id for t in conn.execute(q.LAYER_TASK_FRAMES, {"layer_id": layer.id})
           if any(min(t.frame_start, t.frame_end) <= f <= max(t.frame_start, t.frame_end) for f in wanted)
           and rule.covers(wanted, (int(f) for f in parse_frames(t.frames)))]
    conn.execute(q.SET_SCOUT_MARKS, {"b_layer_id": layer.id, "b_task_ids": ids})
    conn.execute(q.SCOUTS_WAIT, {"b_layer_id": layer.id})
    conn.execute(q.OTHERS_HELD, {"b_layer_id": layer.id})
    if conn.execute(q.LAYER_STARTED, {"layer_id": layer.id}).scalar():  # a dispatch got there first
        raise Conflict(f"layer {layer_name} of job {job_id} has started: its scout frames can no longer change")
    conn.execute(q.SET_LAYER_SCOUT, {"b_layer_id": layer.id, "b_scout": {
        "spec": scout, "frames": frames, "release": release, "released": False, "released_by": None,
        "probes": False, "changed_by": who}})
