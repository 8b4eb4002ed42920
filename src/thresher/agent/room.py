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


class Ticket:
    """One task's place in line, then the room it holds: `look` is set when it is given its room
    (`given`), or woken to check whether it was given up; `left` once it gave the room back."""

    def __init__(self, cores: int, memory_mb: int) -> None:
        self.cores = max(cores, 1)
        self.memory_mb = memory_mb
        self.given = False
        self.left = False
        self.look = threading.Event()


class Room:
    """Thread-safe: runner threads `enter` (blocking) and `leave`; a kill `wake`s the waiters. Only the
    first in line is ever woken to start (a freed core does not wake every waiting thread)."""

    def __init__(self, cores: int, memory_mb: int) -> None:
        self.cores = max(cores, 1)
        self.memory_mb = max(memory_mb, 0)
        self._used_cores = 0
        self._used_memory = 0
        self._running = 0
        self._queue: deque[Ticket] = deque()
        self._lock = threading.Lock()

    def _fits(self, cores: int, memory_mb: int) -> bool:
        if self._running == 0:
            return True
        return (self._used_cores + cores <= self.cores
                and (not self.memory_mb or self._used_memory + memory_mb <= self.memory_mb))

    def _advance(self) -> None:
        """(lock held) Give room to the first in line while it fits."""
        while self._queue and self._fits(self._queue[0].cores, self._queue[0].memory_mb):
            ticket = self._queue.popleft()
            self._used_cores += ticket.cores
            self._used_memory += ticket.memory_mb
            self._running += 1
            ticket.given = True
            ticket.look.set()

    def enter(self, cores: int, memory_mb: int, given_up: Callable[[], bool]) -> Ticket | None:
        """Wait for this task's turn and room, and take the room: its ticket, to `leave` with. None when
        `given_up()` turned true first (the attempt was killed while it waited): it takes nothing."""
        ticket = Ticket(cores, memory_mb)
        with self._lock:
            self._queue.append(ticket)
            self._advance()
        while True:
            ticket.look.wait(_LOOK_AGAIN_S)
            with self._lock:
                if ticket.given:  # (if it was killed meanwhile, the runner says so without starting it)
                    return ticket
                if given_up():
                    self._queue.remove(ticket)
                    self._advance()  # the next in line may fit now
                    return None
                ticket.look.clear()

    def leave(self, ticket: Ticket) -> None:
        """A task that entered has ended: its room is free for those waiting (once, however often called:
        at its exit, and again when its runner ends)."""
        with self._lock:
            if ticket.left:
                return
            ticket.left = True
            self._used_cores -= ticket.cores
            self._used_memory -= ticket.memory_mb
            self._running -= 1
            self._advance()

    def wake(self) -> None:
        """A waiting task may have been given up (killed): every waiter looks."""
        with self._lock:
            for ticket in self._queue:
                ticket.look.set()

    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)
