"""The live state of the tasks whose pages are open: sent when it changes, once for all their tabs."""

from __future__ import annotations

from typing import Any

from thresher.server.db.queries import events as q
from thresher.server.events.reads import CountedReads, Source


class WatchedTasks:
    """What each watched task looked like in the last event (state, attempt, tries)."""

    def __init__(self, read: CountedReads) -> None:
        self._read = read
        self._seen: dict[int, tuple[Any, ...]] = {}

    def forget_all(self) -> None:
        self._seen.clear()

    def changes(self, source: Source, watch_tasks: set[int], anything: bool) -> dict[str, dict[str, Any]]:
        """Watched tasks whose state, attempt or tries changed (or that no event told about yet);
        read only when `anything` changed or a task is newly watched."""
        for gone in set(self._seen) - watch_tasks:
            del self._seen[gone]
        fresh = watch_tasks - set(self._seen)
        if not watch_tasks or not (anything or fresh):
            return {}
        with self._read(source) as conn:
            rows = conn.execute(q.WATCHED_TASKS, {"task_ids": sorted(watch_tasks)}).all()
        out = {}
        for r in rows:
            key = (r.state, r.attempt_id, r.tries)
            if self._seen.get(r.id) != key:
                self._seen[r.id] = key
                out[str(r.id)] = {"job": r.job_id, "state": r.state, "attempt": r.attempt_id, "tries": r.tries}
        return out
