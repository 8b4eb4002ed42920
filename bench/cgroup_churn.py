"""What a task cgroup costs when many short tasks start and end at once (Linux, cgroup v2, as root).

    .venv/bin/python bench/cgroup_churn.py                  # 8 slots, 30 starts each of `sleep 0.05`
    .venv/bin/python bench/cgroup_churn.py --slots 8 --starts 60 --sleep 0.1

Each of `--slots` threads starts `sleep S` `--starts` times, one after the other, three ways:
- without a cgroup (the reference);
- in a fresh cgroup for each start (what the agent does): mkdir, the child's `sh` joins it by writing
  `cgroup.procs` before it execs the command (as `agent/child.spawn_plan` does), rmdir after the exit;
- in one cgroup per slot, re-used for every start (the join alone).
It prints the median and 90th percentile of each step in ms, and whether cgroup2 is mounted with
`favordynmods`. Without it, each join takes a system-wide lock with an RCU grace period, and mkdir and
rmdir wait behind the joins of other slots (README, "Overhead of the farm itself"). Nothing is
asserted; the figures are printed, with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from thresher.agent.cgroup import CgroupHost, favors_dynmods  # noqa: E402

_JOIN = 'echo 0 > "$0" && exec "$@"'  # the agent's own join (agent/child.py)


def churn(host: CgroupHost, way: str, slots: int, starts: int, sleep: float) -> tuple[float, dict[str, list[float]]]:
    """(wall seconds, step -> ms of each start) for one way: "none", "fresh" or "reused"."""
    steps: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()

    def slot(n: int) -> None:
        reused = host.create(f"churn-{n}") if way == "reused" else None
        try:
            for i in range(starts):
                t0 = time.perf_counter()
                cg = host.create(f"churn-{n}-{i}") if way == "fresh" else reused
                t1 = time.perf_counter()
                argv = ["sleep", str(sleep)] if cg is None else ["/bin/sh", "-c", _JOIN, cg.procs_file, "sleep", str(sleep)]
                subprocess.run(argv, check=True)
                t2 = time.perf_counter()
                if way == "fresh" and cg is not None:
                    cg.remove()
                t3 = time.perf_counter()
                with lock:
                    steps["run"].append((t2 - t1) * 1000)
                    if way == "fresh":
                        steps["mkdir"].append((t1 - t0) * 1000)
                        steps["rmdir"].append((t3 - t2) * 1000)
        finally:
            if reused is not None:
                reused.remove()

    threads = [threading.Thread(target=slot, args=(n,)) for n in range(slots)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--starts", type=int, default=30, help="starts per slot")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds each task sleeps")
    args = parser.parse_args(argv)
    host, why = CgroupHost.detect()
    if host is None:
        print(f"cgroups not usable here: {why}")
        return 1
    mountinfo = Path("/proc/self/mountinfo").read_text()
    print(f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; cgroup2 "
          f"{'with' if favors_dynmods(mountinfo) else 'without'} favordynmods (as mounted now); "
          f"{args.slots} slots x {args.starts} starts of `sleep {args.sleep:g}`", flush=True)
    for way in ("none", "fresh", "reused"):
        wall, steps = churn(host, way, args.slots, args.starts, args.sleep)
        parts = ", ".join(f"{name} {statistics.median(ms):.2f} ms (p90 {sorted(ms)[int(0.9 * len(ms))]:.2f})"
                          for name, ms in steps.items())
        print(f"  {way:<7} {wall:6.2f} s: {parts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
