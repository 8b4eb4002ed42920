"""Riding through server outages: retry delays and one log line per outage.

Design rule 6: the server can be restarted at any time and agents ride through it. Each agent thread
(work poll, heartbeat, reporter) retries on its own with backoff; they share one `Connectivity` so
an outage shows as one "unreachable" line and one "back" line, not a stack trace per call.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from thresher.agent.settings import AgentSettings
from thresher.client.http import ApiError, ServerUnreachable

log = logging.getLogger("thresher.agent")

# Statuses that mean "try again later" rather than "this request is wrong".
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_outage(exc: BaseException) -> bool:
    """True for failures that a retry can fix: no connection, timeouts, a proxy or server in trouble."""
    if isinstance(exc, ServerUnreachable):
        return True
    return isinstance(exc, ApiError) and exc.status in RETRYABLE_STATUSES


class Backoff:
    """Exponential retry delay: `initial` seconds doubling up to `maximum`, back to the start on success.

    Each delay is jittered (50-100 %), so a thousand agents that lost the same server do not all
    come back in the same millisecond."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.initial


def retry_backoff(settings: AgentSettings) -> Backoff:
    """The retry delays the settings ask for (`retry_initial_s`, `retry_max_s`)."""
    return Backoff(initial=settings.retry_initial_s, maximum=settings.retry_max_s)


class Connectivity:
    """Shared view of whether the server answers, logging transitions only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        message = exc.detail if isinstance(exc, ApiError) else str(exc)
        log.warning("server unreachable (%s: %s); tasks keep running, retrying", what, message)

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            outage = time.monotonic() - self._down_since
            self._down_since = None
        log.warning("server back after %.1f s", outage)
