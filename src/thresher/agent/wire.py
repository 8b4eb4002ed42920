"""What the agent sends back to the server: a finish report, as its spool keeps it until it is accepted.

What the server sends the agent (assignments, heartbeat and registration answers) is read with the
models of `thresher.wire.agent`, the ones the server's routes declare; a newer server may add keys,
which those models ignore. Reports stay plain dicts here because the spool writes them to disk as they
are and resends them across agent restarts (`agent/spool.py`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from thresher.model.states import AttemptState

MAX_REASON = 500  # characters of a report's reason the agent sends; the rest is in the log


def utc_now_iso() -> str:
    """Times in reports are ISO 8601 UTC strings, as the protocol says."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


@dataclass
class TaskResult:
    """How an attempt ended; `to_report()` is one entry of `POST /agent/finish`."""

    attempt_id: Any
    status: AttemptState  # succeeded | failed | killed | lost
    exit_code: int | None
    cpu_s: float
    peak_rss_mb: float
    reason: str | None
    log_size: int
    ended_at: str
    out_of_memory: bool = False  # the memory guard or the kernel's OOM killer ended it (`agent/memory_guard.py`)
    waited_s: float = 0.0  # from the assignment's arrival to the process start (room, `tasks_ahead`)

    def to_report(self) -> dict[str, Any]:
        return {
            "attempt_id": self.attempt_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "reason": self.reason,
            "log_size": self.log_size,
            "ended_at": self.ended_at,
            "out_of_memory": self.out_of_memory,
            "waited_s": round(self.waited_s, 3),
        }


def lost_report(attempt_id: Any, reason: str, log_size: int = 0) -> dict[str, Any]:
    """The report of an attempt the agent gave up without a result (shutdown, restart after a crash):
    the server requeues it without counting a try."""
    return TaskResult(attempt_id=attempt_id, status=AttemptState.LOST, exit_code=None, cpu_s=0.0,
                      peak_rss_mb=0.0, reason=reason, log_size=log_size, ended_at=utc_now_iso()).to_report()
