"""How long a huge submit stalls the other SQLite writers (issue 13, defect 5).

    .venv/bin/python bench/submit_stall.py                  # 1,000,000 tasks
    .venv/bin/python bench/submit_stall.py --frames 200000

A real server on a fresh SQLite file (`python -m thresher.server`), one registered node whose agent is
played by a thread that heartbeats back to back (a heartbeat is a write: it joins the write batcher's
next transaction, as reports and requests for work do). The figures: heartbeat latency before the
submit, its worst and 99th percentile while a job of `--frames` one-frame tasks is submitted, and the
submit's own time. Then, on the same file with the server stopped, the time of one statement that moves
all of the job's tasks from one state to another and back (`ready` -> `waiting` -> `ready`), in one
write transaction: what any write-in-slices design that keeps the tasks inert (invisible to dispatch)
until the last slice must still do in one transaction at its end, so the least stall such a design
leaves. Nothing is asserted; figures are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.farm import Farm  # noqa: E402


class Beats:
    """Back-to-back heartbeats of one node from a thread, each call's latency kept with its start."""

    def __init__(self, farm: Farm, token: str) -> None:
        self.client = farm.client(token=token, timeout=600)
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.client.post("/agent/heartbeat", {})
            self.samples.append((started, time.perf_counter() - started))
            time.sleep(0.01)

    def between(self, start: float, end: float) -> list[float]:
        return [lat for at, lat in self.samples if at + lat >= start and at <= end]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(600)


def _ms(values: list[float]) -> str:
    if not values:
        return "no sample"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"median {statistics.median(ordered) * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, "
            f"worst {ordered[-1] * 1000:,.0f} ms ({len(ordered)} calls)")


def flip_seconds(db: Path, job_id: int) -> float:
    """One write transaction moving every task of the job to `waiting` and back to `ready`, halved."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE tasks SET state = 'waiting' WHERE job_id = ? AND state = 'ready'", (job_id,))
        conn.execute("UPDATE tasks SET state = 'ready' WHERE job_id = ? AND state = 'waiting'", (job_id,))
        conn.execute("COMMIT")
        return (time.perf_counter() - started) / 2
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="thresher-bench-stall-") as tmp:
        root = Path(tmp)
        db = root / "stall.db"
        farm = Farm(f"sqlite:///{db}", root / "farm")
        farm.start_server()
        try:
            node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1,
                                                                                 "memory_mb": 512})
            beats = Beats(farm, node["token"])
            time.sleep(2)
            quiet = beats.between(0, time.perf_counter())
            spec = {"name": "huge", "layers": [{"name": "render", "frames": f"1-{args.frames}", "chunk": 1,
                                                "args": {"command": ["true", "{start}"]}}]}
            started = time.perf_counter()
            job_id = farm.client(timeout=600).post("/jobs", spec)["id"]
            ended = time.perf_counter()
            time.sleep(1)
            beats.close()
            during = beats.between(started, ended)
        finally:
            farm.stop()
        print(f"heartbeats before the submit: {_ms(quiet)}")
        print(f"submit of {args.frames:,} tasks: {ended - started:.2f} s")
        print(f"heartbeats during the submit: {_ms(during)}")
        print(f"one statement moving the job's {args.frames:,} tasks to another state: "
              f"{flip_seconds(db, job_id):.2f} s")


if __name__ == "__main__":
    main()
