"""Dispatch throughput with 1, 2 and 3 server processes on one PostgreSQL (`thresher server --workers N`).

    .venv/bin/python bench/workers.py                         # 1, 2, 3 processes; 600 agents, 60,000 tasks
    .venv/bin/python bench/workers.py --servers 1 3 --seconds 10
    .venv/bin/python bench/workers.py --server-cpu 0.2 --agents 400 --tasks 40000   # on a small machine

For each count, a fresh database on one private, durable PostgreSQL (initdb), a real server started
with `--workers N` (one process without it when N is 1), and `bench/dispatch.throughput`: simulated
agents registered through the one address, one job of one-frame tasks, every agent looping work ->
finish; assignments per second over the window. Printed beside it: the CPU of the server processes and
of PostgreSQL over the window (cores), and how the agents' connections fell on the workers (the kernel
hands each new connection to whichever worker accepts it first). Nothing is asserted.

On a machine with fewer cores than server processes + PostgreSQL + simulator need, more processes
cannot show scaling: they share the same cores. `--server-cpu 0.2` (root, Linux) caps each server
process at that share of a core with a cgroup of its own (`bench/cpu_cap.py`), so that the processes run
out before the machine does, as each would on a machine with a core per process: throughput then
follows the processes' count where the design scales, and "per server core" (assignments per second
per core the server processes used) says what each assignment costs as processes are added.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from bench.cpu_cap import capped, throttled_s  # noqa: E402
from bench.dispatch import cpu_of, machine, raise_fd_limit, throughput  # noqa: E402


def postgres_cpu(pg: PostgresServer) -> dict[int, float]:
    """CPU seconds of the postmaster and each of its backends now, by pid."""
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    main = psutil.Process(pid)
    return {p.pid: cpu_of([p]) for p in [main, *main.children(recursive=True)]}


def server_processes(farm: Farm) -> list[psutil.Process]:
    """The processes that serve: the workers of `--workers N`, or the one server without it."""
    assert farm.server is not None and farm.server.pid is not None
    parent = psutil.Process(farm.server.pid)
    return parent.children() or [parent]


def connections_per_worker(farm: Farm) -> list[int]:
    procs = server_processes(farm)
    counts = []
    for proc in procs:
        try:
            counts.append(sum(1 for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED
                              and c.laddr and c.laddr.port == farm.port))
        except psutil.Error:
            counts.append(-1)
    return counts


def run(servers: int, args: argparse.Namespace, tmp: Path, pg: PostgresServer) -> dict[str, Any]:
    url = pg.create_database(f"workers_{servers}_{int(time.time())}")
    extra = ["--workers", str(servers)] if servers > 1 else []
    farm = Farm(url, tmp / f"w{servers}", node_timeout=max(60.0, args.heartbeat * 6), server_args=extra)
    farm.start(timeout=120)
    try:
        with contextlib.ExitStack() as stack:
            groups = (stack.enter_context(capped([p.pid for p in server_processes(farm)], args.server_cpu))
                      if args.server_cpu else [])
            out = _measure(farm, args, pg)
            out["throttled"] = [throttled_s(g) for g in groups]
            return out
    except Exception:
        print(farm.logs_tail(30), file=sys.stderr)
        raise
    finally:
        farm.stop()


def _measure(farm: Farm, args: argparse.Namespace, pg: PostgresServer) -> dict[str, Any]:
    """Assignments per second over the window, with the CPU of PostgreSQL and the agents' spread."""
    before, t_start = postgres_cpu(pg), time.perf_counter()
    spread: list[int] = []
    done = threading.Event()

    def sample() -> None:  # the busiest moment's spread: the agents' connections are open then
        while not done.wait(0.5):
            now = connections_per_worker(farm)
            if sum(now) > sum(spread):
                spread[:] = now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = throughput(farm, args)
    finally:
        done.set()
        sampler.join()
    # over the whole call (registering, submitting, the window), backends opened meanwhile included
    after = postgres_cpu(pg)
    out["pg_cpu"] = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) / (time.perf_counter() - t_start)
    out["spread"] = spread
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 3], help="server process counts")
    parser.add_argument("--agents", type=int, default=600)
    parser.add_argument("--tasks", type=int, default=60_000)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=2, help="simulator processes")
    parser.add_argument("--wait", type=float, default=5.0)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--server-cpu", type=float, default=None, metavar="CORES",
                        help="cap each server process at this share of one core (a cgroup each; root): on a "
                             "machine with fewer cores than processes, the processes then run out, not the machine")
    args = parser.parse_args(argv)
    args.scenario, args.sample_pg = "plain", False
    raise_fd_limit()
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="thresher-bench-workers-") as tmp_name, \
            PostgresServer(fast=False, max_connections=500) as pg:
        for servers in args.servers:
            print(f"[{servers} server process{'es' if servers > 1 else ''}] {args.agents} agents x {args.cores} "
                  f"cores, {args.tasks} tasks", flush=True)
            r = run(servers, args, Path(tmp_name), pg)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            rows.append((servers, r, load))
            print(f"  {r['rate']:.0f} assignments/s (per second: {r['per_second']}); errors: {r['errors'] or 'none'}; "
                  f"CPU: server {r['server_cpu']:.2f}, PostgreSQL {r['pg_cpu']:.2f}, simulated agents "
                  f"{r['sim_cpu'] / (args.warmup + args.seconds):.2f} cores; connections per "
                  f"worker {r['spread']}; load {load}"
                  + (f"; held back by the cap {', '.join(f'{t:.1f}' for t in r['throttled'])} s" if r["throttled"] else ""),
                  flush=True)
    if args.server_cpu:
        print(f"\neach server process capped at {args.server_cpu:g} of a core")
    # per core: what an assignment costs; flat from 1 to 3 processes means more processes add no work
    print("\n| server processes | assignments/s | server CPU (cores) | per server core | PostgreSQL CPU (cores) "
          "| PostgreSQL ms per assignment | connections per worker | load average after |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for servers, r, load in rows:
        per_core = r["rate"] / r["server_cpu"] if r["server_cpu"] else 0.0
        pg_ms = 1000 * r["pg_cpu"] / r["rate"] if r["rate"] else 0.0
        print(f"| {servers} | {r['rate']:.0f} | {r['server_cpu']:.2f} | {per_core:.0f} | {r['pg_cpu']:.2f} | "
              f"{pg_ms:.2f} | {'/'.join(map(str, r['spread']))} | {load} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
