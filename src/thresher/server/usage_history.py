"""The usage counters sampled over time (`usage_history`): what each project ran in the last hours, for
the projects page's charts and `GET /projects/{name}/usage`.

The housekeeping loop (`housekeeping.usage_history_loop`) copies the counters into the history every
`usage_sample_s` with one INSERT ... SELECT, so a farm with thousands of counters costs one statement per
sample and no rows through Python. Only counters in use are copied, and every project's own counter
(its series is the time line the others are read against): most folders, stakes and limits are at zero
most of the time, and their zeros are implied. Samples older than `usage_history_keep_s` are deleted,
at most every PRUNE_EVERY_S: the delete by age scans the table, so it runs seldom rather than per sample.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from thresher.model.dispatch_rule import folder_key, project_key, stake_key
from thresher.server import studio
from thresher.server.clock import as_utc, utcnow
from thresher.server.db.queries import studio as q
from thresher.server.studio_admin import get_project
from thresher.wire.studio import ProjectUsage, UsagePoint, UsageSeries

PRUNE_EVERY_S = 600.0


def sample(conn: Connection, now: datetime | None = None) -> int:
    """One sample of the counters in use (and of every project's own) at `now`: rows written."""
    return int(conn.execute(q.SAMPLE_USAGE, {"at": now or utcnow()}).rowcount or 0)


def prune(conn: Connection, keep_s: float, now: datetime | None = None) -> int:
    """Samples older than `keep_s` deleted: how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=keep_s)
    return int(conn.execute(q.PRUNE_USAGE_HISTORY, {"cutoff": cutoff}).rowcount or 0)


def samples(conn: Connection, keys: list[str], since: datetime) -> dict[str, list[Any]]:
    """The stored samples of these keys since `since`, by key, oldest first."""
    out: dict[str, list[Any]] = {key: [] for key in keys}
    if keys:
        for row in conn.execute(q.USAGE_HISTORY_OF, {"keys": keys, "since": since}):
            out[row.key].append(row)
    return out


def _at(row: Any) -> datetime:
    moment = as_utc(row.at)
    assert moment is not None  # the column is not null
    return moment


def project_usage(conn: Connection, name: str, since: datetime | None, sample_s: float) -> ProjectUsage:
    """A project's own counter, its counter in each pool and each of its folders' since `since` (an hour
    ago when none), zeros filled in at the times of the project's own samples."""
    project = get_project(conn, name)
    start = as_utc(since) or utcnow() - timedelta(hours=1)
    named = [(project_key(project.id), "project", project.name)]
    named += [(stake_key(project.id, pool), "pool", pool) for pool in studio.pool_names(conn)]
    named += [(folder_key(f.id), "folder", f.name) for f in project.folders]
    found = samples(conn, [key for key, _, _ in named], start)
    times = [_at(r) for r in found[named[0][0]]]
    series = []
    for key, kind, label in named:
        rows = {_at(r): r for r in found[key]}
        moments = sorted(set(times) | set(rows)) if key != named[0][0] else times
        points = [UsagePoint(at=t, cores=rows[t].cores, gpus=rows[t].gpus, units=rows[t].units) if t in rows
                  else UsagePoint(at=t, cores=0, gpus=0, units=0) for t in moments]
        series.append(UsageSeries(key=key, kind=kind, name=label, points=points))
    return ProjectUsage(project=project.name, since=start, sample_s=sample_s, series=series)
