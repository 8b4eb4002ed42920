"""How much memory a task reserves after what its layer's attempts really used (scheduling from history).

Two rules, applied by `server/memory.py` while finish reports are written:

- an attempt ran out of memory (the agent's memory guard or the kernel's OOM killer ended it): its task's
  retry reserves `OOM_GROWTH` times the peak it reached, never less than it had;
- an attempt succeeded with a peak above what it reserved: the layer's tasks that have not started
  reserve that peak, so they are not packed onto nodes that cannot hold them.

Both are capped at the largest node known: a reservation no node has would leave the task waiting forever.
"""

from __future__ import annotations

import math

OOM_GROWTH = 1.5  # an out-of-memory retry reserves this many times the peak it reached


def _capped(want: int, current: int, largest_node_mb: int | None) -> int:
    if largest_node_mb is not None and largest_node_mb > 0:
        want = min(want, largest_node_mb)
    return max(current, want)


def memory_after_oom(current_mb: int, peak_rss_mb: float | None, largest_node_mb: int | None) -> int:
    """The reservation of an out-of-memory task's retry: max(current, ceil(1.5 x peak)), capped at the
    largest node (but never below what it had)."""
    return _capped(math.ceil(OOM_GROWTH * (peak_rss_mb or 0.0)), current_mb, largest_node_mb)


def memory_after_peak(reserved_mb: int, peak_rss_mb: float | None, largest_node_mb: int | None) -> int | None:
    """What a layer's not-started tasks should reserve after one of its tasks succeeded with this peak:
    the peak rounded up (capped at the largest node), or None when the reservation held it (the cheap,
    common case: nothing to write)."""
    if peak_rss_mb is None or peak_rss_mb <= reserved_mb:
        return None
    want = _capped(math.ceil(peak_rss_mb), reserved_mb, largest_node_mb)
    return want if want > reserved_mb else None
