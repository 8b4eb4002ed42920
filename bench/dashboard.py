"""How fast the dashboard answers with a big farm: 10,000 jobs, one job of 10,000 tasks (and busy nodes).

    .venv/bin/python bench/dashboard.py                    # SQLite and PostgreSQL
    .venv/bin/python bench/dashboard.py --db sqlite --jobs 10000 --tasks 10000 --runs 30
    .venv/bin/python bench/dashboard.py --db sqlite --nodes 2000 --running 8   # the node views, busy

Per database: the jobs (4 tasks each, in a realistic mix of states) and the big job are written
straight into a migrated database with the server's own `create_job`, then a real server is started
on it (`python -m thresher.server`, as the e2e tests do), the bench logs in like a browser and times
each page `--runs` times, sequentially, over loopback. The time is measured by the client from request
to last byte, so it is an upper bound of the server-side time. The task grid answers from the
broadcaster's shared snapshot after its first read; its cold read, and what the broadcaster spends per
tick to keep a watched 10,000-task grid current (re-read and diff, once for all tabs), are timed in
process on the same database. `--nodes` nodes of 8 cores are registered and each given `--running` of
the big job's tasks by the server's own dispatch, so the overview, the nodes page and a node's page
show what each runs (job, layer, frames); the server's node timeout is set past the bench's length so
that they stay up without agents. Nothing is asserted; figures are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from thresher.server import dispatch  # noqa: E402
from thresher.server.clock import utcnow  # noqa: E402
from thresher.server.db.engine import Database  # noqa: E402
from thresher.server.db.tables import jobs, nodes, tasks  # noqa: E402
from thresher.server.submit import check_spec, create_job  # noqa: E402

PROJECTS = ["ferryman", "harbour", "lighthouse", "tidewater"]
OWNERS = ["maya", "tom", "ana", "lee", "sam"]


def populate(url: str, n_jobs: int, big_tasks: int, n_nodes: int = 0, running: int = 0) -> int:
    """Write n_jobs small jobs and one big job, and nodes running its tasks; returns the big job's id."""
    db = Database(url)
    db.migrate()
    rng = random.Random(7)
    started = time.perf_counter()
    small = check_spec({"name": "x", "layers": [{"name": "render", "frames": "1-4", "args": {"command": ["true", "{frame}"]}}]})
    with db.write() as conn:
        for i in range(n_jobs):
            small.spec = small.spec.model_copy(update={
                "name": f"sq{i // 100:03d} sh{i % 100:03d} lighting v{rng.randint(1, 9):03d}",
                "project": rng.choice(PROJECTS), "owner": rng.choice(OWNERS), "priority": rng.randint(0, 100)})
            create_job(conn, small, "bench", create_projects=True)
        big = check_spec({"name": "big one", "layers": [
            {"name": "render", "frames": f"1-{big_tasks}", "args": {"command": ["true", "{frame}"]}}]})
        big_id = create_job(conn, big, "bench")
        # a realistic mix: most old jobs done, some failed, the newest queued
        cut_done, cut_failed = int(n_jobs * 0.7), int(n_jobs * 0.75)
        conn.execute(update(tasks).where(tasks.c.job_id <= cut_done).values(state="succeeded"))
        conn.execute(update(jobs).where(jobs.c.id <= cut_done).values(state="succeeded"))
        conn.execute(update(tasks).where(tasks.c.job_id > cut_done, tasks.c.job_id <= cut_failed, tasks.c.idx == 0)
                     .values(state="failed"))
        conn.execute(update(jobs).where(jobs.c.id > cut_done, jobs.c.id <= cut_failed).values(state="failed"))
        conn.execute(update(tasks).where(tasks.c.job_id == big_id, tasks.c.idx < big_tasks // 3).values(state="succeeded"))
        conn.execute(update(jobs).where(jobs.c.id == big_id).values(state="running"))
    busy_nodes(db, n_nodes, running)
    with db.write() as conn:  # planner statistics, as autovacuum / a running server would have them
        conn.exec_driver_sql("ANALYZE")
    db.dispose()
    print(f"  wrote {n_jobs:,} jobs + a {big_tasks:,}-task job in {time.perf_counter() - started:.1f}s")
    return big_id


def busy_nodes(db: Database, n_nodes: int, running: int) -> None:
    """Register `n_nodes` nodes of `running` cores, then let the server's dispatch fill them with
    one-core tasks (of the queued ones: the big job's first), asked for as agents do, many at a time."""
    if not n_nodes:
        return
    started = time.perf_counter()
    now = utcnow()
    with db.write() as conn:
        conn.execute(insert(nodes), [dict(
            name=f"rn{i:04d}", hostname=f"rn{i:04d}", os="linux", instance_id=f"rn{i:04d}", cores=running,
            memory_mb=32_000, gpus=[], tags=[], state="up", admin_state="enabled", last_seen=now,
            registered_at=now) for i in range(n_nodes)])
        ids = list(conn.execute(select(nodes.c.id).order_by(nodes.c.id)).scalars())
    given = 0
    for _ in range(running):  # an ask may give fewer than the node has room for
        for i in range(0, len(ids), 100):
            with db.write() as conn:
                given += sum(len(a.assignments) for a in dispatch.work_for_nodes(conn, ids[i:i + 100], utcnow()))
    print(f"  registered {n_nodes:,} nodes running {given:,} tasks in {time.perf_counter() - started:.1f}s")


def login(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"token": token, "csrf": nonce, "next": "/"})
    return client


def timed(client: httpx.Client, path: str, runs: int) -> dict[str, Any]:
    client.get(path)  # warm caches once
    times = []
    size = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
        size = len(answer.content)
    times.sort()
    return {"median": statistics.median(times), "p95": times[max(0, int(len(times) * 0.95) - 1)], "bytes": size}


def bench(kind: str, url: str, args: argparse.Namespace, root: Path) -> dict[str, dict[str, Any]]:
    print(f"{kind}:")
    big_id = populate(url, args.jobs, args.tasks, args.nodes, args.running)
    farm = Farm(url, root / kind, node_timeout=3600.0)  # the nodes have no agents: they stay up
    farm.start()
    try:
        client = login(farm.server_url, farm.admin_token)
        some_task = farm.api.get(f"/jobs/{big_id}/tasks?limit=1&offset={args.tasks // 2}")["items"][0]["id"]
        pages = {
            "jobs list, first page (HTML)": "/jobs",
            "jobs list, live refresh (fragment)": "/jobs?fragment=1",
            "jobs list, filtered by state+project, sorted by priority": "/jobs?state=failed&project=harbour&sort=-priority",
            "jobs list, name search, page 20": "/jobs?name=lighting&page=20",
            "jobs list, paused (also those paused while they run)": "/jobs?state=paused",
            "jobs list (JSON API, 50)": "/api/v1/jobs?limit=50",
            f"job page, {args.tasks:,} tasks": f"/jobs/{big_id}",
            f"task grid data, {args.tasks:,} tasks": f"/ui/jobs/{big_id}/grid",
            "task page": f"/tasks/{some_task}",
            "overview": "/",
            "nodes": "/nodes",
        }
        if args.nodes:
            del pages["nodes"]
            pages |= {f"nodes page 1 of {args.nodes:,} nodes running {args.running} each": "/nodes",
                      "nodes page, the busy ones, page 10": "/nodes?state=busy&page=10",
                      "nodes page, a name filter": "/nodes?name=rn01",
                      "node page": "/nodes/rn0001",
                      f"nodes (JSON API, all {args.nodes:,})": f"/api/v1/nodes?limit={args.nodes}",
                      "nodes (JSON API, a name filter)": "/api/v1/nodes?name=rn01",
                      "nodes (JSON API, the idle ones)": "/api/v1/nodes?state=idle",
                      "nodes (JSON API, the busy ones, 100)": "/api/v1/nodes?state=busy&limit=100"}
        results = {}
        for label, path in pages.items():
            results[label] = r = timed(client, path, args.runs)
            print(f"  {label:<58} median {r['median']:7.1f} ms   p95 {r['p95']:7.1f} ms   {r['bytes'] / 1024:8.1f} KiB")
        client.close()
        results.update(broadcaster_costs(url, big_id, args.runs))
        return results
    finally:
        farm.stop()


def broadcaster_costs(url: str, big_id: int, runs: int) -> dict[str, dict[str, Any]]:
    """The server side of a watched big job, in process: the grid's first read, and the per-tick re-read
    and diff with nothing changed and with 50 tasks changed (what one event then carries)."""
    from thresher.server.context import ServerContext
    from thresher.server.events import EventHub

    server = ServerContext(db=Database(url), events=EventHub())
    hub = server.events
    out: dict[str, dict[str, Any]] = {}

    def report(label: str, times: list[float], size: int = 0) -> None:
        times.sort()
        out[label] = r = {"median": statistics.median(times), "p95": times[max(0, int(len(times) * 0.95) - 1)],
                          "bytes": size}
        print(f"  {label:<58} median {r['median']:7.1f} ms   p95 {r['p95']:7.1f} ms")

    cold = []
    for _ in range(max(3, runs // 4)):
        hub.grids.clear()
        t0 = time.perf_counter()
        hub.grid(server, big_id)
        cold.append((time.perf_counter() - t0) * 1000)
    report("task grid, first read into the shared snapshot", cold)
    idle, busy, cells = [], [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        hub.grids.diff(server, {big_id}, False)
        idle.append((time.perf_counter() - t0) * 1000)
        with server.db.write() as conn:
            ids = [r.id for r in conn.execute(select(tasks.c.id).where(tasks.c.job_id == big_id,
                                                                       tasks.c.state != "running")
                                              .order_by(tasks.c.id.desc()).limit(50))]
            conn.execute(update(tasks).where(tasks.c.id.in_(ids)).values(state="running"))
        t0 = time.perf_counter()
        changed = hub.grids.diff(server, {big_id}, False)
        busy.append((time.perf_counter() - t0) * 1000)
        cells = len((changed.get(str(big_id)) or {}).get("cells") or [])  # none left to change: 0
    report("broadcaster tick: re-read + diff, nothing changed", idle)
    report(f"broadcaster tick: re-read + diff, {cells} tasks changed", busy)
    server.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=0, help="nodes registered, each running --running tasks")
    parser.add_argument("--running", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="thresher-bench-dash-") as tmp:
        root = Path(tmp)
        if args.db in ("sqlite", "both"):
            bench("sqlite", f"sqlite:///{root / 'dash.db'}", args, root)
        if args.db in ("postgresql", "both"):
            pg = PostgresServer(fast=True).start()
            try:
                bench("postgresql", pg.create_database(), args, root)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()
