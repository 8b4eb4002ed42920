"""The server's own event stream: one broadcaster per server process, fed from memory.

Route handlers call `ServerContext.publish(...)` after they change something (a job was submitted or
steered, an agent took work, finished an attempt, sent log bytes, heartbeated). Those calls only add
ids to a few sets. Once per `tick_s` a single background task turns the pending ids into one event
and hands it to every open dashboard tab (server-sent events), so a hundred open tabs cost the same
as one: the database is read by the broadcaster, never per tab per second.

The broadcaster also keeps the farm summary (node and job counts, cores and GPUs in use), refreshed
at most every `summary_s` while somebody watches, a short in-memory history of every node's CPU and
memory use, and finished frames per minute over the last hour (one query a minute, on demand).
Nothing here is the source of truth: a restart loses only the sparkline history.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterable

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select

from thresher.model.states import AttemptState
from thresher.server.clock import as_utc, utcnow
from thresher.server.db.tables import attempts, jobs, tasks

if TYPE_CHECKING:
    from thresher.server.context import ServerContext

log = logging.getLogger("thresher.server.events")

HISTORY_SAMPLE_S = 15.0     # one CPU/memory sample per node this often
HISTORY_LEN = 240           # an hour of samples
QUEUE_SIZE = 64             # events a slow tab may fall behind before it is told to reload


class EventHub:
    def __init__(self, tick_s: float = 1.0, summary_s: float = 2.0) -> None:
        self.tick_s = tick_s
        self.summary_s = summary_s
        self._lock = threading.Lock()
        self._jobs: set[int] = set()
        self._attempts: set[int] = set()
        self._nodes: set[int] = set()
        self._logs: set[int] = set()
        self._new_jobs = False
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.summary: dict[str, Any] | None = None
        self.summary_version = 0
        self._summary_at = 0.0
        self._summary_lock = threading.Lock()
        self.node_history: dict[int, deque[tuple[float, float | None, int | None]]] = {}
        self._sampled_at = 0.0
        self._fpm: list[int] = [0] * 60
        self._fpm_at = 0.0
        self._fpm_lock = threading.Lock()
        self.ticks = 0
        self._dirty = False

    # -- producers (any thread) ----------------------------------------------------------
    def publish(self, *, jobs: Iterable[int] = (), attempts: Iterable[int] = (), nodes: Iterable[int] = (),
                logs: Iterable[int] = (), new_job: bool = False) -> None:
        with self._lock:
            self._jobs.update(int(j) for j in jobs)
            self._attempts.update(int(a) for a in attempts)
            self._nodes.update(int(n) for n in nodes)
            self._logs.update(int(a) for a in logs)
            self._new_jobs = self._new_jobs or new_job

    def _take(self) -> tuple[set[int], set[int], set[int], set[int], bool]:
        with self._lock:
            taken = (self._jobs, self._attempts, self._nodes, self._logs, self._new_jobs)
            self._jobs, self._attempts, self._nodes, self._logs, self._new_jobs = set(), set(), set(), set(), False
        return taken

    # -- consumers (the event loop) -------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def watchers(self) -> int:
        return len(self._subscribers)

    def _broadcast(self, event: dict[str, Any] | None) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled tab: tell it to reload instead of queueing forever
                self._subscribers.discard(queue)
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
        job_ids, attempt_ids, node_ids, log_ids, new_jobs = self._take()
        watched = bool(self._subscribers)
        now = time.monotonic()
        due_sample = now - self._sampled_at >= HISTORY_SAMPLE_S
        self._dirty = self._dirty or bool(job_ids or attempt_ids or node_ids or new_jobs)
        if not watched:
            if due_sample:
                self.refresh_summary(server)
            return None
        if attempt_ids:
            with server.db.read() as conn:
                job_ids |= {r.job_id for r in conn.execute(
                    select(attempts.c.job_id).where(attempts.c.id.in_(sorted(attempt_ids))).distinct())}
        summary_changed = False
        if (self._dirty and now - self._summary_at >= self.summary_s) or \
                now - self._summary_at >= 10 * self.summary_s or due_sample:
            self._dirty = False
            summary_changed = self.refresh_summary(server)
        if not (job_ids or node_ids or log_ids or new_jobs or summary_changed):
            return None
        event: dict[str, Any] = {"jobs": sorted(job_ids), "nodes": sorted(node_ids), "logs": sorted(log_ids),
                                 "new_jobs": new_jobs}
        if summary_changed:
            event["summary"] = self.summary_version
        return event

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
            with server.db.read() as conn:
                node_list = views.list_nodes(conn)
                job_states = {r.state: r.n for r in conn.execute(
                    select(jobs.c.state, func.count().label("n")).group_by(jobs.c.state))}
            now = time.monotonic()
            self._summary_at = now
            if now - self._sampled_at >= HISTORY_SAMPLE_S:
                self._sampled_at = now
                stamp = time.time()
                for node in node_list:
                    if node["state"] == "up":
                        ring = self.node_history.setdefault(node["id"], deque(maxlen=HISTORY_LEN))
                        ring.append((stamp, node["cpu_percent"], node["memory_used_mb"]))
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
        """Frames finished in each of the last 60 minutes (oldest first); one query a minute at most."""
        with self._fpm_lock:
            if time.monotonic() - self._fpm_at < 60.0 and self._fpm_at:
                return list(self._fpm)
            now = utcnow()
            since = now - timedelta(hours=1)
            buckets = [0] * 60
            with server.db.read() as conn:
                rows = conn.execute(select(attempts.c.ended_at, tasks.c.frame_count)
                                    .join(tasks, tasks.c.id == attempts.c.task_id)
                                    .where(attempts.c.state == AttemptState.SUCCEEDED.value,
                                           attempts.c.ended_at >= since))
                for row in rows:
                    ended = as_utc(row.ended_at)
                    if ended is None:
                        continue
                    minute = int((now - ended).total_seconds() // 60)
                    if 0 <= minute < 60:
                        buckets[59 - minute] += row.frame_count
            self._fpm = buckets
            self._fpm_at = time.monotonic()
            return list(buckets)

    def forget_frames_per_minute(self) -> None:
        self._fpm_at = 0.0


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
