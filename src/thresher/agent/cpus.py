"""CPU pinning (`pin_cpus`, off by default): each task runs on CPUs of its own, as many as it reserved.

The thread variables and the templates' thread flags already tell a task how many threads to run; pinning
also keeps a task that ignores them (a renderer that starts one thread per CPU it sees) within its share,
and keeps two concurrent tasks off each other's CPUs. Linux only (`os.sched_setaffinity`); elsewhere, and
when the free CPUs are fewer than the task reserved (the agent offers more cores than the machine has),
the task runs unpinned rather than crowded onto too few CPUs.

The allocator hands out the lowest-numbered free CPUs of those the agent itself may run on, and takes
them back when the task ends; the child pins itself between fork and exec (`agent/child.py`).
"""

from __future__ import annotations

import os
import threading


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order; empty where the OS cannot pin (not Linux)."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return []
    try:
        return sorted(os.sched_getaffinity(0))
    except OSError:
        return []


class CpuAllocator:
    """Distinct CPUs for concurrent tasks; safe to call from the attempts' threads."""

    def __init__(self, cpus: list[int]) -> None:
        self._free = sorted(set(cpus))
        self._held: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def take(self, attempt_id: int, cores: int) -> list[int] | None:
        """`cores` free CPUs for an attempt (the same ones if it already holds some), or None when there
        are not that many free or it reserved none."""
        with self._lock:
            if attempt_id in self._held:
                return list(self._held[attempt_id])
            if cores < 1 or cores > len(self._free):
                return None
            taken, self._free = self._free[:cores], self._free[cores:]
            self._held[attempt_id] = taken
            return list(taken)

    def give_back(self, attempt_id: int) -> None:
        """The attempt ended: its CPUs are free again (nothing when it held none)."""
        with self._lock:
            self._free = sorted(self._free + self._held.pop(attempt_id, []))

    def free(self) -> list[int]:
        with self._lock:
            return list(self._free)
