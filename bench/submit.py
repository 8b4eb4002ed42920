"""How long a huge job takes to submit: a 1,000,000-frame layer, one frame per task (1,000,000 tasks).

    .venv/bin/python bench/submit.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/submit.py --db sqlite --frames 200000 --chunk 1 --runs 3

Per database a real server is started on a fresh, migrated database (`python -m thresher.server`, as
the e2e tests do; PostgreSQL durable, fsync on) and the job is POSTed to /api/v1/jobs through the
project's HTTP client; the time is the client's, from the request to the answer carrying the new id,
so it includes checking the spec, chunking the frames, writing every task row and the commit. The
same job is then submitted again `--runs - 1` times into the same database (the tasks table grows,
as on a farm). Nothing is asserted; figures are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402


def job_spec(frames: int, chunk: int) -> dict[str, Any]:
    return {"name": f"huge {frames:,} frames", "layers": [
        {"name": "render", "frames": f"1-{frames}", "chunk": chunk,
         "args": {"command": ["true", "{start}", "{end}"]}}]}


def cpu_s(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds these processes spent so far (those gone count nothing)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def bench(kind: str, url: str, args: argparse.Namespace, root: Path, pg: PostgresServer | None = None) -> list[float]:
    farm = Farm(url, root / kind)
    farm.start_server()
    times: list[float] = []
    try:
        client = farm.client(timeout=600)
        spec = job_spec(args.frames, args.chunk)
        assert farm.server is not None and farm.server.pid is not None
        main = psutil.Process(farm.server.pid)
        server = [main, *main.children(recursive=True)]
        for run in range(args.runs):
            # CPU seconds too: on a shared machine they vary less than the wall time
            database = psutil.Process(postmaster_pid(pg)).children() if pg else []
            before = cpu_s(server), cpu_s(database)
            started = time.perf_counter()
            job_id = client.post("/jobs", spec)["id"]
            times.append(time.perf_counter() - started)
            spent = cpu_s(server) - before[0], cpu_s(database) - before[1]
            total = client.get(f"/jobs/{job_id}")["total_tasks"]
            print(f"  {kind:<10} run {run + 1}: job {job_id}, {total:,} tasks in {times[-1]:6.2f} s"
                  f" ({total / times[-1]:,.0f} tasks/s); CPU: server {spent[0]:.1f} s"
                  + (f", PostgreSQL {spent[1]:.1f} s" if pg else "") + f"; load {os.getloadavg()[0]:.2f}", flush=True)
        return times
    finally:
        farm.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=1, help="frames per task")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    print(f"job: frames 1-{args.frames}, chunk {args.chunk} (target: a 1,000,000-frame job in < 10 s)")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="thresher-bench-submit-") as tmp:
        root = Path(tmp)
        if args.db in ("sqlite", "both"):
            results["sqlite"] = bench("sqlite", f"sqlite:///{root / 'submit.db'}", args, root)
        if args.db in ("postgresql", "both"):
            pg = PostgresServer(fast=False).start()
            try:
                results["postgresql"] = bench("postgresql", pg.create_database(), args, root, pg)
            finally:
                pg.stop()
    for kind, times in results.items():
        print(f"{kind:<10} submit: median {statistics.median(times):.2f} s, best {min(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
