"""The node's own cores and memory, for an agent that keeps tasks waiting (`tasks_ahead`).

Such an agent asks the server for more than it can run now (`fit.node_free`'s `ahead_cores`): the
tasks past its room wait here, in the order they came, and each starts the moment the tasks before it
leave room enough. A short task's slot then never waits for the round trip to the server (report,
commit, next assignment): the next task is already on the node. Attempts with `cores` or `memory_mb`
0 (unknown) count as one core and no memory. A task larger than the whole node (the server does not
send one) starts when the node is empty, so nothing waits forever.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

_LOOK_AGAIN_S = 0.1


class Room:
    """Thread-safe: runner threads `enter` (blocking) and `leave`; a kill `wake`s the waiters."""

    def __init__(self, cores: int, memory_mb: int) -> None:
        self.cores = max(cores, 1)
        self.memory_mb = max(memory_mb, 0)
        self._used_cores = 0
        self._used_memory = 0
        self._running = 0
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()

    def _fits(self, cores: int, memory_mb: int) -> bool:
        if self._running == 0:
            return True
        return (self._used_cores + cores <= self.cores
                and (not self.memory_mb or self._used_memory + memory_mb <= self.memory_mb))

    def enter(self, cores: int, memory_mb: int, given_up: Callable[[], bool]) -> bool:
        """Wait for this task's turn and room, and take the room: True. False when `given_up()` turned
        true first (the attempt was killed while it waited): it takes nothing."""
        cores = max(cores, 1)
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while not given_up():
                    if self._queue[0] is ticket and self._fits(cores, memory_mb):
                        self._used_cores += cores
                        self._used_memory += memory_mb
                        self._running += 1
                        return True
                    self._cond.wait(_LOOK_AGAIN_S)  # a kill wakes it; a shutdown's is seen within this
                return False
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now

    def leave(self, cores: int, memory_mb: int) -> None:
        """A task that entered has ended: its room is free for those waiting."""
        with self._cond:
            self._used_cores -= max(cores, 1)
            self._used_memory -= memory_mb
            self._running -= 1
            self._cond.notify_all()

    def wake(self) -> None:
        """Make every waiter look again (one of them may have been given up)."""
        with self._cond:
            self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)
