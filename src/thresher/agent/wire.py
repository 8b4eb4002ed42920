"""What the agent sends back to the server: a finish report, as its spool keeps it until it is accepted.

What the server sends the agent (assignments, heartbeat and registration answers) is read with the
models of `thresher.wire.agent`, the ones the server's routes declare; a newer server may add keys,
which those models ignore. Reports stay plain dicts here because the spool writes them to disk as they
are and resends them across agent restarts (`agent/spool.py`).
"""

from __future__ import annotations

import datetime as _dt
import re
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


OUTCOME_KEYS = frozenset({"attempt_id", "status", "exit_code", "log_size", "reason"})
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")


def outcome_only(report: dict[str, Any], why: str) -> dict[str, Any]:
    """A finish report the server refused (4xx), cut down to how the attempt ended: its id, state, exit
    code, log size and a plain-ASCII reason that says the rest was refused. Sent once more before the
    report is given up, so that a value the server cannot take (a reason it cannot store, a clock's odd
    `waited_s`) costs that value, not the attempt's result (the task would run again)."""
    status = report.get("status")
    exit_code = report.get("exit_code")
    size = report.get("log_size")
    said = _NOT_PLAIN.sub("?", str(report.get("reason") or ""))[:200]
    note = "the server refused the full report (" + _NOT_PLAIN.sub("?", why)[:200] + ")"
    return {
        "attempt_id": report["attempt_id"],
        "status": status if status in {s.value for s in AttemptState} else AttemptState.FAILED.value,
        "exit_code": exit_code if isinstance(exit_code, int) and -(2**31) <= exit_code < 2**31 else None,
        "log_size": size if isinstance(size, int) and size >= 0 else 0,
        "reason": f"{said}; {note}" if said else note,
    }
