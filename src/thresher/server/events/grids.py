"""The shared task grids: one snapshot of each watched job's task cells, and its diff once per tick.

Every tab on a job page draws the same grid. The first tab's request reads the job's tasks once into
a snapshot (static columns plus live state); later requests are answered from memory. While the job
changes, the broadcaster re-reads its task states (one small indexed read per job), compares them
with the snapshot and sends only the changed cells, tagged with the version they turn the grid into:
`{"from": v0, "v": v1, "cells": [[task_id, state_code, node_name], ...]}`. `cells: None` (too many
changes, or tasks that came or went) means "reload the grid". A snapshot no tab watched for
`GRID_IDLE_S` is dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Connection

from thresher.model.states import TASK_STATES
from thresher.server.db.queries import events as q
from thresher.server.events.reads import CountedReads, Source

GRID_IDLE_S = 30.0          # a grid snapshot no open tab watches is dropped after this
GRID_MAX_CELLS = 2000       # more changed cells in one tick: tell the tabs to reload the grid instead
STATE_CODES = {state: i for i, state in enumerate(TASK_STATES)}


@dataclass
class GridSnapshot:
    """One job's task cells, shared by every tab on its page: static columns plus live state."""

    version: int
    layers: list[str]
    ids: list[int]
    layer: list[int]
    frames: list[str]
    state: list[int]
    node: list[int | None]
    pos: dict[int, int]
    used_at: float
    raw: list[tuple[Any, ...]]  # (id, state, node_id) in id order, as last read


class TaskGrids:
    """The snapshots by job id. Any thread: the pages ask for grids, the broadcaster diffs them."""

    def __init__(self, read: CountedReads) -> None:
        self._read = read
        self._grids: dict[int, GridSnapshot] = {}
        self._lock = threading.RLock()
        self._versions = 0
        self._node_names: dict[int, str] = {}

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._grids

    def clear(self) -> None:
        """Forget every snapshot (the next ask reads the job again)."""
        with self._lock:
            self._grids.clear()

    def _next_version(self) -> int:
        self._versions += 1
        return self._versions

    def _names(self, conn: Connection, node_ids: Iterable[int | None]) -> dict[int, str]:
        if any(n is not None and n not in self._node_names for n in node_ids):
            self._node_names = {r.id: r.name for r in conn.execute(q.NODE_NAMES)}
        return self._node_names

    def drop_idle(self, now: float, watch_jobs: set[int]) -> None:
        """Drop the snapshots of jobs no tab shows that nobody asked for lately."""
        with self._lock:
            for job_id in [j for j, g in self._grids.items() if j not in watch_jobs and now - g.used_at > GRID_IDLE_S]:
                del self._grids[job_id]

    def grid(self, source: Source, job_id: int) -> dict[str, Any] | None:
        """Every task of a job in compact columns for the canvas grid, from the shared snapshot
        (read from the database only when no tab watched the job lately); None: no such job."""
        with self._lock:
            snap = self._grids.get(job_id)
            if snap is None:
                snap = self._load(source, job_id)
                if snap is None:
                    return None
                self._grids[job_id] = snap
            snap.used_at = time.monotonic()
            names = self._node_names
            return {"version": snap.version, "states": TASK_STATES, "layers": snap.layers, "id": snap.ids,
                    "layer": snap.layer, "state": snap.state, "frames": snap.frames,
                    "node": [names.get(n, "") if n else "" for n in snap.node]}

    def _load(self, source: Source, job_id: int) -> GridSnapshot | None:
        with self._read(source) as conn:
            layer_rows = conn.execute(q.GRID_LAYERS, {"job_id": job_id}).all()
            if not layer_rows:
                return None
            # in grid order (layer, then task), as plain tuples: 10,000 rows in a few ms
            rows = [tuple(r) for r in conn.execute(q.GRID_CELLS, {"job_id": job_id})]
            ids, layer_idx, states, frames, node_ids = ([list(c) for c in zip(*rows, strict=True)] if rows
                                                        else [[], [], [], [], []])
            self._names(conn, set(node_ids))
        layer_pos = {r.idx: i for i, r in enumerate(layer_rows)}
        return GridSnapshot(
            version=self._next_version(), layers=[r.name for r in layer_rows], ids=ids,
            layer=[layer_pos.get(i, 0) for i in layer_idx], frames=frames,
            state=[STATE_CODES.get(st, 0) for st in states], node=node_ids,
            pos={task_id: k for k, task_id in enumerate(ids)}, used_at=time.monotonic(),
            raw=sorted(zip(ids, states, node_ids, strict=True)))

    def diff(self, source: Source, job_ids: set[int], recheck: bool) -> dict[str, dict[str, Any]]:
        """Re-read the task states of watched grids that changed (all of them on `recheck`); the
        changed cells per job."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            todo = sorted(self._grids if recheck else job_ids & set(self._grids))
            if not todo:
                return out
            with self._read(source) as conn:
                for job_id in todo:
                    change = self._diff_one(conn, job_id)
                    if change is not None:
                        out[str(job_id)] = change
        return out

    def _diff_one(self, conn: Connection, job_id: int) -> dict[str, Any] | None:
        snap = self._grids[job_id]
        # plain tuples in id order: an unchanged grid compares equal at C speed
        rows = [tuple(r) for r in conn.execute(q.GRID_STATES, {"job_id": job_id})]
        if rows == snap.raw:
            return None
        if len(rows) != len(snap.raw) or any(new[0] != old[0] for new, old in zip(rows, snap.raw, strict=True)):
            del self._grids[job_id]  # tasks came or went: rebuild on the next ask
            return {"from": snap.version, "v": self._next_version(), "cells": None}
        changed: list[tuple[int, int, int | None]] = []
        for new, old in zip(rows, snap.raw, strict=True):
            if new != old:
                k = snap.pos[new[0]]
                code = STATE_CODES.get(new[1], 0)
                snap.state[k] = code
                snap.node[k] = new[2]
                changed.append((new[0], code, new[2]))
        snap.raw = rows
        if not changed:
            return None
        names = self._names(conn, {c[2] for c in changed})
        cells = None if len(changed) > GRID_MAX_CELLS else \
            [[task_id, code, names.get(node, "") if node else ""] for task_id, code, node in changed]
        previous, snap.version = snap.version, self._next_version()
        return {"from": previous, "v": snap.version, "cells": cells}
