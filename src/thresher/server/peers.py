"""News between server processes on one PostgreSQL database: LISTEN/NOTIFY.

Each process wakes its own waiting agents (`notify.Notifier`) and tells its own dashboards
(`events.EventHub`). Behind a load balancer, the agent waiting on server B for work that a submit
through server A made, or for a kill asked through A, would only hear of it at B's next periodic look
(`news_recheck_s`), and B's dashboards would not see A's new job at all. So every process also sends
what it announces to the others as a PostgreSQL notification, and hands what it hears from them to its
own notifier and event hub.

Sending never waits on the database: callers (any thread, the hot agent path included) add counts and
ids to an outbox; one sender thread sends what gathered, as a few notifications, at most every
`FLUSH_S`. One listener thread holds a connection that LISTENs. Both have their own connection
outside the pool and reconnect when it breaks (a missed notification costs a delay, never work: the
periodic look for news and the dashboards' rechecks still cover it). A process ignores its own news.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("thresher.server.peers")

CHANNEL = "thresher_news"
FLUSH_S = 0.005          # the sender gathers news this long at most before sending it
IDS_PER_MESSAGE = 150    # ids of one kind per notification: PostgreSQL takes at most 8,000 bytes
RETRY_S = 1.0            # wait before reconnecting a broken connection
EVENT_KINDS = ("jobs", "attempts", "nodes", "logs")


def libpq_url(url: str) -> str:
    """The conninfo psycopg takes, from the server's SQLAlchemy URL (`postgresql+psycopg://...`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class News:
    """What one process tells the others: tasks became ready (how many), nodes to wake (a kill, a task of
    theirs ended), and the ids its dashboards were told changed."""

    ready: int = 0
    wake: set[int] = field(default_factory=set)
    events: dict[str, set[int]] = field(default_factory=lambda: {kind: set() for kind in EVENT_KINDS})
    new_job: bool = False

    def __bool__(self) -> bool:
        return bool(self.ready or self.wake or self.new_job or any(self.events.values()))

    def messages(self, origin: str) -> list[str]:
        """The notifications' payloads: the ids cut into slices that fit in one each."""
        wake = sorted(self.wake)
        events = {kind: sorted(ids) for kind, ids in self.events.items()}
        out: list[str] = []
        start = 0
        while True:
            end = start + IDS_PER_MESSAGE
            part: dict[str, Any] = {"o": origin, "w": wake[start:end],
                                    "e": {kind: ids[start:end] for kind, ids in events.items() if ids[start:end]}}
            if start == 0:
                part.update(r=self.ready, j=self.new_job)
            out.append(json.dumps(part, separators=(",", ":")))
            start = end
            if start >= max([len(wake), *map(len, events.values())]):
                return out

    @classmethod
    def parse(cls, payload: str) -> tuple[str, News]:
        """The sender and its news, from one payload (`messages`). Raises ValueError if it is not one."""
        data = json.loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("o"), str):
            raise ValueError("not a Thresher news payload")
        news = cls(ready=int(data.get("r", 0)), wake={int(n) for n in data.get("w", [])}, new_job=bool(data.get("j")))
        for kind, ids in (data.get("e") or {}).items():
            if kind in news.events:
                news.events[kind].update(int(i) for i in ids)
        return data["o"], news


class PeerNews:
    """The outbox and the two threads (see the module's text). `on_news` runs on the listener thread."""

    def __init__(self, db_url: str, on_news: Callable[[News], None]) -> None:
        self.conninfo = libpq_url(db_url)
        self.on_news = on_news
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.sent = 0                   # notifications sent and heard from others (tests, benches)
        self.heard = 0
        self._outbox = News()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()  # set once the listener's LISTEN is in place

    # -- producers (any thread; cheap) -----------------------------------------------------
    def tasks_ready(self, count: int) -> None:
        with self._lock:
            self._outbox.ready += max(count, 1)
        self._wakeup.set()

    def node_changed(self, node_id: int) -> None:
        with self._lock:
            self._outbox.wake.add(int(node_id))
        self._wakeup.set()

    def published(self, *, jobs: Iterable[int] = (), attempts: Iterable[int] = (), nodes: Iterable[int] = (),
                  logs: Iterable[int] = (), new_job: bool = False) -> None:
        with self._lock:
            box = self._outbox
            for kind, ids in (("jobs", jobs), ("attempts", attempts), ("nodes", nodes), ("logs", logs)):
                box.events[kind].update(int(i) for i in ids)
            box.new_job = box.new_job or new_job
        self._wakeup.set()

    # -- the threads ---------------------------------------------------------------------------
    def start(self) -> None:
        for name, target in (("thresher-peers-send", self._send_loop), ("thresher-peers-listen", self._listen_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()
        for thread in self._threads:
            thread.join(timeout=3)

    def _take(self) -> News:
        with self._lock:
            taken, self._outbox = self._outbox, News()
        return taken

    def _send_loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stopping.is_set():
            self._wakeup.wait()
            self._wakeup.clear()
            self._stopping.wait(FLUSH_S)  # let news that comes together leave together
            news = self._take()
            if not news:
                continue
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                for payload in news.messages(self.origin):
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    self.sent += 1
            except psycopg.Error as error:
                log.warning("could not tell the other server processes what changed (%s); retrying", error)
                conn = None
                self._stopping.wait(RETRY_S)
        if conn is not None:
            conn.close()

    def _listen_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self._heard(notice.payload)
            except psycopg.Error as error:
                self.listening.clear()
                log.warning("lost the connection that hears other server processes (%s); reconnecting", error)
                self._stopping.wait(RETRY_S)

    def _heard(self, payload: str) -> None:
        try:
            origin, news = News.parse(payload)
        except (ValueError, TypeError) as error:
            log.warning("ignored a notification on %s that is not Thresher news: %s", CHANNEL, error)
            return
        if origin == self.origin:
            return
        self.heard += 1
        try:
            self.on_news(news)
        except Exception:  # one bad hand-over must not stop hearing for good
            log.exception("handing on news from another server process failed")
