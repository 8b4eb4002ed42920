"""Out of memory: the kernel's OOM kills and the agent's own memory guard (OpenCue's host guard).

Two ways an attempt runs out of memory, both reported with `out_of_memory` so the server retries the
task with more memory (`model/memory_rule.py`):

- the kernel's OOM killer ended it: the tree died by a SIGKILL the agent did not send while the kernel's
  OOM kill counters (`oom_kill` of /proc/vmstat, and of the agent's cgroup `memory.events` where
  readable) went up (`oom_kill_count`, read before and after the attempt by `agent/runner.py`);
- the guard stopped it: the node is short of memory (less free than `memory_guard_free_mb`, or the
  running tasks together use more than the memory the node announced) and this task is the one furthest
  over its reservation. Stopping one task before the kernel picks a victim keeps the others alive (the
  kernel would kill the largest process, maybe a well-behaved render), and names the culprit.

`choose_victim` is the pure decision; `guard_loop` runs it on live samples in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import psutil

from thresher.agent.process_tree import MIB

if TYPE_CHECKING:
    from thresher.agent.attempts import Attempts

log = logging.getLogger("thresher.agent")

GUARD_SHARE = 0.05       # default floor of free memory: 5% of the node's RAM ...
GUARD_CAP_MB = 2048      # ... at most this much


@dataclass(frozen=True)
class TaskMemory:
    """One running task as the guard sees it: what it uses now and what the server reserved for it."""

    key: Any
    rss_mb: float
    reserved_mb: int


@dataclass(frozen=True)
class Victim:
    key: Any
    reason: str


def size(mb: float) -> str:
    """Memory for people: `180 MB`, `1.9 GB`."""
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def choose_victim(tasks: Sequence[TaskMemory], available_mb: float, free_floor_mb: float,
                  announced_mb: float | None) -> Victim | None:
    """The task to stop, or None. The node is short when it has less than `free_floor_mb` free, or when
    its tasks together use more than the `announced_mb` it offered the farm; then the task furthest over
    its reservation is stopped. A task within its reservation is never stopped: it asked for what it
    uses, and the shortage is someone else's (or the node's) doing."""
    if free_floor_mb <= 0 or not tasks:
        return None
    used = sum(t.rss_mb for t in tasks)
    if available_mb < free_floor_mb:
        why = f"node had {size(available_mb)} free"
    elif announced_mb is not None and used > announced_mb:
        why = f"tasks used {size(used)} of the {size(announced_mb)} the node offers"
    else:
        return None
    over = [t for t in tasks if t.reserved_mb > 0 and t.rss_mb > t.reserved_mb]  # 0: an older server's, unknown
    if not over:
        return None
    worst = max(over, key=lambda t: t.rss_mb - t.reserved_mb)
    return Victim(worst.key, f"out of memory: used {size(worst.rss_mb)} of {size(worst.reserved_mb)} reserved; {why}")


def free_floor_mb(setting: int | None, total_mb: float) -> float:
    """The guard's floor: the setting, or 5% of RAM capped at 2 GB when not set; 0 is off."""
    if setting is not None:
        return float(setting)
    return min(total_mb * GUARD_SHARE, GUARD_CAP_MB)


def oom_kill_count() -> int:
    """The kernel's OOM kills so far, system-wide plus the agent's cgroup (cgroup v2); best effort: an
    unreadable counter counts 0, and only the difference across an attempt matters."""
    total = 0
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                total += int(line.split()[1])
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                events = Path("/sys/fs/cgroup") / line[3:].strip().lstrip("/") / "memory.events"
                for entry in events.read_text().splitlines():
                    if entry.startswith("oom_kill "):
                        total += int(entry.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return total


def guard_loop(attempts: "Attempts", floor_mb: float, announced_mb: float | None, period_s: float,
               stop: threading.Event) -> None:
    """Every `period_s`, stop the running task the node is short of memory for (one at a time: while a
    stopped task is still dying, its memory is not free yet and nothing else is judged)."""
    while not stop.wait(period_s):
        try:
            runners = attempts.running()
            if any(r.out_of_memory and not r.finished.is_set() for r in runners):
                continue
            samples = [TaskMemory(r.assignment.attempt_id, r.rss_mb, r.assignment.memory_mb)
                       for r in runners if not r.kill_requested]
            victim = choose_victim(samples, psutil.virtual_memory().available / MIB, floor_mb, announced_mb)
            if victim is not None:
                log.warning("attempt %s: %s; stopping it", victim.key, victim.reason)
                attempts.stop_out_of_memory(victim.key, victim.reason)
        except Exception:  # noqa: BLE001 - the guard must outlive a bad sample
            log.exception("memory guard failed")
