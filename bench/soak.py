"""A month of a small studio's work with retention on: does the database level off?

    .venv/bin/python bench/soak.py                       # 10 days, SQLite, about 4 minutes on 2 cores
    .venv/bin/python bench/soak.py --days 30             # the whole month: about 9 minutes
    .venv/bin/python bench/soak.py --db postgresql       # a private PostgreSQL server (initdb)

The server's own code, in this process, with virtual time (no HTTP, no agents): every virtual day
`--jobs-per-day` jobs of `--tasks` one-frame tasks are submitted (`submit.create_job`), `--nodes`
nodes of 8 cores take them in rounds (`dispatch.work_for_nodes`, one transaction a round, as the
write batcher makes it), each attempt appends a short log (`lifecycle.append_log`) and reports
success (`lifecycle.finish_attempts`), the virtual clock moving 60 s a round; at the end of the day
the retention passes run (`retention.retention_pass`, 500 jobs a pass, as the housekeeping loop
runs them) with `--archive-after` and `--delete-after` days. `now` is passed forward everywhere, so
jobs finish, are archived and are deleted on the virtual calendar.

Printed: each day's database size (the SQLite file, or `pg_database_size`), the rows of the big tables
and this process's memory (RSS); and the sizes at the start, the middle and the end. Retention keeps
about `delete_after + archive_after` days of job rows but only `archive_after` days of task, attempt and
log rows, so the size should stop growing once the first archived jobs are deleted. On PostgreSQL the
space of deleted rows is reused once (auto)vacuum has seen them: autovacuum visits once a minute, and
a virtual day here lasts about twenty seconds, so the file grows further before it levels off than a
farm's would. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from thresher.server import dispatch, lifecycle, retention  # noqa: E402
from thresher.server.db import statistics  # noqa: E402
from thresher.server.db.tables import attempts, jobs, log_chunks, nodes, tasks  # noqa: E402
from thresher.server.main import prepare  # noqa: E402
from thresher.server.submit import check_spec, create_job  # noqa: E402

LOG_LINE = "Fra:{frame} Mem:512M | Time:00:01.20 | Rendering 1 / 1 samples\nSaved: /render/shot/{frame}.exr\n"


def _size(db: Any, url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with db.read() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)


def _rows(db: Any) -> dict[str, int]:
    with db.read() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                for t in (jobs, tasks, attempts, log_chunks)}


def _nodes(db: Any, count: int, now: datetime) -> list[int]:
    with db.write() as conn:
        return [conn.execute(insert(nodes).values(
            name=f"n{i:03d}", hostname=f"n{i:03d}", os="linux", instance_id=f"n{i}", cores=8, memory_mb=64000, gpus=[],
            tags=[], state="up", admin_state="enabled", last_seen=now, registered_at=now)).inserted_primary_key[0]
            for i in range(count)]


def _day(server: Any, node_ids: list[int], day: int, now: datetime, args: argparse.Namespace) -> datetime:
    """One virtual day: submit, run everything, then the retention passes. Returns the next day's start."""
    start = now
    spec = check_spec({"name": "soak", "project": "studio", "layers": [
        {"name": "render", "frames": f"1-{args.tasks}", "resources": {"cores": 1, "memory_mb": 256},
         "args": {"command": ["true"]}}]})
    with server.db.write() as conn:
        for _ in range(args.jobs_per_day):
            create_job(conn, spec, "soak", create_projects=True)
    while True:
        with server.db.write() as conn:
            answers = dispatch.work_for_nodes(conn, node_ids, now)
        now += timedelta(seconds=60)
        if not any(a.assignments for a in answers):
            break
        statistics.refresh_if_stale(server.db, server.settings)  # as the liveness loop does (PostgreSQL)
        with server.db.write() as conn:
            for node_id, answer in zip(node_ids, answers, strict=True):
                reports = []
                for work in answer.assignments:
                    data = LOG_LINE.format(frame=work["task_id"])
                    size, _ = lifecycle.append_log(conn, node_id, work["attempt_id"], 0, data)
                    reports.append({"attempt_id": work["attempt_id"], "status": "succeeded", "exit_code": 0,
                                    "cpu_s": 1.2, "peak_rss_mb": 200.0, "log_size": size})
                if reports:
                    lifecycle.finish_attempts(conn, node_id, reports, now)
    end_of_day = start + timedelta(days=1)
    kept = (0, 0)
    while True:  # the housekeeping loop's passes, one transaction each
        with server.db.write() as conn:
            passed = retention.retention_pass(conn, args.archive_after, args.delete_after, end_of_day)
        kept = (kept[0] + passed[0], kept[1] + passed[1])
        if max(passed) < retention.BATCH:
            break
    args.kept = kept
    return end_of_day


def run(url: str, args: argparse.Namespace, data: Path) -> None:
    os.environ.setdefault("THRESHER_SERVER_LOG_LEVEL", "warning")
    server = prepare(url, data)
    me = psutil.Process()
    now = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
    node_ids = _nodes(server.db, args.nodes, now)
    figures: list[tuple[int, int, int]] = [(0, _size(server.db, url), me.memory_info().rss)]
    print(f"{'day':>4} {'db MB':>8} {'RSS MB':>7} {'jobs':>7} {'tasks':>8} {'attempts':>8} {'logs':>8} "
          f"{'archived':>8} {'deleted':>7} {'s':>6}")
    print(f"{0:>4} {figures[0][1] / 1e6:>8.1f} {figures[0][2] / 1e6:>7.0f}")
    began = time.perf_counter()
    for day in range(1, args.days + 1):
        t0 = time.perf_counter()
        now = _day(server, node_ids, day, now, args)
        rows = _rows(server.db)
        size, rss = _size(server.db, url), me.memory_info().rss
        figures.append((day, size, rss))
        print(f"{day:>4} {size / 1e6:>8.1f} {rss / 1e6:>7.0f} {rows['jobs']:>7} {rows['tasks']:>8} "
              f"{rows['attempts']:>8} {rows['log_chunks']:>8} {args.kept[0]:>8} {args.kept[1]:>7} "
              f"{time.perf_counter() - t0:>6.1f}", flush=True)
    middle = figures[len(figures) // 2]
    print(f"\n{args.days} days of {args.jobs_per_day} jobs x {args.tasks} tasks on {url.split(':')[0]}, archive after "
          f"{args.archive_after:g} d, delete after {args.delete_after:g} d, in {time.perf_counter() - began:.0f} s")
    for label, (day, size, rss) in (("start", figures[0]), ("middle", middle), ("end", figures[-1])):
        print(f"  {label:<6} day {day:>3}: database {size / 1e6:8.1f} MB, RSS {rss / 1e6:6.0f} MB")
    print(f"  machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    server.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--jobs-per-day", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50, help="one-frame tasks per job")
    parser.add_argument("--nodes", type=int, default=100, help="nodes of 8 cores")
    parser.add_argument("--archive-after", type=float, default=2.0, help="days (the server's default is 30)")
    parser.add_argument("--delete-after", type=float, default=3.0, help="days after archiving (default 180)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="thresher-soak-") as tmp:
        data = Path(tmp) / "data"
        if args.db == "sqlite":
            run(f"sqlite:///{tmp}/thresher.db", args, data)
            return
        from tests.support.postgres import PostgresServer
        with PostgresServer(fast=True) as pg:
            run(pg.create_database(), args, data)


if __name__ == "__main__":
    main()
