"""Farm overhead against `xargs -P`: the same short commands, run directly and through a real farm.

    .venv/bin/python bench/overhead.py                          # 2,000 tasks of `sleep 0.5`
    .venv/bin/python bench/overhead.py --tasks 200 --sleep 0.1 --db postgresql

The reference: `xargs -P SLOTS` running `sleep S` TASKS times. The farm: a real server and `--agents`
real agents (`python -m thresher.agent`, as the e2e tests start them) with SLOTS cores in all, one job
of TASKS one-core tasks running the same `sleep S`. The farm's figure is the time from the submit call
to the job's `finished_at` on the server, with the CPU each task cost the server, the agents and the
agents' task processes (the shell and helpers of each start, and the command itself). The design target is a ratio of at most 1.2 for tasks of a second or
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
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass
class FarmRun:
    """One job through a farm: its wall time, and the CPU it cost per task in each kind of process."""

    seconds: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # server, agents, the agents' task processes
    submitted: float = 0.0  # unix time of the submit call (the job's `finished_at` is `submitted + seconds`)

    def cpu_line(self) -> str:
        total = sum(self.cpu_ms.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in self.cpu_ms.items())
        return f"CPU per task {total:.2f} ms ({parts})"


def _cpu(process: psutil.Process) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process."""
    t = process.cpu_times()
    return t.user + t.system, t.children_user + t.children_system


def through_farm(db_url: str, root: Path, tasks: int, agents: int, slots: int, argv: list[str],
                 env: dict[str, str] | None = None) -> FarmRun:
    """From the submit call to the job's `finished_at` (the server's clock, on this machine), on a fresh
    farm; the job is polled only twice a second (a job page is not free: polling it fast would be CPU the
    farm spends for the bench), and its end read from the server, so the poll adds nothing to the figure."""
    per_agent = [slots // agents + (1 if i < slots % agents else 0) for i in range(agents)]
    farm = Farm(db_url, root).start(timeout=60)
    try:
        for i, cores in enumerate(per_agent):
            farm.start_agent(f"node{i}", cores=cores, heartbeat=5.0, env=env)
        for i in range(agents):
            farm.wait_for_node(f"node{i}")
        spec = {"name": "overhead", "layers": [{"name": "sleep", "template": "command", "frames": f"1-{tasks}",
                                                "args": {"command": argv},
                                                "resources": {"cores": 1, "memory_mb": 64}, "retries": 0}]}
        processes = {proc.name: psutil.Process(proc.pid) for proc in farm.processes() if proc.pid}
        before = {name: _cpu(p) for name, p in processes.items()}
        start = time.time()
        job = farm.api.post("/jobs", spec)
        farm.wait_for(lambda: farm.api.get(f"/jobs/{job['id']}")["state"] in ("succeeded", "failed"),
                      timeout=tasks * 10 + 120, interval=0.5, message="the job to finish")
        after = {name: _cpu(p) for name, p in processes.items()}
        done = farm.api.get(f"/jobs/{job['id']}")
        if done["state"] != "succeeded":
            raise RuntimeError(f"the job ended {done['state']}")
        finished = datetime.fromisoformat(done["finished_at"].replace("Z", "+00:00"))
        cpu: dict[str, float] = {"server": 0.0, "agents": 0.0, "tasks": 0.0}
        for name in processes:
            own, children = (a - b for a, b in zip(after[name], before[name], strict=True))
            cpu["server" if name == "server" else "agents"] += own * 1000 / tasks
            cpu["tasks"] += children * 1000 / tasks
        return FarmRun(finished.timestamp() - start, cpu, start)
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
    parser.add_argument("--ahead", type=int, nargs="*", default=[0], metavar="N",
                        help="agent setting `tasks_ahead` (cores' worth of tasks kept waiting on each node); "
                             "several values: one farm run each, after the same xargs run")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}", flush=True)
    argv = task_command(args.sleep, args.command)
    print(f"{args.tasks} tasks of `{' '.join(argv)}`, {args.slots} at once; {load()}", flush=True)
    direct = reference(args.tasks, args.slots, argv)
    print(f"  xargs -P {args.slots}: {direct:.2f} s", flush=True)
    for ahead in args.ahead:
        env = {"THRESHER_AGENT_TASKS_AHEAD": str(ahead)}
        with tempfile.TemporaryDirectory(prefix="thresher-overhead-") as tmp:
            pg = PostgresServer(fast=False).start() if args.db == "postgresql" else None
            try:
                url = pg.create_database("overhead") if pg else f"sqlite:///{Path(tmp) / 'farm.db'}"
                farm = through_farm(url, Path(tmp) / "farm", args.tasks, args.agents, args.slots, argv, env)
            finally:
                if pg is not None:
                    pg.stop()
        print(f"  farm ({args.db}, {args.agents} agents, tasks_ahead {ahead}): {farm.seconds:.2f} s; "
              f"{farm.cpu_line()}", flush=True)
        print(f"  ratio farm / xargs: {farm.seconds / direct:.2f}, {args.tasks / farm.seconds:.0f} tasks/s; {load()}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
