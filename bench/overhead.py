"""Farm overhead against `xargs -P`: the same short commands, run directly and through a real farm.

    .venv/bin/python bench/overhead.py                          # 2,000 tasks of `sleep 0.5`
    .venv/bin/python bench/overhead.py --tasks 200 --sleep 0.1 --db postgresql

The reference: `xargs -P SLOTS` running `sleep S` TASKS times. The farm: a real server and `--agents`
real agents (`python -m thresher.agent`, as the e2e tests start them) with SLOTS cores in all, one job
of TASKS one-core tasks running the same `sleep S`. The farm's figure is the time from the submit call
to the last task succeeded. The design target is a ratio of at most 1.2 for tasks of a second or
less. Nothing is asserted; the figures are printed, with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from tests.support.farm import Farm  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402


def task_command(sleep: float, command: str | None) -> list[str]:
    """The command every task runs: `sleep S`, or `--command` (e.g. `true`, split on spaces)."""
    return command.split() if command else ["sleep", str(sleep)]


def reference(tasks: int, slots: int, argv: list[str]) -> float:
    """Wall time of `xargs -P slots` running `argv` `tasks` times."""
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", str(slots), "-I", "{}", *argv], input=("x\n" * tasks).encode(),
                   check=True)
    return time.perf_counter() - start


def through_farm(db_url: str, root: Path, tasks: int, agents: int, slots: int, argv: list[str],
                 env: dict[str, str] | None = None) -> float:
    """Wall time from submitting the job to its last task succeeded, on a fresh farm."""
    per_agent = [slots // agents + (1 if i < slots % agents else 0) for i in range(agents)]
    farm = Farm(db_url, root).start(timeout=60)
    try:
        for i, cores in enumerate(per_agent):
            farm.start_agent(f"node{i}", cores=cores, heartbeat=5.0, env=env)
        spec = {"name": "overhead", "layers": [{"name": "sleep", "template": "command", "frames": f"1-{tasks}",
                                                "args": {"command": argv},
                                                "resources": {"cores": 1, "memory_mb": 64}, "retries": 0}]}
        start = time.perf_counter()
        job = farm.api.post("/jobs", spec)
        farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["state"] in ("succeeded", "failed"),
                      timeout=tasks * 10 + 120, interval=0.05, message="the job to finish")
        elapsed = time.perf_counter() - start
        state = farm.api.get(f"/jobs/{job['id']}")["state"]
        if state != "succeeded":
            raise RuntimeError(f"the job ended {state}")
        return elapsed
    finally:
        farm.stop()


def load() -> str:
    """The load average, printed next to every figure (they are noisy on a shared machine)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each task sleeps")
    parser.add_argument("--command", help="what each task runs instead of `sleep S`, e.g. `true`")
    parser.add_argument("--slots", type=int, default=8, help="tasks at once: xargs -P and the farm's cores")
    parser.add_argument("--agents", type=int, default=2, help="local agents sharing the slots")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}", flush=True)
    argv = task_command(args.sleep, args.command)
    print(f"{args.tasks} tasks of `{' '.join(argv)}`, {args.slots} at once; {load()}", flush=True)
    direct = reference(args.tasks, args.slots, argv)
    print(f"  xargs -P {args.slots}: {direct:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="thresher-overhead-") as tmp:
        pg = PostgresServer(fast=False).start() if args.db == "postgresql" else None
        try:
            url = pg.create_database("overhead") if pg else f"sqlite:///{Path(tmp) / 'farm.db'}"
            farm = through_farm(url, Path(tmp) / "farm", args.tasks, args.agents, args.slots, argv)
        finally:
            if pg is not None:
                pg.stop()
    print(f"  farm ({args.db}, {args.agents} agents): {farm:.2f} s", flush=True)
    print(f"  ratio farm / xargs: {farm / direct:.2f}, {args.tasks / farm:.0f} tasks/s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
