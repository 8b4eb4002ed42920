"""Per-task cost of starting and following a task on the agent side: how the child is spawned, and how
its processes are found.

    .venv/bin/python bench/spawn.py                   # 200 spawns of `true` per way, agent-sized parent
    .venv/bin/python bench/spawn.py --spawns 500 --parent-mb 300

Spawning, each way `--spawns` times with the parent made `--parent-mb` large first (a full fork copies
its page tables; an agent with a few threads and its libraries is some 60-100 MB):
- `preexec_fn` (PR_SET_PDEATHSIG, the cgroup join): what the runner did, and still does with
  `pin_cpus`; forces Python's full fork;
- `start_new_session`, no preexec_fn: Python may use vfork (posix_spawn); the task cannot join its
  cgroup before exec, nor arm PDEATHSIG;
- the same through `/bin/sh -c 'echo 0 > cgroup.procs; exec ...'`: no preexec_fn, joined before exec,
  at the price of one more exec;
- what the runner does now (`child.spawn_plan`): `setpriv --pdeathsig KILL` (and the sh join with a
  cgroup) exec'd before the task, no preexec_fn.
Finding a task's processes, `--lookups` times, with a tree of 4 processes alive:
`psutil.Process.children(recursive=True)` (reads every /proc entry) against reading the task cgroup's
`cgroup.procs` (where cgroup v2 is usable). Nothing is asserted; the figures are printed, with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import psutil  # noqa: E402

from thresher.agent.cgroup import CgroupHost  # noqa: E402
from thresher.agent.child import make_child_setup, spawn_plan  # noqa: E402


def timed(n: int, one: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        one()
        times.append((time.perf_counter() - start) * 1000)
    return times


def show(name: str, times: list[float]) -> None:
    times = sorted(times)
    print(f"  {name:<52} median {statistics.median(times):7.2f} ms   p90 {times[int(len(times) * 0.9)]:7.2f} ms")


def spawn(argv: list[str], **kw: object) -> Callable[[], None]:
    def one() -> None:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True, **kw)  # type: ignore[call-overload]
        proc.wait()
    return one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spawns", type=int, default=200)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--parent-mb", type=int, default=100, help="make this process this large first")
    args = ap.parse_args()
    ballast = bytearray(args.parent_mb * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"parent RSS {psutil.Process().memory_info().rss / 2**20:.0f} MB")
    host, why = CgroupHost.detect()
    print(f"cgroups: {why}")
    cg = host.create(f"bench-{os.getpid()}") if host else None

    print(f"spawn and reap `true`, {args.spawns} times:")
    show("preexec_fn (PDEATHSIG), start_new_session", timed(args.spawns, spawn(
        ["true"], start_new_session=True, preexec_fn=make_child_setup(os.getpid()))))
    if cg is not None:
        show("preexec_fn (PDEATHSIG + cgroup join)", timed(args.spawns, spawn(
            ["true"], start_new_session=True, preexec_fn=make_child_setup(os.getpid(), None, cg.procs_file))))
    show("start_new_session, no preexec_fn", timed(args.spawns, spawn(["true"], start_new_session=True)))
    if cg is not None:
        show("sh trampoline joining the cgroup, no preexec_fn", timed(args.spawns, spawn(
            ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', cg.procs_file, "true"], start_new_session=True)))
    for label, procs in (("setpriv --pdeathsig (the runner, no cgroup)", None),
                         ("sh join + setpriv --pdeathsig (the runner, cgroup)", cg.procs_file if cg else "")):
        if procs == "":
            continue
        plan, preexec = spawn_plan(["true"], os.getpid(), None, procs)
        if preexec is None:
            show(label, timed(args.spawns, spawn(plan, start_new_session=True)))

    print(f"find a task's 4 processes, {args.lookups} times:")
    tree = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                             "kids = [subprocess.Popen(['sleep', '60']) for _ in range(3)]\ntime.sleep(60)"],
                            start_new_session=True)
    try:
        time.sleep(1.0)
        if cg is not None:
            for p in [tree.pid] + [c.pid for c in psutil.Process(tree.pid).children(recursive=True)]:
                cg.join(p)
        root = psutil.Process(tree.pid)
        show("psutil children(recursive=True)", timed(args.lookups, lambda: root.children(recursive=True)))
        if cg is not None:
            show("cgroup.procs", timed(args.lookups, lambda: cg.pids()))
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
        if cg is not None:
            cg.remove()
    del ballast


if __name__ == "__main__":
    main()
