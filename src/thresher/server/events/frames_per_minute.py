"""Frames finished per minute over the last hour: the overview's chart, read incrementally.

A look reads only the attempts that succeeded since the last one (less a margin for reports
committed late), at most every `FPM_REFRESH_S`, and re-reads the whole hour every `FPM_FULL_S`;
attempts seen in the overlap are remembered so that nothing is counted twice.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta

from thresher.server.clock import as_utc, utcnow
from thresher.server.db.queries import events as q
from thresher.server.events.reads import CountedReads, Source

FPM_REFRESH_S = 5.0         # read new finished attempts this often at most
FPM_OVERLAP_S = 30.0        # ... looking back this far for attempts committed late
FPM_FULL_S = 300.0          # ... and re-read the whole hour this often


class FramesPerMinute:
    """Per-minute frame counts of the last hour, kept up to date by incremental reads."""

    def __init__(self, read: CountedReads) -> None:
        self._read = read
        self._minutes: dict[int, int] = defaultdict(int)   # epoch minute -> frames finished
        self._seen: dict[int, float] = {}                    # attempt id -> ended (epoch s), recent only
        self._looked_at = 0.0
        self._stamp = 0.0
        self._full_at = 0.0
        self._lock = threading.Lock()

    def last_hour(self, source: Source) -> list[int]:
        """Frames finished in each of the last 60 minutes (oldest first, the current minute last)."""
        with self._lock:
            mono = time.monotonic()
            if not self._looked_at or mono - self._looked_at >= FPM_REFRESH_S:
                self._read_new(source, full=not self._full_at or mono - self._full_at >= FPM_FULL_S)
                self._looked_at = mono
            current = int(time.time() // 60)
            return [self._minutes.get(m, 0) for m in range(current - 59, current + 1)]

    def _read_new(self, source: Source, full: bool) -> None:
        now = utcnow()
        stamp = now.timestamp()
        if full:
            self._minutes.clear()
            self._seen.clear()
            self._full_at = time.monotonic()
            since = now - timedelta(hours=1)
        else:  # everything that ended after the last read, less a margin for late commits
            since = now - timedelta(seconds=stamp - self._stamp + FPM_OVERLAP_S)
        with self._read(source) as conn:
            for row in conn.execute(q.FRAMES_FINISHED_SINCE, {"since": since}):
                ended = as_utc(row.ended_at)
                if ended is None or row.id in self._seen:
                    continue
                self._seen[row.id] = ended.timestamp()
                self._minutes[int(ended.timestamp() // 60)] += row.frame_count
        oldest_minute = int(stamp // 60) - 60
        for minute in [m for m in self._minutes if m < oldest_minute]:
            del self._minutes[minute]
        self._stamp = stamp
        keep_from = stamp - FPM_OVERLAP_S - 5.0  # the next read looks back no further than this
        for attempt_id in [a for a, t in self._seen.items() if t < keep_from]:
            del self._seen[attempt_id]

    def forget(self) -> None:
        """Re-read the whole hour on the next look."""
        with self._lock:
            self._looked_at = 0.0
            self._full_at = 0.0
