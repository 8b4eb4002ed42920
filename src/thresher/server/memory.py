"""Scheduling from history, memory: what finish reports teach about the memory tasks really need.

`server/lifecycle.py` hands each batch of finish reports' memory facts to one `MemoryHistory`, in the
reports' transaction: an out-of-memory attempt's task reserves more for its retry, and a layer whose
finished task peaked above its reservation has its not-started tasks reserve that peak (one UPDATE per
layer for the whole batch). The rule of how much is `model/memory_rule.py`. Finish reports are a hot
path: nothing is read or written unless a report ran out of memory or peaked above its reservation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from thresher.model.memory_rule import memory_after_oom, memory_after_peak
from thresher.server.db.queries import reports as qr

_UNREAD = -1


@dataclass
class MemoryHistory:
    """The memory facts of one batch of finish reports."""

    layers: dict[int, int] = field(default_factory=dict)  # layer id -> memory its not-started tasks reserve
    _largest: int | None = _UNREAD

    def largest_node_mb(self, conn: Connection) -> int | None:
        """The memory of the largest node known (read once per batch, and only when needed)."""
        if self._largest == _UNREAD:
            self._largest = conn.execute(qr.LARGEST_NODE_MEMORY).scalar()
        return self._largest

    def out_of_memory(self, conn: Connection, row: Any, peak_rss_mb: float | None) -> int:
        """An attempt of this task ran out of memory: its retry reserves more. Returns the new reservation."""
        current = int(row.task_memory_mb)
        memory = memory_after_oom(current, peak_rss_mb, self.largest_node_mb(conn))
        if memory > current:
            conn.execute(qr.RAISE_TASK_MEMORY, {"b_task_id": row.task_id, "b_memory_mb": memory})
        return memory

    def succeeded(self, conn: Connection, row: Any, peak_rss_mb: float | None) -> None:
        """An attempt succeeded: note its peak for its layer when it exceeds what it reserved."""
        if peak_rss_mb is None or peak_rss_mb <= row.reserved_mb:
            return
        memory = memory_after_peak(int(row.reserved_mb), peak_rss_mb, self.largest_node_mb(conn))
        if memory is not None and memory > self.layers.get(row.layer_id, 0):
            self.layers[row.layer_id] = memory

    def write(self, conn: Connection) -> None:
        """The layers' raised reservations: one UPDATE per layer, all in one call."""
        if self.layers:
            conn.execute(qr.RAISE_LAYER_MEMORY, [{"b_layer_id": layer_id, "b_memory_mb": memory}
                                                 for layer_id, memory in sorted(self.layers.items())])
