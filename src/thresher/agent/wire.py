"""What the agent receives from the server (an assignment) and sends back (a finish report).

These are the agent's own reading of the HTTP contract in docs/protocol.md, kept in one small module
so that the day the agent reads the typed models of `thresher.wire` instead, only this file changes.
Parsing is lenient on purpose: a newer server may add keys, and nulls mean "the default".
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from thresher.model.states import AttemptState

MAX_REASON = 500  # characters of a report's reason the agent sends; the rest is in the log


def utc_now_iso() -> str:
    """Times in reports are ISO 8601 UTC strings, as the protocol says."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


@dataclass
class Assignment:
    """One unit of work from `POST /agent/work` (see docs/protocol.md)."""

    attempt_id: Any
    argv: list[str]
    task_id: Any = None
    job_id: Any = None
    job_name: str = ""
    layer: str = ""
    frames: str = ""
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_s: float | None = None
    gpus: list[int] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    progress_patterns: list[str] = field(default_factory=list)
    error_patterns: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Assignment":
        """Lenient parse: unknown keys are ignored, nulls become defaults (servers evolve)."""
        return cls(
            attempt_id=data["attempt_id"],
            argv=[str(a) for a in (data.get("argv") or [])],
            task_id=data.get("task_id"),
            job_id=data.get("job_id"),
            job_name=str(data.get("job_name") or ""),
            layer=str(data.get("layer") or ""),
            frames=str(data.get("frames") or ""),
            shell=bool(data.get("shell") or False),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            cwd=data.get("cwd") or None,
            timeout_s=float(data["timeout_s"]) if data.get("timeout_s") else None,
            gpus=[int(g) for g in (data.get("gpus") or [])],
            outputs=[str(p) for p in (data.get("outputs") or [])],
            progress_patterns=list(data.get("progress_patterns") or []),
            error_patterns=list(data.get("error_patterns") or []),
        )


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
        }


def lost_report(attempt_id: Any, reason: str, log_size: int = 0) -> dict[str, Any]:
    """The report of an attempt the agent gave up without a result (shutdown, restart after a crash):
    the server requeues it without counting a try."""
    return TaskResult(attempt_id=attempt_id, status=AttemptState.LOST, exit_code=None, cpu_s=0.0,
                      peak_rss_mb=0.0, reason=reason, log_size=log_size, ended_at=utc_now_iso()).to_report()
