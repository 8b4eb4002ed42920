"""Wake-ups for agents waiting in a long poll, so work starts without a polling delay.

Two kinds of news: "tasks became ready" wakes as many waiting agents as there are new tasks (oldest
waiters first), and "something changed for node N" (a task of it ended, a kill was asked) wakes that
node's waiter. A woken agent that finds nothing passes the wake-up on to the next waiter, so a task
that only some nodes can run still reaches one of them. Wake-ups may come from worker threads; the
asyncio side is touched only through `call_soon_threadsafe`. News that concerns other server processes
on the same PostgreSQL goes to them too, through `relay` (server/peers.py); what they send back comes in
with `relay=False`.

Between two long polls of one agent nobody waits, so a poll that carries an idle agent's heartbeat
looks first, in a read, for what came in the gap. Most of those looks find nothing (an idle farm:
5,000 agents, one look per agent per 20 s, were a third of the server's work), so the notifier counts
the news it is told (`news_mark`) and remembers the count at each node's last fruitless look
(`looked`): when nothing was announced since, the look is skipped (`news_since_look`). What nobody
announces (a cap raised, a blocklist cleared) is found by the server's periodic look for all waiting
agents (`agents.look_for_news`), as it is for an agent that waits.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Protocol


class Relay(Protocol):
    """Where wake-ups go for the other server processes (`peers.PeerNews`)."""

    def tasks_ready(self, count: int) -> None: ...

    def node_changed(self, node_id: int) -> None: ...


class Waiter:
    def __init__(self, node_id: int, loop: asyncio.AbstractEventLoop, ahead: int = 0) -> None:
        self.node_id = node_id
        self.event = asyncio.Event()
        self.loop = loop
        self.hops = 0   # how many more waiters a fruitless wake-up may pass on to
        self.ahead = ahead  # cores' worth of tasks its agent keeps waiting (`WorkAsk.ahead`)


class Notifier:
    def __init__(self) -> None:
        self._waiters: "OrderedDict[int, Waiter]" = OrderedDict()  # by id(waiter), oldest first
        self._by_node: dict[int, Waiter] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay: Relay | None = None
        self.closing = False  # the server is stopping: long polls answer at once
        self._ready_news = 0  # how many times tasks became ready (any thread; only compared for change)
        self._node_news: dict[int, int] = {}  # per node, how many times something changed for it
        self._looked: dict[int, tuple[int, int]] = {}  # per node, `news_mark` at its last fruitless look

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- called from the event loop -------------------------------------------------------
    def register(self, node_id: int, ahead: int = 0) -> Waiter:
        loop = asyncio.get_running_loop()
        self._loop = loop
        waiter = Waiter(node_id, loop, ahead)
        self._waiters[id(waiter)] = waiter
        self._by_node[node_id] = waiter
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        self._waiters.pop(id(waiter), None)
        if self._by_node.get(waiter.node_id) is waiter:
            del self._by_node[waiter.node_id]

    def close(self) -> None:
        """The server is stopping: wake every waiting long poll (and `closing` answers later ones at
        once), so that no request is left for uvicorn's graceful stop to cancel."""
        self.closing = True
        for waiter in self._waiters.values():
            waiter.hops = 0
            waiter.event.set()

    def pass_on(self, hops: int) -> None:
        """A woken agent found nothing: give the wake-up to the next waiter."""
        if hops > 0:
            self._wake_oldest(1, hops - 1)

    # -- callable from any thread ---------------------------------------------------------
    def tasks_ready(self, count: int = 1, *, relay: bool = True) -> None:
        self._ready_news += 1
        self._call(self._wake_oldest, max(count, 1), None)
        if relay and self.relay is not None:
            self.relay.tasks_ready(count)

    def node_changed(self, node_id: int, *, relay: bool = True) -> None:
        """Wake this node's agent; `relay=False` when only an agent waiting here can care (the news
        came from this process's own look, or from another process)."""
        self._node_news[node_id] = self._node_news.get(node_id, 0) + 1
        self._call(self._wake_node, node_id)
        if relay and self.relay is not None:
            self.relay.node_changed(node_id)

    def _call(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _wake_oldest(self, count: int, hops: int | None) -> None:
        idle = [w for w in self._waiters.values() if not w.event.is_set()]
        if hops is None:
            hops = len(idle)
        for waiter in idle[:count]:
            waiter.hops = hops
            waiter.event.set()

    def _wake_node(self, node_id: int) -> None:
        waiter = self._by_node.get(node_id)
        if waiter is not None:
            waiter.hops = 0
            waiter.event.set()

    def news_mark(self, node_id: int) -> tuple[int, int]:
        """How much news there was so far, for this node and for all: read it before a look, and give
        it to `looked` when the look found nothing."""
        return self._ready_news, self._node_news.get(node_id, 0)

    def looked(self, node_id: int, mark: tuple[int, int] | None) -> None:
        """This node's look, begun at `mark`, found nothing (None: it found something, or its facts
        changed: its next poll looks whatever was announced)."""
        if mark is None:
            self._looked.pop(node_id, None)
        else:
            self._looked[node_id] = mark

    def news_since_look(self, node_id: int) -> bool:
        """Whether anything was announced for this node or for all since its last fruitless look
        (True when it has not looked yet)."""
        return self._looked.get(node_id) != self.news_mark(node_id)

    def idle_nodes(self) -> list[int]:
        """Nodes whose agent waits in a long poll and has not been woken (call from the event loop)."""
        return [node_id for node_id, waiter in self._by_node.items() if not waiter.event.is_set()]

    def ahead_of(self, node_ids: list[int]) -> dict[int, int]:
        """Of these waiting nodes, those whose agent keeps tasks waiting, with how many cores' worth."""
        return {n: w.ahead for n in node_ids if (w := self._by_node.get(n)) is not None and w.ahead}

    @property
    def waiting(self) -> int:
        return len(self._waiters)
