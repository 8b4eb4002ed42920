"""The server's own event stream: one broadcaster per server process, fed from memory.

Route handlers call `ServerContext.publish(...)` after they change something (a job was submitted or
steered, an agent took work, finished an attempt, sent log bytes, heartbeated). Those calls only add
ids to a few sets. Once per `tick_s` a single background task turns the pending ids into one event
and hands it to every open dashboard tab (server-sent events), so a hundred open tabs cost the same
as one: the database is read by the broadcaster, never per tab per second.

An event carries enough that a tab rarely has to ask the server anything:

- `jobs`, `nodes`, `logs`, `new_jobs`: what changed (ids).
- `job_info`: for each changed job, its state, priority, task counts by state and total, read once
  per tick for all tabs. The jobs list repaints its progress bars from it and reloads only when a
  job it shows changed state (or a new job arrived).
- `grid`: for each job whose page is open (`/events?job=ID`), the task cells that changed since the
  last event: `{"from": v0, "v": v1, "cells": [[task_id, state_code, node_name], ...]}`. The broadcaster
  keeps one shared snapshot of each watched job's task states (`grid()`, which also answers the job
  page's first grid request from memory), diffs it against the database once per tick while the job
  changes, and sends only the changed cells, so a 10,000-task grid is never sent again per change.
  `cells: null` (too many changes, or a tab that missed a version) means "reload the grid".
- `task_info`: for each task whose page is open (`/events?task=ID`), its state, live or latest
  attempt and tries, sent when they change; the task page reloads its attempts only then.
- `summary`: the version of the farm summary (node and job counts, cores and GPUs in use), refreshed
  at most every `summary_s` while somebody watches; overview and node pages render from it.

The broadcaster also keeps a short in-memory history of every node's CPU and memory use (one sample
per node every `sample_s`, default 15 s, `THRESHER_NODE_SAMPLE_S` to change it) and frames finished
per minute over the last hour (read incrementally, at most every `FPM_REFRESH_S`). Watched grids and
tasks are re-read every `RECHECK_S` even without an event, which covers changes made by another
server process. Nothing here is the source of truth: a restart loses only the sparkline history.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterable

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import bindparam, func, select

from thresher.model.states import TASK_STATES, AttemptState
from thresher.server.clock import as_utc, utcnow
from thresher.server.db.tables import attempts, jobs, layers, nodes, tasks

if TYPE_CHECKING:
    from thresher.server.context import ServerContext

log = logging.getLogger("thresher.server.events")

HISTORY_SPAN_S = 3600.0     # node CPU/memory history kept this long
QUEUE_SIZE = 64             # events a slow tab may fall behind before it is told to reload
RECHECK_S = 10.0            # watched grids and tasks are re-read this often, event or not
GRID_IDLE_S = 30.0          # a grid snapshot no open tab watches is dropped after this
GRID_MAX_CELLS = 2000       # more changed cells in one tick: tell the tabs to reload the grid instead
JOB_INFO_MAX = 500          # changed jobs whose counts one event carries
FPM_REFRESH_S = 5.0         # frames-per-minute chart: read new finished attempts this often at most
FPM_OVERLAP_S = 30.0        # ... looking back this far for attempts committed late
FPM_FULL_S = 300.0          # ... and re-read the whole hour this often
STATE_CODES = {state: i for i, state in enumerate(TASK_STATES)}


def _default_sample_s() -> float:
    try:
        return max(0.1, float(os.environ.get("THRESHER_NODE_SAMPLE_S", "15")))
    except ValueError:
        return 15.0


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


_GRID_ROWS = select(tasks.c.id, tasks.c.state, tasks.c.node_id).where(tasks.c.job_id == bindparam("job_id")) \
    .order_by(tasks.c.id)


Watch = tuple[frozenset[int], frozenset[int], bool]  # (jobs, tasks) a tab's page shows; wants job counts


class EventHub:
    def __init__(self, tick_s: float = 1.0, summary_s: float = 2.0, sample_s: float | None = None) -> None:
        self.tick_s = tick_s
        self.summary_s = summary_s
        self.sample_s = sample_s if sample_s is not None else _default_sample_s()
        self._lock = threading.Lock()
        self._jobs: set[int] = set()
        self._attempts: set[int] = set()
        self._nodes: set[int] = set()
        self._quiet_nodes: set[int] = set()  # see publish
        self._logs: set[int] = set()
        self._new_jobs = False
        self._subscribers: dict[asyncio.Queue[dict[str, Any] | None], Watch] = {}
        self.summary: dict[str, Any] | None = None
        self.summary_version = 0
        self._summary_at = 0.0
        self._summary_lock = threading.Lock()
        self.node_history: dict[int, deque[tuple[float, float | None, int | None]]] = {}
        self._sampled_at = 0.0
        self._fpm_minutes: dict[int, int] = defaultdict(int)   # epoch minute -> frames finished
        self._fpm_seen: dict[int, float] = {}                    # attempt id -> ended (epoch s), recent only
        self._fpm_at = 0.0
        self._fpm_stamp = 0.0
        self._fpm_full_at = 0.0
        self._fpm_lock = threading.Lock()
        self._grids: dict[int, GridSnapshot] = {}
        self._grid_lock = threading.RLock()
        self._versions = 0
        self._node_names: dict[int, str] = {}
        self._task_seen: dict[int, tuple[Any, ...]] = {}
        self._checked_at = 0.0
        self.ticks = 0
        self.reads = 0       # database read transactions the broadcaster opened (tests, benches)
        self._dirty = False

    # -- producers (any thread) ----------------------------------------------------------
    def publish(self, *, jobs: Iterable[int] = (), attempts: Iterable[int] = (), nodes: Iterable[int] = (),
                logs: Iterable[int] = (), new_job: bool = False, quiet_nodes: Iterable[int] = ()) -> None:
        """Note what changed. `quiet_nodes`: nodes whose news the farm summary does not show (a
        heartbeat's live figures): their pages refresh, the summary is not re-read for them, which on a
        farm of thousands of heartbeating nodes would be every `summary_s`."""
        with self._lock:
            self._jobs.update(int(j) for j in jobs)
            self._attempts.update(int(a) for a in attempts)
            self._nodes.update(int(n) for n in nodes)
            self._quiet_nodes.update(int(n) for n in quiet_nodes)
            self._logs.update(int(a) for a in logs)
            self._new_jobs = self._new_jobs or new_job

    def _take(self) -> tuple[set[int], set[int], set[int], set[int], set[int], bool]:
        with self._lock:
            taken = (self._jobs, self._attempts, self._nodes, self._quiet_nodes, self._logs, self._new_jobs)
            self._jobs, self._attempts, self._nodes, self._logs, self._new_jobs = set(), set(), set(), set(), False
            self._quiet_nodes = set()
        return taken

    # -- consumers (the event loop) -------------------------------------------------------
    def subscribe(self, jobs: Iterable[int] = (), tasks: Iterable[int] = (),
                  job_info: bool = True) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of events for one tab; `jobs` / `tasks`: the job or task pages it shows;
        `job_info`: whether it shows job progress (the counts are read only if some tab does)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[queue] = (frozenset(jobs), frozenset(tasks), job_info)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.pop(queue, None)

    @property
    def watchers(self) -> int:
        return len(self._subscribers)

    def watched(self) -> tuple[set[int], set[int]]:
        """The jobs and tasks some open tab shows."""
        job_ids: set[int] = set()
        task_ids: set[int] = set()
        for watch_jobs, watch_tasks, _counts in list(self._subscribers.values()):
            job_ids |= watch_jobs
            task_ids |= watch_tasks
        return job_ids, task_ids

    def _broadcast(self, event: dict[str, Any] | None) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled tab: tell it to reload instead of queueing forever
                self._subscribers.pop(queue, None)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"reload": True})

    def close(self) -> None:
        self._broadcast(None)
        self._subscribers.clear()

    async def run(self, server: "ServerContext") -> None:
        """The broadcaster loop; started by the app's lifespan."""
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                event = await run_in_threadpool(self.tick, server)
            except Exception:  # one bad round must not stop the stream
                log.exception("event tick failed")
                continue
            if event:
                self._broadcast(event)

    def tick(self, server: "ServerContext") -> dict[str, Any] | None:
        """One round: turn pending ids into an event; refresh the summary when due. Runs in a thread."""
        self.ticks += 1
        job_ids, attempt_ids, node_ids, quiet_nodes, log_ids, new_jobs = self._take()
        now = time.monotonic()
        due_sample = now - self._sampled_at >= self.sample_s
        self._dirty = self._dirty or bool(job_ids or attempt_ids or node_ids or new_jobs)
        node_ids |= quiet_nodes
        if not self._subscribers:
            self._drop_idle_grids(now, set())
            self._task_seen.clear()
            if due_sample:
                self.refresh_summary(server)
            return None
        watch_jobs, watch_tasks = self.watched()
        recheck = now - self._checked_at >= RECHECK_S
        if recheck:
            self._checked_at = now
        self._drop_idle_grids(now, watch_jobs)
        if attempt_ids:
            with self._read(server) as conn:
                job_ids |= {r.job_id for r in conn.execute(
                    select(attempts.c.job_id).where(attempts.c.id.in_(sorted(attempt_ids))).distinct())}
        grids = self._diff_grids(server, job_ids, recheck)
        job_ids |= {int(j) for j in grids}
        task_info = self._task_changes(server, watch_tasks, bool(job_ids) or recheck)
        wants_counts = any(counts for _jobs, _tasks, counts in list(self._subscribers.values()))
        job_info = self._job_info(server, job_ids) if job_ids and wants_counts else {}
        summary_changed = False
        if (self._dirty and now - self._summary_at >= self.summary_s) or \
                now - self._summary_at >= 10 * self.summary_s or due_sample:
            self._dirty = False
            summary_changed = self.refresh_summary(server)
        if not (job_ids or node_ids or log_ids or new_jobs or summary_changed or task_info):
            return None
        event: dict[str, Any] = {"jobs": sorted(job_ids), "nodes": sorted(node_ids), "logs": sorted(log_ids),
                                 "new_jobs": new_jobs}
        if job_info:
            event["job_info"] = job_info
        if grids:
            event["grid"] = grids
        if task_info:
            event["task_info"] = task_info
        if summary_changed:
            event["summary"] = self.summary_version
        return event

    def _read(self, server: "ServerContext") -> Any:
        self.reads += 1
        return server.db.read()

    # -- what changed, for the tabs that show it ---------------------------------------------
    def _job_info(self, server: "ServerContext", job_ids: set[int]) -> dict[str, dict[str, Any]]:
        """State, priority and task counts of changed jobs (at most JOB_INFO_MAX), one read for all tabs."""
        from thresher.server import views

        ids = sorted(job_ids)[-JOB_INFO_MAX:]
        with self._read(server) as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.state, jobs.c.priority, jobs.c.total_tasks)
                                .where(jobs.c.id.in_(ids))).all()
            counts = views.counts_by_job(conn, [r.id for r in rows])
        return {str(r.id): {"state": r.state, "priority": r.priority, "total": r.total_tasks, "counts": counts[r.id]}
                for r in rows}

    def _task_changes(self, server: "ServerContext", watch_tasks: set[int], anything: bool) -> dict[str, dict[str, Any]]:
        """Watched tasks whose state, attempt or tries changed (or that no event told about yet)."""
        for gone in set(self._task_seen) - watch_tasks:
            del self._task_seen[gone]
        fresh = watch_tasks - set(self._task_seen)
        if not watch_tasks or not (anything or fresh):
            return {}
        with self._read(server) as conn:
            rows = conn.execute(select(tasks.c.id, tasks.c.job_id, tasks.c.state, tasks.c.attempt_id, tasks.c.tries)
                                .where(tasks.c.id.in_(sorted(watch_tasks)))).all()
        out = {}
        for r in rows:
            key = (r.state, r.attempt_id, r.tries)
            if self._task_seen.get(r.id) != key:
                self._task_seen[r.id] = key
                out[str(r.id)] = {"job": r.job_id, "state": r.state, "attempt": r.attempt_id, "tries": r.tries}
        return out

    # -- the shared task grids ---------------------------------------------------------------
    def _next_version(self) -> int:
        self._versions += 1
        return self._versions

    def _names(self, conn: Any, node_ids: Iterable[int | None]) -> dict[int, str]:
        if any(n is not None and n not in self._node_names for n in node_ids):
            self._node_names = {r.id: r.name for r in conn.execute(select(nodes.c.id, nodes.c.name))}
        return self._node_names

    def _drop_idle_grids(self, now: float, watch_jobs: set[int]) -> None:
        with self._grid_lock:
            for job_id in [j for j, g in self._grids.items() if j not in watch_jobs and now - g.used_at > GRID_IDLE_S]:
                del self._grids[job_id]

    def grid(self, server: "ServerContext", job_id: int) -> dict[str, Any] | None:
        """Every task of a job in compact columns for the canvas grid, from the shared snapshot
        (read from the database only when no tab watched the job lately); None: no such job."""
        with self._grid_lock:
            snap = self._grids.get(job_id)
            if snap is None:
                with self._read(server) as conn:
                    layer_rows = conn.execute(select(layers.c.idx, layers.c.name).where(layers.c.job_id == job_id)
                                              .order_by(layers.c.idx)).all()
                    if not layer_rows:
                        return None
                    # in grid order (layer, then task), as plain tuples: 10,000 rows in a few ms
                    rows = [tuple(r) for r in conn.execute(
                        select(tasks.c.id, layers.c.idx, tasks.c.state, tasks.c.frames, tasks.c.node_id)
                        .join(layers, layers.c.id == tasks.c.layer_id).where(tasks.c.job_id == job_id)
                        .order_by(layers.c.idx, tasks.c.idx))]
                    ids, layer_idx, states, frames, node_ids = ([list(c) for c in zip(*rows)] if rows
                                                                else [[], [], [], [], []])
                    self._names(conn, set(node_ids))
                layer_pos = {r.idx: i for i, r in enumerate(layer_rows)}
                snap = GridSnapshot(
                    version=self._next_version(), layers=[r.name for r in layer_rows], ids=ids,
                    layer=[layer_pos.get(i, 0) for i in layer_idx], frames=frames,
                    state=[STATE_CODES.get(st, 0) for st in states], node=node_ids,
                    pos={task_id: k for k, task_id in enumerate(ids)}, used_at=time.monotonic(),
                    raw=sorted(zip(ids, states, node_ids)))
                self._grids[job_id] = snap
            snap.used_at = time.monotonic()
            names = self._node_names
            return {"version": snap.version, "states": TASK_STATES, "layers": snap.layers, "id": snap.ids,
                    "layer": snap.layer, "state": snap.state, "frames": snap.frames,
                    "node": [names.get(n, "") if n else "" for n in snap.node]}

    def _diff_grids(self, server: "ServerContext", job_ids: set[int], recheck: bool) -> dict[str, dict[str, Any]]:
        """Re-read the task states of watched grids that changed; the changed cells per job."""
        out: dict[str, dict[str, Any]] = {}
        with self._grid_lock:
            todo = sorted(self._grids if recheck else job_ids & set(self._grids))
            if not todo:
                return out
            with self._read(server) as conn:
                for job_id in todo:
                    snap = self._grids[job_id]
                    # plain tuples in id order: an unchanged grid compares equal at C speed
                    rows = [tuple(r) for r in conn.execute(_GRID_ROWS, {"job_id": job_id})]
                    if rows == snap.raw:
                        continue
                    pairs = list(zip(rows, snap.raw))
                    if len(rows) != len(snap.raw) or any(new[0] != old[0] for new, old in pairs):
                        del self._grids[job_id]  # tasks came or went: rebuild on the next ask
                        out[str(job_id)] = {"from": snap.version, "v": self._next_version(), "cells": None}
                        continue
                    changed: list[tuple[int, int, int | None]] = []
                    for new, old in pairs:
                        if new != old:
                            k = snap.pos[new[0]]
                            code = STATE_CODES.get(new[1], 0)
                            snap.state[k] = code
                            snap.node[k] = new[2]
                            changed.append((new[0], code, new[2]))
                    snap.raw = rows
                    if not changed:
                        continue
                    names = self._names(conn, {c[2] for c in changed})
                    version = self._next_version()
                    cells = None if len(changed) > GRID_MAX_CELLS else \
                        [[task_id, code, names.get(node, "") if node else ""] for task_id, code, node in changed]
                    out[str(job_id)] = {"from": snap.version, "v": version, "cells": cells}
                    snap.version = version
        return out

    # -- the shared farm summary ------------------------------------------------------------
    def current_summary(self, server: "ServerContext", max_age: float | None = None) -> dict[str, Any]:
        """The cached summary; read from the database only when none is fresh enough."""
        age = time.monotonic() - self._summary_at
        limit = max_age if max_age is not None else 10 * self.summary_s
        if self.summary is None or age > limit or (self._dirty and age > self.summary_s):
            self._dirty = False
            self.refresh_summary(server)
        assert self.summary is not None
        return self.summary

    def refresh_summary(self, server: "ServerContext") -> bool:
        """Read the farm summary (a few small queries); returns whether it changed."""
        from thresher.server import views

        with self._summary_lock:
            with self._read(server) as conn:
                node_list = [node.model_dump(mode="json") for node in views.all_nodes(conn)]
                job_states = {r.state: r.n for r in conn.execute(
                    select(jobs.c.state, func.count().label("n")).group_by(jobs.c.state))}
            now = time.monotonic()
            self._summary_at = now
            if now - self._sampled_at >= self.sample_s:
                self._sampled_at = now
                stamp = time.time()
                for node in node_list:
                    if node["state"] == "up":
                        ring = self.node_history.setdefault(node["id"], deque())
                        ring.append((stamp, node["cpu_percent"], node["memory_used_mb"]))
                        while ring and stamp - ring[0][0] > HISTORY_SPAN_S:
                            ring.popleft()
            summary = build_summary(node_list, job_states)
            changed = summary != self.summary
            if changed:
                self.summary = summary
                self.summary_version += 1
            return changed

    def history(self, node_id: int) -> list[tuple[float, float | None, int | None]]:
        return list(self.node_history.get(node_id, ()))

    # -- frames per minute ------------------------------------------------------------------
    def frames_per_minute(self, server: "ServerContext") -> list[int]:
        """Frames finished in each of the last 60 minutes (oldest first, the current minute last).
        Reads only attempts that finished since the last look, at most every FPM_REFRESH_S."""
        with self._fpm_lock:
            mono = time.monotonic()
            if not self._fpm_at or mono - self._fpm_at >= FPM_REFRESH_S:
                self._fpm_read(server, full=not self._fpm_full_at or mono - self._fpm_full_at >= FPM_FULL_S)
                self._fpm_at = mono
            current = int(time.time() // 60)
            return [self._fpm_minutes.get(m, 0) for m in range(current - 59, current + 1)]

    def _fpm_read(self, server: "ServerContext", full: bool) -> None:
        now = utcnow()
        stamp = now.timestamp()
        if full:
            self._fpm_minutes.clear()
            self._fpm_seen.clear()
            self._fpm_full_at = time.monotonic()
            since = now - timedelta(hours=1)
        else:  # everything that ended after the last read, less a margin for late commits
            since = now - timedelta(seconds=stamp - self._fpm_stamp + FPM_OVERLAP_S)
        with self._read(server) as conn:
            rows = conn.execute(select(attempts.c.id, attempts.c.ended_at, tasks.c.frame_count)
                                .join(tasks, tasks.c.id == attempts.c.task_id)
                                .where(attempts.c.state == AttemptState.SUCCEEDED.value, attempts.c.ended_at >= since))
            for row in rows:
                ended = as_utc(row.ended_at)
                if ended is None or row.id in self._fpm_seen:
                    continue
                self._fpm_seen[row.id] = ended.timestamp()
                self._fpm_minutes[int(ended.timestamp() // 60)] += row.frame_count
        oldest_minute = int(stamp // 60) - 60
        for minute in [m for m in self._fpm_minutes if m < oldest_minute]:
            del self._fpm_minutes[minute]
        self._fpm_stamp = stamp
        keep_from = stamp - FPM_OVERLAP_S - 5.0  # the next read looks back no further than this
        for attempt_id in [a for a, t in self._fpm_seen.items() if t < keep_from]:
            del self._fpm_seen[attempt_id]

    def forget_frames_per_minute(self) -> None:
        """Re-read the whole hour on the next look."""
        with self._fpm_lock:
            self._fpm_at = 0.0
            self._fpm_full_at = 0.0


def build_summary(node_list: list[dict[str, Any]], job_states: dict[str, int]) -> dict[str, Any]:
    """Counts the overview shows, from the node list and job counts by state."""
    counts = {"up": 0, "busy": 0, "idle": 0, "down": 0, "disabled": 0, "draining": 0}
    cores_total = cores_used = gpus_total = gpus_used = 0
    mem_total = mem_used = 0
    for node in node_list:
        running = node["running"]
        if node["admin_state"] == "disabled":
            counts["disabled"] += 1
        elif node["admin_state"] == "draining":
            counts["draining"] += 1
        if node["state"] != "up":
            counts["down"] += 1
            continue
        counts["up"] += 1
        if running:
            counts["busy"] += 1
        elif node["admin_state"] == "enabled":
            counts["idle"] += 1
        cores_total += node["cores"]
        cores_used += node["cores"] - node["free"]["cores"]
        gpus_total += len(node["gpus"])
        gpus_used += len(node["gpus"]) - node["free"]["gpus"]
        mem_total += node["memory_mb"]
        mem_used += node["memory_mb"] - node["free"]["memory_mb"]
    return {
        "nodes": counts, "node_count": len(node_list),
        "cores": {"used": cores_used, "total": cores_total},
        "gpus": {"used": gpus_used, "total": gpus_total},
        "memory_mb": {"used": mem_used, "total": mem_total},
        "jobs": {state: job_states.get(state, 0) for state in
                 ("running", "queued", "waiting", "paused", "failed", "killed", "succeeded")},
        "node_list": node_list,
    }
