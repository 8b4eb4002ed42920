"""Cap a running process at a share of one core, with a cgroup of its own (a bench's tool, Linux, root).

A figure of "does it scale with more processes" needs the processes, not the machine, to be what runs
out: on a machine with fewer cores than processes they only share the same cores. Capping each process
at, say, 0.15 of a core (CFS bandwidth: `cpu.max` on cgroup v2, `cpu.cfs_quota_us` on the v1 `cpu`
controller) makes each one as saturated as a process that has used its core, while the database and the
load generator keep the rest of the machine.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 5_000


def _cpu_root() -> tuple[Path, bool]:
    """The folder new cpu cgroups go in, and whether it is cgroup v2."""
    if (ROOT / "cgroup.controllers").is_file():
        if "cpu" not in (ROOT / "cgroup.controllers").read_text().split():
            raise RuntimeError("cgroup v2 without the cpu controller: cannot cap a process's CPU")
        control = ROOT / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")
        return ROOT, True
    if (ROOT / "cpu" / "cpu.cfs_quota_us").is_file():
        return ROOT / "cpu", False
    raise RuntimeError("no cgroup cpu controller here: cannot cap a process's CPU")


@contextlib.contextmanager
def capped(pids: list[int], cores: float, prefix: str = "thresher-bench") -> Iterator[list[Path]]:
    """Each of `pids` (all its threads) in a cgroup of its own, allowed `cores` of CPU time per second
    of wall time; the cgroups are removed on the way out (a process still in one is moved back first)."""
    root, v2 = _cpu_root()
    quota = max(1000, int(cores * PERIOD_US))
    made: list[Path] = []
    try:
        for pid in pids:
            group = root / f"{prefix}-{os.getpid()}-{pid}"
            group.mkdir()
            made.append(group)
            if v2:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
        yield made
    finally:
        for group in made:
            with contextlib.suppress(OSError):
                for left in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (root / "cgroup.procs").write_text(left)
            for _ in range(50):  # a group empties a moment after its last process left
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def throttled_s(group: Path) -> float:
    """Seconds the group's processes were held back by their cap so far (both cgroup versions)."""
    for line in (group / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "throttled_usec":
            return int(value) / 1e6
        if key == "throttled_time":  # v1: nanoseconds
            return int(value) / 1e9
    return 0.0
