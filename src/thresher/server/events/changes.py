"""The change log: ids that API calls noted as changed, waiting for the broadcaster's next tick.

Route handlers (any thread) only add ids to sets here; the broadcaster takes them all at once, so a
thousand changes between two ticks cost one read, not a thousand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterable


@dataclass
class Pending:
    """What changed since the last tick."""

    jobs: set[int] = field(default_factory=set)
    attempts: set[int] = field(default_factory=set)
    nodes: set[int] = field(default_factory=set)
    quiet_nodes: set[int] = field(default_factory=set)  # news the farm summary does not show (see ChangeLog.note)
    logs: set[int] = field(default_factory=set)
    new_jobs: bool = False

    @property
    def touches_summary(self) -> bool:
        """Whether the farm summary may have changed (quiet node news and log bytes do not change it)."""
        return bool(self.jobs or self.attempts or self.nodes or self.new_jobs)


class ChangeLog:
    """Collects changed ids from any thread; `take` hands them over and starts afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = Pending()

    def note(self, *, jobs: Iterable[int] = (), attempts: Iterable[int] = (), nodes: Iterable[int] = (),
             logs: Iterable[int] = (), new_job: bool = False, quiet_nodes: Iterable[int] = ()) -> None:
        """Note what changed. `quiet_nodes`: nodes whose news the farm summary does not show (a
        heartbeat's live figures): their pages refresh, the summary is not re-read for them, which on a
        farm of thousands of heartbeating nodes would be every `summary_s`."""
        with self._lock:
            pending = self._pending
            pending.jobs.update(int(j) for j in jobs)
            pending.attempts.update(int(a) for a in attempts)
            pending.nodes.update(int(n) for n in nodes)
            pending.quiet_nodes.update(int(n) for n in quiet_nodes)
            pending.logs.update(int(a) for a in logs)
            pending.new_jobs = pending.new_jobs or new_job

    def take(self) -> Pending:
        """Everything noted since the last take."""
        with self._lock:
            taken, self._pending = self._pending, Pending()
        return taken
