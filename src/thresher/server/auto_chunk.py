"""`chunk: auto` on the database (the rule is `model/auto_chunk.py`): once a layer's measuring tasks
(its scouts, or the probes submit made its scouts) all succeeded, or when a person releases it, its
held tasks are rewritten into chunks sized from the measured seconds per frame, in the caller's
transaction (the report's batch, or the release).

Only `held` tasks are rewritten: dispatch never reads them, so none of them has started or can start
while this runs (the `attempt_id IS NULL` test says so again). Each is deleted with its edges and the
new chunks are inserted `held` (`bulk.insert_tasks`, the submit's own writer), each frame exactly
once; the frame-by-frame edges that touched the old tasks, either end, are expanded again for the
new ones by the submit's sweep (`model/dependencies.frame_edges`). A waiter overlapping a new chunk
overlapped one of its held frames, so it was waiting already and still is. What was decided, and
from which measurements, is kept in `layers.chunk_decision` (`Layer.chunk_decision`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from thresher.model import auto_chunk as rule
from thresher.model.dependencies import Kind, frame_edges
from thresher.model.frames import chunk_fields, parse_frames
from thresher.server.clock import utcnow
from thresher.server.db.bulk import TASK_SHARED_COLUMNS, insert_tasks, part_json
from thresher.server.db.queries import auto_chunk as q
from thresher.server.db.queries import dependencies as qd

_BATCH = 5000


def pending(layer: Any) -> bool:
    """Whether the layer has `chunk: auto` still measuring."""
    return bool(layer.chunk_decision) and layer.chunk_decision.get("status") == "measuring"


def samples(conn: Connection, layer_id: int) -> list[rule.Sample]:
    out = []
    for r in conn.execute(q.MEASURED, {"layer_id": layer_id}):
        if r.started_at is not None and r.ended_at is not None:
            out.append(rule.Sample(r.id, r.frames, r.frame_count, (r.ended_at - r.started_at).total_seconds()))
    return out


def rechunk(conn: Connection, layer: Any) -> dict[str, Any]:
    """Decide the layer's chunk from its measuring tasks and rewrite its held tasks; returns the
    decision (also written onto the layer)."""
    auto = layer.chunk_decision or {}
    decision = rule.decide(float(auto.get("target_task_s") or rule.DEFAULT_TARGET_S), auto.get("max_chunk"),
                           samples(conn, layer.id))
    rows = list(conn.execute(q.HELD_TASKS, {"layer_id": layer.id}))
    parts = int(auto.get("parts") or 1)
    held = [rule.Held(r.id, r.idx, tuple(int(f) for f in parse_frames(r.frames)), r.part) for r in rows]
    groups = rule.regroup(held, decision["chunk"], parts) if rows else []
    if rows and len(groups) < len(rows):
        _rewrite(conn, layer, rows, groups)
    decision.update(rewritten=len(rows), tasks=len(groups) if len(groups) < len(rows) else len(rows),
                    decided_at=utcnow().isoformat())
    total = conn.execute(q.LAYER_TASK_COUNT, {"layer_id": layer.id}).scalar_one()
    conn.execute(q.SET_LAYER_CHUNK, {"b_layer_id": layer.id, "b_chunk": decision["chunk"], "b_decision": decision,
                                     "b_total": total})
    conn.execute(q.SET_JOB_TOTAL, {"b_job_id": layer.job_id})
    return decision


def _rewrite(conn: Connection, layer: Any, rows: list[Any], groups: list[rule.Group]) -> None:
    old = [r.id for r in rows]
    edge_groups = conn.execute(q.FRAME_EDGE_GROUPS, {"task_ids": old}).all()
    conn.execute(q.DELETE_EDGES_OF_TASKS, {"b_task_ids": old})
    conn.execute(q.DELETE_TASKS, {"b_task_ids": old})
    first = rows[0]
    shared = {name: getattr(first, name) for name in TASK_SHARED_COLUMNS}
    insert_tasks(conn, {**shared, "tries": 0, "lost": 0},
                 ((g.index, *chunk_fields(g.frames), part_json(g.part)) for g in groups))
    new = [tuple(r) for r in conn.execute(q.TASK_SPANS_AT, {"layer_id": layer.id,
                                                          "indices": [g.index for g in groups]})]
    edges: list[dict[str, Any]] = []
    for e in edge_groups:
        base = {"waiter_job_id": e.waiter_job_id, "waiter_layer_id": e.waiter_layer_id, "target_job_id": e.target_job_id,
                "target_layer_id": e.target_layer_id, "kind": Kind.FRAME, "mode": e.mode}
        if e.waiter_layer_id == layer.id:   # this layer waits frame by frame on another
            others = [tuple(r) for r in conn.execute(qd.LAYER_SPANS, {"layer_id": e.target_layer_id})]
            pairs = frame_edges(new, others)
        else:                               # another layer waits on this one frame by frame
            others = [tuple(r) for r in conn.execute(qd.LAYER_SPANS, {"layer_id": e.waiter_layer_id})]
            pairs = frame_edges(others, new)
        edges.extend({**base, "waiter_task_id": w, "target_task_id": t} for w, t in pairs)
    for start in range(0, len(edges), _BATCH):
        conn.execute(qd.INSERT_DEPENDENCY, edges[start:start + _BATCH])
