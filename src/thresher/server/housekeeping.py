"""What the server does on its own, on a clock: nodes that went silent, waiting agents with news, jobs
left stuck by a crash, planner statistics, samples of the usage counters, retention (the audit log's too). One loop each, started with
the app (`app.create_app`). Of several server processes on one PostgreSQL only the leader does the farm's
chores (`leads`); each looks for news for its own waiting agents."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from fastapi.concurrency import run_in_threadpool

from thresher.server import audit, dispatch, lifecycle, nodes, retention, usage_history
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext
from thresher.server.db import statistics

log = logging.getLogger("thresher.server")

# Nodes looked at per statement by `look_for_news` (an id list that any database takes).
NEWS_CHUNK = 1000


async def leads(server: ServerContext) -> bool:
    """Whether this process does the farm's chores now (server/leader.py): of several processes on one
    PostgreSQL, one does; the others look for news for their own agents only."""
    try:
        return await run_in_threadpool(server.leader.check)
    except Exception:  # a failed check is a round skipped, never a loop stopped
        log.exception("checking the housekeeping lock failed")
        return False


def declare_down_nodes(server: ServerContext) -> int:
    """Nodes silent for longer than the timeout go down; their running tasks go back to ready.
    After a server restart every node gets a full timeout to show up again."""
    now = utcnow()
    startup = now - timedelta(seconds=time.time() - server.started_at)
    cutoff = now - timedelta(seconds=server.settings.node_timeout_s)
    if startup > cutoff:
        return 0
    with server.db.write() as conn:
        down, changes = nodes.declare_down(conn, cutoff, now, server.settings.task_max_losses)
    server.announce(changes)
    return down


async def look_for_news(server: ServerContext) -> int:
    """Wake every waiting agent for which work or a kill is there that no wake-up announced (another
    server process made it, or a wake was missed): one read for up to NEWS_CHUNK waiting nodes, instead
    of each long poll looking for itself. Returns how many were woken."""
    idle = server.notifier.idle_nodes()
    woken = 0
    for start in range(0, len(idle), NEWS_CHUNK):
        chunk = idle[start:start + NEWS_CHUNK]
        ahead = server.notifier.ahead_of(chunk)

        def read(ids: list[int] = chunk, ahead: dict[int, int] = ahead) -> set[int]:
            with server.db.peek() as conn:
                return dispatch.nodes_with_news(conn, ids, server.dispatch_limits, ahead)

        for node_id in await run_in_threadpool(read):
            server.notifier.node_changed(node_id, relay=False)  # its agent waits here
            woken += 1
    return woken


async def liveness_loop(server: ServerContext) -> None:
    """Silent nodes, planner statistics and stuck jobs, a few times per node timeout."""
    interval = max(0.2, min(2.0, server.settings.node_timeout_s / 4))
    while True:
        await asyncio.sleep(interval)
        if not await leads(server):
            continue
        try:
            down = await run_in_threadpool(declare_down_nodes, server)
            if down:
                log.warning("%d node(s) stopped answering and were marked down", down)
        except Exception:  # keep checking; one bad round must not stop liveness for good
            log.exception("liveness check failed")
        try:
            if await run_in_threadpool(statistics.refresh_if_stale, server.db, server.settings):
                log.info("refreshed the planner statistics of the tasks table")
        except Exception:
            log.exception("refreshing planner statistics failed")
        try:  # running jobs with nothing left to run: a crash came between a report and the check after it
            if stuck := await server.rederive_jobs(lifecycle.stuck_jobs):
                log.info("derived the state of %d stuck job(s) again", stuck)
        except Exception:
            log.exception("deriving stuck jobs again failed")


async def news_loop(server: ServerContext) -> None:
    """Every `news_recheck_s`, one look for all waiting agents at once (see `look_for_news`)."""
    while True:
        await asyncio.sleep(server.settings.news_recheck_s)
        try:
            await look_for_news(server)
        except Exception:  # keep looking; one bad round must not leave agents waiting for good
            log.exception("looking for work for waiting agents failed")


def record_usage(server: ServerContext, prune: bool) -> tuple[int, int]:
    """One sample of the usage counters, and the samples past `usage_history_keep_s` deleted when
    `prune`: (rows written, rows deleted). See `server/usage_history.py`."""
    with server.db.write() as conn:
        written = usage_history.sample(conn)
        pruned = usage_history.prune(conn, server.settings.usage_history_keep_s) if prune else 0
    return written, pruned


async def usage_history_loop(server: ServerContext) -> None:
    """Every `usage_sample_s`, the usage counters into `usage_history`; old samples out, now and then."""
    pruned_at = 0.0
    while True:
        await asyncio.sleep(server.settings.usage_sample_s)
        if not await leads(server):
            continue
        now = time.monotonic()
        prune = now - pruned_at >= usage_history.PRUNE_EVERY_S
        try:
            await run_in_threadpool(record_usage, server, prune)
            if prune:
                pruned_at = now
        except Exception:  # keep sampling; one bad round leaves one gap in the charts
            log.exception("sampling the usage counters failed")


def retention_pass(server: ServerContext) -> tuple[int, int]:
    """One bounded pass of the retention settings (`server/retention.py`): (archived, deleted)."""
    settings = server.settings
    with server.db.write() as conn:
        archived, deleted = retention.retention_pass(conn, settings.archive_after_days,
                                                     settings.delete_archived_after_days, utcnow())
    return archived, deleted


async def retention_loop(server: ServerContext) -> None:
    """Every `retention_every_s` a pass of at most `retention.BATCH` jobs each way; a full batch means
    a backlog, so the next pass follows after a second (other writers get the database in between)."""
    while True:
        if not await leads(server):
            await asyncio.sleep(server.settings.retention_every_s)
            continue
        try:
            archived, deleted = await run_in_threadpool(retention_pass, server)
            if archived or deleted:
                log.info("retention: archived %d job(s), deleted %d", archived, deleted)
            pruned = await run_in_threadpool(audit.prune, server.db, server.settings.audit_keep_days, utcnow())
            backlog = max(archived, deleted) >= retention.BATCH or pruned >= audit.PRUNE_BATCH
        except Exception:  # keep going; a failed pass is tried again next time
            log.exception("a retention pass failed")
            backlog = False
        await asyncio.sleep(1.0 if backlog else server.settings.retention_every_s)
