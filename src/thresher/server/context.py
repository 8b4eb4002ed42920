"""What every request handler shares: the database, the notifier, settings and the caller's identity."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection

from thresher.model.permissions import decide
from thresher.server import auth, lifecycle
from thresher.server.audit import AuditRecorder
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.dashboard.session import COOKIE, CSRF_HEADER, SAFE_METHODS, SessionStore, csrf_ok
from thresher.server.db.batcher import WriteBatcher
from thresher.server.db.engine import Database
from thresher.server.dispatch import Limits, forget_tag_keys
from thresher.server.errors import Forbidden, Unauthorized
from thresher.server.events import EventHub
from thresher.server.leader import LeaderLock
from thresher.server.lifecycle import Changes
from thresher.server.metrics import Metrics
from thresher.server.notify import Notifier
from thresher.server.peers import News, PeerNews
from thresher.server.settings import ServerSettings

T = TypeVar("T")
log = logging.getLogger("thresher.server")

@dataclass
class ServerContext:
    db: Database
    settings: ServerSettings = field(default_factory=ServerSettings)
    notifier: Notifier = field(default_factory=Notifier)
    events: EventHub = field(default_factory=EventHub)        # the dashboard's live stream
    sessions: SessionStore = field(default_factory=SessionStore)  # dashboard login cookies
    started_at: float = field(default_factory=time.time)
    metrics: Metrics = field(default_factory=Metrics)          # `GET /metrics` (server/metrics.py)
    _token_cache: dict[str, tuple[float, Caller | None]] = field(default_factory=dict)
    batcher: WriteBatcher = field(init=False)    # group commit for the agents' hot path
    settle_checker: WriteBatcher = field(init=False)  # what reports completed, checked after their commit (reads)
    refresher: WriteBatcher = field(init=False)  # job states derived again after reports (one writer)
    dispatch_limits: Limits = field(init=False)
    audit: AuditRecorder = field(init=False)     # the audit log's buffer and writer (server/audit.py)
    leader: LeaderLock = field(init=False)       # whether this process does the farm's housekeeping
    peers: PeerNews | None = field(init=False, default=None)  # news to and from other server processes
    _settling: set["asyncio.Task[None]"] = field(default_factory=set)  # `settle_soon`'s checks under way

    def __post_init__(self) -> None:
        # Several writers on PostgreSQL: while one waits on a round trip, another works.
        self.batcher = WriteBatcher(self.db, max_batch=self.settings.write_batch_max_calls,
                                    writers=1 if self.db.is_sqlite else self.settings.postgres_writers,
                                    observe=self.metrics.batch_done)
        # After reports: the check of what they may have completed (reads only), and the derivation of the
        # jobs it names; apart, so a report that completed nothing is answered without waiting for one that did.
        self.settle_checker = WriteBatcher(self.db, max_batch=self.settings.write_batch_max_calls, name="settle-check",
                                           observe=self.metrics.batch_done, read_only=True)
        self.refresher = WriteBatcher(self.db, max_batch=self.settings.write_batch_max_calls, name="refresher",
                                      observe=self.metrics.batch_done)
        self.metrics.watch(self.db)
        self.dispatch_limits = self.settings.dispatch_limits
        self.audit = AuditRecorder(self.db)
        self.leader = LeaderLock(None if self.db.is_sqlite else self.db.url)

    def start_peers(self) -> None:
        """On PostgreSQL, exchange news with the other server processes (server/peers.py)."""
        if self.db.is_sqlite or not self.settings.peer_news or self.peers is not None:
            return
        self.peers = PeerNews(self.db.url, self._heard)
        self.notifier.relay = self.peers
        self.events.relay = self.peers
        self.peers.start()

    def stop_peers(self) -> None:
        if self.peers is not None:
            self.notifier.relay = self.events.relay = None
            self.peers.stop()
            self.peers = None
        self.leader.release()

    def _heard(self, news: News) -> None:
        """Another server process's news, for this one's waiting agents and dashboards (any thread)."""
        if news.new_job:
            # Its job may bring a tag set this process's copy lacks (`dispatch.all_tag_keys`): agents woken
            # with the old copy find nothing and sleep out their long poll. Forget it, and wake again in
            # case the job's "ready" came ahead of this, in a notification of its own.
            forget_tag_keys(self.db.engine)
        if news.ready or news.new_job:
            self.notifier.tasks_ready(max(news.ready, 1), relay=False)
        for node_id in news.wake:
            self.notifier.node_changed(node_id, relay=False)
        if news.new_job or any(news.events.values()):
            self.events.publish(**news.events, new_job=news.new_job, relay=False)

    async def rederive_jobs(self, find: Callable[[Connection], list[int]]) -> int:
        """Derive again the state of the jobs `find` names (read after whatever changed them committed)
        and wake whoever that concerns; returns how many there were."""
        def read() -> list[int]:
            with self.db.peek() as conn:
                return find(conn)

        job_ids = await run_in_threadpool(read)
        if job_ids:
            self.announce(await self.refresher.run(lambda conn: lifecycle.refresh_jobs(conn, job_ids, utcnow())))
        return len(job_ids)

    async def settle(self, touched: set[tuple[int, int]]) -> None:
        """After reports committed: derive again the jobs whose layer or whole queue they may have
        completed (see `lifecycle.unsettled_jobs`). Reports that end at the same moment are checked
        together (`settle_checker`: reads only, one statement on PostgreSQL, started after all of them
        committed); the jobs the check names are derived together by the refresher. A report waits for the
        derivation only of the jobs its own check named: derivations cost tens of statements each, and
        twenty jobs completing layers at once made every report of the moment wait for all of them."""
        if not touched:
            return
        job_ids = await self.settle_checker.run_grouped(_check_together, touched)
        if job_ids:
            self.announce(await self.refresher.run_grouped(_refresh_together, job_ids))

    def settle_soon(self, touched: set[tuple[int, int]]) -> None:
        """(event loop) `settle` without waiting for it: for a caller that answers first (a finish report
        that carries the node's next work). If the process dies before it runs, the housekeeping's look
        for stuck jobs (`lifecycle.stuck_jobs`) derives them again."""
        if touched:
            task = asyncio.get_running_loop().create_task(self.settle(touched))
            self._settling.add(task)
            task.add_done_callback(self._settled)

    def _settled(self, task: "asyncio.Task[None]") -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("checking reported jobs failed", exc_info=task.exception())

    def write(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(conn, *args)` in a write transaction; wake agents after the commit if it changed things."""
        with self.db.write() as conn:
            result = fn(conn, *args)
        changes = result[-1] if isinstance(result, tuple) and result and isinstance(result[-1], Changes) else result
        if isinstance(changes, Changes):
            self.announce(changes)
        return result

    def announce(self, changes: Changes) -> None:
        if changes.ready:
            self.notifier.tasks_ready(changes.ready)
        for node_id in changes.nodes:
            self.notifier.node_changed(node_id)
        # A job derived after its route told the dashboards (`settle_soon`, the housekeeping's stuck jobs,
        # a waiter released by another job's end) is told here, or its page would show it running for good.
        if changes.nodes or changes.jobs:
            self.events.publish(nodes=changes.nodes, jobs=changes.jobs)

    def publish(self, **changed: object) -> None:
        """Tell open dashboards what changed (ids only; see server/events/). Cheap, any thread."""
        self.events.publish(**changed)  # type: ignore[arg-type]

    def cached_caller(self, secret: str) -> Caller | None | bool:
        """The caller for a token from memory: a Caller, None (known bad), or False (not cached)."""
        cached = self._token_cache.get(secret)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        return False

    def caller_for(self, secret: str) -> Caller | None:
        """The caller for a token, from memory or the database (blocking: call from a worker thread)."""
        cached = self.cached_caller(secret)
        if cached is not False:
            return cached  # type: ignore[return-value]
        with self.db.read() as conn:
            caller = auth.lookup(conn, secret)
        # Revoking or replacing tokens, disabling a user or changing their role clears the cache of the
        # process that did it at once; other server processes notice within token_cache_s. A token
        # that expires sooner is not kept past its expiry.
        keep = self.settings.token_cache_s
        if caller is not None and caller.expires_at is not None:
            keep = min(keep, (caller.expires_at - utcnow()).total_seconds())
        self._token_cache[secret] = (time.monotonic() + keep, caller)
        return caller

    def forget_tokens(self) -> None:
        """Drop cached token lookups (after tokens were replaced). Dashboard sessions have no cache:
        every check reads their row."""
        self._token_cache.clear()


def _check_together(conn: Connection, touched: list[set[tuple[int, int]]]) -> list[set[int]]:
    """One check for the (job, layer) pairs of many reports; each report gets the jobs of its own pairs
    that must be derived again."""
    unsettled = lifecycle.unsettled_layers(conn, set().union(*touched))
    return [{job_id for job_id, layer_id in pairs if (job_id, layer_id) in unsettled} for pairs in touched]


def _refresh_together(conn: Connection, job_ids: list[set[int]]) -> list[Changes]:
    """The jobs many reports' checks named, derived once each; what changed is announced by the first."""
    changes = lifecycle.refresh_jobs(conn, set().union(*job_ids), utcnow())
    return [changes] + [Changes() for _ in job_ids[1:]]


def ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return secret.strip()


def _session_caller(request: Request) -> Caller | None:
    """A dashboard session cookie counts as the token it was made with; changes also need the CSRF header."""
    if "authorization" in request.headers or COOKIE not in request.cookies:
        return None
    session = ctx(request).sessions.check(ctx(request).db, request.cookies.get(COOKIE))
    if session is None:
        raise Unauthorized("your dashboard session expired or its token was revoked: log in again")
    if request.method not in SAFE_METHODS and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
    return session.caller


def _refusal(server: ServerContext, secret: str) -> str:
    with server.db.read() as conn:
        return auth.refusal(conn, secret)


async def current_caller(request: Request) -> Caller:
    """Who is calling. Async so that the common case (a token seen in the last minute) costs no
    worker-thread hop: on a busy farm every agent call passes here, and worker threads are what the
    database work queues for."""
    if "authorization" not in request.headers and COOKIE in request.cookies:
        session_caller = await run_in_threadpool(_session_caller, request)
        if session_caller is not None:
            request.state.caller = session_caller
            return session_caller
    server = ctx(request)
    secret = _bearer(request)
    caller = server.cached_caller(secret)
    if caller is False:
        caller = await run_in_threadpool(server.caller_for, secret)
    if caller is None:  # what happened to it (an enrollment token's reason is what its agent logs)
        raise Unauthorized(await run_in_threadpool(_refusal, server, secret))
    request.state.caller = caller
    return caller  # type: ignore[return-value]


async def require_admin(caller: Caller = Depends(current_caller)) -> Caller:
    """An admin's full token (`permits.permit("admin")` is the same check)."""
    refusal = decide(caller.who, "admin", read_only=caller.read_only)
    if refusal is not None:
        raise Forbidden(refusal.reason)
    return caller


require_admin.permission = "admin"  # type: ignore[attr-defined]  # what `permits.mark` writes into the OpenAPI document


async def current_node_id(caller: Caller = Depends(current_caller)) -> int:
    """The id of the node whose agent is calling: only a node's own token may make agent calls. One
    dependency, not two: every agent call on a busy farm resolves it."""
    if caller.kind != "node" or caller.node_id is None:
        raise Forbidden("only an agent's own node token can make this call")
    return caller.node_id


def bearer_secret(request: Request) -> str:
    return _bearer(request)


__all__ = ["ServerContext", "ctx", "current_caller", "require_admin", "current_node_id", "utcnow"]
