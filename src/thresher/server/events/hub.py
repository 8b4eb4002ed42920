"""The broadcaster: once per tick, turn the ids API calls noted into one event for every open tab.

It owns the parts (the change log, the open tabs, the shared grids, the watched tasks, the farm
summary and the frames-per-minute chart) and decides, each tick, what to read for whom: nothing at
all when no tab is open, the changed jobs' counts only if some tab shows job progress, the grids and
tasks that tabs watch. Watched grids and tasks are re-read every `RECHECK_S` even without news,
which covers changes made by another server process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable

from fastapi.concurrency import run_in_threadpool

from thresher.server import views
from thresher.server.db.queries import events as q
from thresher.server.events.changes import ChangeLog
from thresher.server.events.farm_summary import FarmSummary, Sample
from thresher.server.events.frames_per_minute import FramesPerMinute
from thresher.server.events.grids import TaskGrids
from thresher.server.events.reads import CountedReads, Source
from thresher.server.events.subscribers import Event, EventQueue, Subscribers
from thresher.server.events.watched_tasks import WatchedTasks

log = logging.getLogger("thresher.server.events")

RECHECK_S = 10.0            # watched grids and tasks are re-read this often, event or not
JOB_INFO_MAX = 500          # changed jobs whose counts one event carries
NODE_SAMPLE_S = 15.0        # a node CPU/memory sample this often, by default
class EventHub:
    """One per server process; producers call `publish`, the app's lifespan runs `run`."""

    def __init__(self, tick_s: float = 1.0, summary_s: float = 2.0, sample_s: float = NODE_SAMPLE_S) -> None:
        self.tick_s = tick_s
        self.reads = CountedReads()    # database read transactions the broadcaster opened (tests, benches)
        self.changes = ChangeLog()
        self.tabs = Subscribers()
        self.grids = TaskGrids(self.reads)
        self.tasks = WatchedTasks(self.reads)
        self.farm = FarmSummary(self.reads, summary_s=summary_s, sample_s=sample_s)
        self.fpm = FramesPerMinute(self.reads)
        self.ticks = 0
        self._checked_at = 0.0
        self.relay: Any = None          # the other server processes' dashboards (server/peers.py)

    # -- producers (any thread) ----------------------------------------------------------
    def publish(self, *, jobs: Iterable[int] = (), attempts: Iterable[int] = (), nodes: Iterable[int] = (),
                logs: Iterable[int] = (), new_job: bool = False, quiet_nodes: Iterable[int] = (),
                relay: bool = True) -> None:
        """Note what changed (see `ChangeLog.note`). Cheap: ids into sets. Other server processes are told
        too (`relay`), but for `quiet_nodes`: a heartbeat's figures, which their pages re-read anyway."""
        jobs, attempts, nodes, logs = (list(ids) for ids in (jobs, attempts, nodes, logs))
        self.changes.note(jobs=jobs, attempts=attempts, nodes=nodes, logs=logs, new_job=new_job,
                          quiet_nodes=quiet_nodes)
        if relay and self.relay is not None and (jobs or attempts or nodes or logs or new_job):
            self.relay.published(jobs=jobs, attempts=attempts, nodes=nodes, logs=logs, new_job=new_job)

    # -- consumers (the event loop) -------------------------------------------------------
    def subscribe(self, jobs: Iterable[int] = (), tasks: Iterable[int] = (), job_info: bool = True) -> EventQueue:
        """A queue of events for one tab (see `Subscribers.subscribe`)."""
        return self.tabs.subscribe(jobs, tasks, job_info)

    def unsubscribe(self, queue: EventQueue) -> None:
        self.tabs.unsubscribe(queue)

    @property
    def watchers(self) -> int:
        return len(self.tabs)

    def watched(self) -> tuple[set[int], set[int]]:
        return self.tabs.watched()

    def close(self) -> None:
        self.tabs.close()

    async def run(self, source: Source) -> None:
        """The broadcaster loop; started by the app's lifespan."""
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                event = await run_in_threadpool(self.tick, source)
            except Exception:  # one bad round must not stop the stream
                log.exception("event tick failed")
                continue
            if event:
                self.tabs.broadcast(event)

    def tick(self, source: Source) -> Event | None:
        """One round: turn pending ids into an event; refresh the summary when due. Runs in a thread."""
        self.ticks += 1
        pending = self.changes.take()
        now = time.monotonic()
        sample_due = self.farm.sample_due(now)
        if pending.touches_summary:
            self.farm.mark_dirty()
        node_ids = pending.nodes | pending.quiet_nodes
        if not self.tabs:
            self.grids.drop_idle(now, set())
            self.tasks.forget_all()
            if sample_due:
                self.farm.refresh(source)
            return None
        watch_jobs, watch_tasks = self.tabs.watched()
        recheck = now - self._checked_at >= RECHECK_S
        if recheck:
            self._checked_at = now
        self.grids.drop_idle(now, watch_jobs)
        job_ids = pending.jobs
        if pending.attempts:
            job_ids |= self._jobs_of_attempts(source, pending.attempts)
        grids = self.grids.diff(source, job_ids, recheck)
        job_ids |= {int(j) for j in grids}
        task_info = self.tasks.changes(source, watch_tasks, bool(job_ids) or recheck)
        job_info = self._job_info(source, job_ids) if job_ids and self.tabs.want_counts() else {}
        summary_changed = self.farm.refresh_if_due(source, now, sample_due)
        if not (job_ids or node_ids or pending.logs or pending.new_jobs or summary_changed or task_info):
            return None
        event: Event = {"jobs": sorted(job_ids), "nodes": sorted(node_ids), "logs": sorted(pending.logs),
                        "new_jobs": pending.new_jobs}
        if job_info:
            event["job_info"] = job_info
        if grids:
            event["grid"] = grids
        if task_info:
            event["task_info"] = task_info
        if summary_changed:
            event["summary"] = self.farm.version
        return event

    def _jobs_of_attempts(self, source: Source, attempt_ids: set[int]) -> set[int]:
        with self.reads(source) as conn:
            return {r.job_id for r in conn.execute(q.JOBS_OF_ATTEMPTS, {"attempt_ids": sorted(attempt_ids)})}

    def _job_info(self, source: Source, job_ids: set[int]) -> dict[str, dict[str, Any]]:
        """State, pause, priority and task counts of changed jobs (at most JOB_INFO_MAX), one read for all
        tabs; the pause because a jobs list filtered to paused shows a running job a person paused."""
        ids = sorted(job_ids)[-JOB_INFO_MAX:]
        with self.reads(source) as conn:
            rows = conn.execute(q.JOB_INFO, {"job_ids": ids}).all()
            counts = views.counts_by_job(conn, [r.id for r in rows])
        return {str(r.id): {"state": r.state, "paused": bool(r.paused), "priority": r.priority, "total": r.total_tasks,
                            "counts": counts[r.id]} for r in rows}

    # -- what the pages read from memory ----------------------------------------------------
    def grid(self, source: Source, job_id: int) -> dict[str, Any] | None:
        """A job's task grid from the shared snapshot (see `TaskGrids.grid`); None: no such job."""
        return self.grids.grid(source, job_id)

    @property
    def summary_version(self) -> int:
        return self.farm.version

    def current_summary(self, source: Source, max_age: float | None = None) -> dict[str, Any]:
        return self.farm.current(source, max_age)

    def history(self, node_id: int) -> list[Sample]:
        """A node's CPU and memory samples over the last hour, oldest first."""
        return self.farm.history.of(node_id)

    def frames_per_minute(self, source: Source) -> list[int]:
        return self.fpm.last_hour(source)

    def forget_frames_per_minute(self) -> None:
        self.fpm.forget()
