"""Submit-to-start across server processes on one PostgreSQL (server/peers.py), against one process.

    .venv/bin/python bench/peers.py                 # 100 samples each way, 4 idle agents
    .venv/bin/python bench/peers.py --samples 30

Two real servers (`python -m thresher.server`) on one private PostgreSQL (initdb, durable). Then, on an
idle farm, one-task jobs are submitted one after the other and the time until an agent holds the
assignment is measured (`bench/dispatch.latency_async`):

- same server: the agents wait on server A, the jobs are submitted through A;
- across servers: the agents wait on server B, the jobs are submitted through A, so B hears of them
  only through A's notification (each server's periodic look for news is set to a minute, so that
  cannot be what starts them);
- across servers, news off (`peer_news = false`): what B's agents waited before (the periodic look,
  every 2 s by default), with `--without` only (slow: up to 2 s a sample).

Nothing is asserted: the figures are printed, with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from bench.dispatch import latency_async, machine, percentile  # noqa: E402


def _measure(first: Farm, second: Farm | None, args: argparse.Namespace) -> tuple[float, float, int]:
    samples = asyncio.run(latency_async(first, args, agents_at=second))
    missed = sum(1 for s in samples if s == float("inf"))
    slowest = sorted(range(len(samples)), key=lambda i: -samples[i])[:3]
    print("    slowest samples: " + ", ".join(f"#{i + 1} {samples[i] * 1000:.0f} ms" for i in slowest), flush=True)
    return statistics.median(samples), percentile(samples, 99), missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--idle-agents", type=int, default=4)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--without", action="store_true", help="also measure across servers with peer news off")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="thresher-bench-peers-") as tmp_name, PostgresServer(fast=False) as pg:
        # the server's own temporary folder: run as root, PostgreSQL runs as `postgres`, which may not
        # enter a folder `TemporaryDirectory` made (mode 0700)
        tmp = Path(tmp_name)
        cases = [("same server", True, False), ("across servers", True, True)]
        if args.without:
            cases.append(("across servers, news off", False, True))
        for i, (label, news, across) in enumerate(cases):
            url = pg.create_database(f"peers_{i}")
            env = {"THRESHER_SERVER_NEWS_RECHECK_S": "60" if news else "2",
                   "THRESHER_SERVER_PEER_NEWS": "true" if news else "false"}
            a = Farm(url, tmp / f"a{i}", env=env).start(timeout=60)
            b = Farm(url, tmp / f"b{i}", env=env).start(timeout=60) if across else None
            try:
                median, p99, missed = _measure(a, b, args)
            finally:
                for farm in (a, b):
                    if farm is not None:
                        farm.stop()
            rows.append((label, median, p99, missed))
            print(f"  {label}: median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, missed {missed}", flush=True)
    print("\n| submit-to-start, idle farm, PostgreSQL | median | p99 | missed |\n| --- | ---: | ---: | ---: |")
    for label, median, p99, missed in rows:
        print(f"| {label} | {median * 1000:.1f} ms | {p99 * 1000:.1f} ms | {missed} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
