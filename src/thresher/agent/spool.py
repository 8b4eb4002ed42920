"""The agent's on-disk memory: finished-attempt reports not yet accepted, and attempts running now.

Rule 2 of the design: a finished attempt's report and its log survive a crash of the agent, of the
server, or a network cut. So a report is written here (atomically: temp file, fsync, rename) before
anyone tries to send it, and removed only once the server accepted it. The running records let an
agent that restarts after a crash find the process trees it left behind, end them and report them
as `lost` instead of leaving orphans rendering for nobody.

Layout under the state folder::

    spool/<attempt_id>.json     a report for POST /agent/finish
    running/<attempt_id>.json   {"attempt_id", "pid", "pgid", "create_time", "started_at", "cgroup",
                                 "checks": {...}, "exit": {...} once the child was reaped}
    logs/<attempt_id>.log       the attempt's output, UTF-8
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_key(attempt_id: Any) -> str:
    """A file-name-safe key for an attempt id (ids are ints or strings; never trust them as paths)."""
    key = _SAFE.sub("_", str(attempt_id))
    return key if key not in ("", ".", "..") else f"_{key}"


def write_json_atomic(path: Path, data: Any, mode: int = 0o644, *, durable: bool = False) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one.

    The rename alone survives a crash of the agent (the page cache outlives the process). `durable`
    adds fsyncs so the file also survives a power cut; reports and running records do not need that
    (after a power cut the server declares the node's attempts lost and reruns them), and skipping
    it keeps short tasks cheap."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except FileNotFoundError:  # the folder is made once, not checked on every write (a task writes 4)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("unreadable state file %s (%s): moving it aside", path, exc)
        try:
            os.replace(path, path.with_name(path.name + ".bad"))
        except OSError:
            pass
        return None


class Spool:
    """Reports waiting for the server, and records of running attempts, in one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.spool_dir = self.state_dir / "spool"
        self.running_dir = self.state_dir / "running"
        self.logs_dir = self.state_dir / "logs"
        for d in (self.spool_dir, self.running_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- logs --

    def log_path(self, attempt_id: Any) -> Path:
        return self.logs_dir / f"{file_key(attempt_id)}.log"

    def remove_log(self, attempt_id: Any) -> None:
        """The server holds the whole log once it accepted the report; the local copy can go."""
        try:
            self.log_path(attempt_id).unlink()
        except FileNotFoundError:
            pass

    # -- finish reports --

    def put_report(self, report: dict[str, Any]) -> None:
        """Persist a finish report before trying to deliver it."""
        write_json_atomic(self.spool_dir / f"{file_key(report['attempt_id'])}.json", report)

    def pending(self) -> list[dict[str, Any]]:
        """Reports not yet accepted, oldest first."""
        with self._lock:
            entries = []
            for path in self.spool_dir.glob("*.json"):
                try:
                    entries.append((path.stat().st_mtime, path))
                except FileNotFoundError:
                    continue
            entries.sort()
        reports = []
        for _, path in entries:
            data = _read_json(path)
            if isinstance(data, dict) and "attempt_id" in data:
                reports.append(data)
        return reports

    def pending_ids(self) -> list[Any]:
        return [r["attempt_id"] for r in self.pending()]

    def remove_report(self, attempt_id: Any) -> None:
        try:
            (self.spool_dir / f"{file_key(attempt_id)}.json").unlink()
        except FileNotFoundError:
            pass

    # -- running attempts --

    def mark_running(self, attempt_id: Any, pid: int, pgid: int, create_time: float,
                     started_at: str, **extra: Any) -> None:
        """The record of a running attempt; `extra`: its cgroup, what its checks need, its exit."""
        write_json_atomic(self.running_dir / f"{file_key(attempt_id)}.json", {
            **extra, "attempt_id": attempt_id, "pid": pid, "pgid": pgid, "create_time": create_time,
            "started_at": started_at,
        })

    def clear_running(self, attempt_id: Any) -> None:
        try:
            (self.running_dir / f"{file_key(attempt_id)}.json").unlink()
        except FileNotFoundError:
            pass

    def running_records(self) -> list[dict[str, Any]]:
        """Records of attempts a previous agent run started and never finished."""
        records = []
        for path in sorted(self.running_dir.glob("*.json")):
            data = _read_json(path)
            if isinstance(data, dict) and "attempt_id" in data:
                records.append(data)
        return records
