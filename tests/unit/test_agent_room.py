"""The agent's room for tasks kept waiting (`agent/room.py`): real threads, each entering as a runner
thread does; what they may run at once, in which order, and a kill while waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from thresher.agent.room import Room, Ticket

tickets: dict[str, Ticket | None] = {}  # what each thread's `enter` gave it


def _enter_in_thread(room: Room, name: str, cores: int, memory_mb: int, log: list[str],
                     given_up: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        ticket = room.enter(cores, memory_mb, given_up.is_set if given_up else lambda: False)
        log.append(f"{name} {'in' if ticket else 'gave up'}")
        tickets[name] = ticket

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_waiting_tasks_start_in_their_order_as_room_frees() -> None:
    room = Room(cores=2, memory_mb=4000)
    log: list[str] = []
    one, two = room.enter(1, 1000, lambda: False), room.enter(1, 1000, lambda: False)  # the node is full
    assert one and two
    first = _enter_in_thread(room, "a", 1, 1000, log)
    _until(lambda: room.waiting() == 1)
    second = _enter_in_thread(room, "b", 1, 1000, log)
    _until(lambda: room.waiting() == 2)
    time.sleep(0.05)
    assert log == []  # nothing starts while the node is full
    room.leave(one)
    room.leave(one)  # once only: at the exit, and again when the runner ends
    first.join(5)
    assert log == ["a in"] and room.waiting() == 1  # the first in line, and only it
    room.leave(two)
    second.join(5)
    assert log == ["a in", "b in"]


def test_a_big_task_first_in_line_keeps_its_turn_and_memory_counts() -> None:
    room = Room(cores=4, memory_mb=8000)
    log: list[str] = []
    small_first = room.enter(1, 1000, lambda: False)
    assert small_first
    big = _enter_in_thread(room, "big", 4, 1000, log)  # needs the whole node
    _until(lambda: room.waiting() == 1)
    small = _enter_in_thread(room, "small", 1, 1000, log)  # would fit, but comes after
    _until(lambda: room.waiting() == 2)
    time.sleep(0.05)
    assert log == []
    room.leave(small_first)
    big.join(5)
    assert log == ["big in"]
    big_ticket = tickets["big"]
    assert big_ticket is not None
    room.leave(big_ticket)
    small.join(5)
    assert log == ["big in", "small in"]

    hungry = Room(cores=4, memory_mb=2000)
    assert hungry.enter(1, 1500, lambda: False)
    assert not hungry._fits(1, 1000)  # cores to spare, memory not
    assert hungry._fits(1, 500)


def test_a_task_larger_than_the_node_starts_when_it_is_empty() -> None:
    room = Room(cores=2, memory_mb=1000)
    huge = room.enter(8, 64_000, lambda: False)  # nothing runs: it starts rather than wait forever
    assert huge
    room.leave(huge)
    assert room.enter(1, 0, lambda: False)


def test_a_task_killed_while_it_waits_takes_no_room_and_lets_the_next_one_in() -> None:
    room = Room(cores=1, memory_mb=1000)
    log: list[str] = []
    running = room.enter(1, 100, lambda: False)
    assert running
    killed = threading.Event()
    doomed = _enter_in_thread(room, "doomed", 1, 100, log, given_up=killed)
    _until(lambda: room.waiting() == 1)
    after = _enter_in_thread(room, "after", 1, 100, log)
    _until(lambda: room.waiting() == 2)
    killed.set()
    room.wake()
    doomed.join(5)
    assert log == ["doomed gave up"] and room.waiting() == 1 and tickets["doomed"] is None
    room.leave(running)
    after.join(5)
    assert log == ["doomed gave up", "after in"]
