"""The open dashboard tabs: one queue each, what each page shows, and handing every tab the same event.

Touched from the event loop only (subscribing, unsubscribing, broadcasting), read by the broadcaster's
thread through copies (`watched`, `want_counts`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable

QUEUE_SIZE = 64             # events a slow tab may fall behind before it is told to reload

Event = dict[str, Any]
EventQueue = asyncio.Queue[Event | None]  # None: the stream ends (the server stops)


@dataclass(frozen=True)
class Watch:
    """What one tab's page shows."""

    jobs: frozenset[int]    # job pages: their grid cells travel in events
    tasks: frozenset[int]   # task pages: their state travels in events
    job_info: bool          # shows job progress: changed jobs' counts are read for it


class Subscribers:
    """The tabs listening to `/events`."""

    def __init__(self) -> None:
        self._watches: dict[EventQueue, Watch] = {}

    def subscribe(self, jobs: Iterable[int] = (), tasks: Iterable[int] = (), job_info: bool = True) -> EventQueue:
        """A queue of events for one tab; `jobs` / `tasks`: the job or task pages it shows;
        `job_info`: whether it shows job progress (the counts are read only if some tab does)."""
        queue: EventQueue = asyncio.Queue(QUEUE_SIZE)
        self._watches[queue] = Watch(frozenset(jobs), frozenset(tasks), job_info)
        return queue

    def unsubscribe(self, queue: EventQueue) -> None:
        self._watches.pop(queue, None)

    def __len__(self) -> int:
        return len(self._watches)

    def watched(self) -> tuple[set[int], set[int]]:
        """The jobs and tasks some open tab shows."""
        job_ids: set[int] = set()
        task_ids: set[int] = set()
        for watch in list(self._watches.values()):
            job_ids |= watch.jobs
            task_ids |= watch.tasks
        return job_ids, task_ids

    def want_counts(self) -> bool:
        """Whether some open tab shows job progress."""
        return any(watch.job_info for watch in list(self._watches.values()))

    def broadcast(self, event: Event | None) -> None:
        """Hand one event to every tab (the same object: it is never copied per tab)."""
        for queue in list(self._watches):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled tab: tell it to reload instead of queueing forever
                self._watches.pop(queue, None)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"reload": True})

    def close(self) -> None:
        """End every tab's stream."""
        self.broadcast(None)
        self._watches.clear()
