"""`chunk: auto` on the database (the rule is `model/auto_chunk.py`): once a layer's measuring tasks
(its scouts, or the probes submit made its scouts) all succeeded, or when a person releases it, its
held tasks are rewritten into chunks sized from the measured seconds per frame, in the caller's
transaction (the report's batch, or the release).

Only `held` tasks are rewritten: dispatch never reads them, so none of them has started or can start
while this runs (the `attempt_id IS NULL` test says so again). Each is deleted with its edges and the
new chunks are inserted `held` (`bulk.insert_tasks`, the submit's own writer), each frame exactly
once. The task edges that touched the old tasks, either end (frame by frame or task on task), are
carried over to the new task that took each old task's frames (`model/dependencies.carried_edges`),
not expanded again from the frames: an edge a wrangler dropped stays dropped, and one added task on
task stays (expanding again brought back the dropped ones and lost the added). What was decided, and
from which measurements, is kept in `layers.chunk_decision` (`Layer.chunk_decision`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from thresher.model import auto_chunk as rule
from thresher.model.dependencies import carried_edges
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
    kept = [dict(r._mapping) for r in conn.execute(q.EDGES_OF_TASKS, {"task_ids": old})]
    conn.execute(q.DELETE_EDGES_OF_TASKS, {"b_task_ids": old})
    conn.execute(q.DELETE_TASKS, {"b_task_ids": old})
    first = rows[0]
    shared = {name: getattr(first, name) for name in TASK_SHARED_COLUMNS}
    insert_tasks(conn, {**shared, "tries": 0, "lost": 0},
                 ((g.index, *chunk_fields(g.frames), part_json(g.part)) for g in groups))
    new_ids = dict(conn.execute(q.TASK_IDS_AT, {"layer_id": layer.id, "indices": [g.index for g in groups]}).all())
    new_of = {old_id: new_ids[g.index] for g in groups for old_id in g.replaces}
    edges = carried_edges(kept, new_of)
    for start in range(0, len(edges), _BATCH):
        conn.execute(qd.INSERT_DEPENDENCY, edges[start:start + _BATCH])
