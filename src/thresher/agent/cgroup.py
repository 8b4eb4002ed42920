"""Each task in a cgroup v2 of its own (Linux): exact membership, exact CPU, memory, and one kill.

Why: a process group and parent links can be left (`setsid`, a double fork), a cgroup cannot (moving
out needs write access to cgroups the task does not own). Whatever a task starts is born in its cgroup,
`cgroup.kill` ends all of it at once, `cpu.stat` counts the CPU of every process that ever ran in it
(reaped or not), `memory.stat` its memory (shared pages once) and `memory.max` can cap it. Reading
`cgroup.procs` is also far cheaper than walking /proc to find a task's processes.

Usable only where cgroup v2 is mounted and the agent's own cgroup is writable to it (root, or a systemd
unit with `Delegate=yes`); `detect` finds out and says why not, and the agent then falls back to the
tracking of `process_tree.py` (process group, descendants seen, orphans it reaps as subreaper).
The layout: the task cgroups `thresher-<agent pid>-<attempt>` are children of the agent's own cgroup. A memory cap
needs the memory controller enabled for those children, which the kernel allows only for a cgroup
without processes of its own (bar the root): the agent then first moves itself into the leaf
`thresher-agent` beside them.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("thresher.agent")

AGENT_LEAF = "thresher-agent"
PREFIX = "thresher-"
_EMPTY_WAIT_S = 5.0


def _read(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def _cgroup2_entry(mountinfo: str) -> tuple[Path, list[str]] | None:
    """(mount point, superblock options) of the cgroup v2 hierarchy in a /proc/self/mountinfo text."""
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and tail[:1] == ["cgroup2"]:
            return Path(fields[4].replace("\\040", " ")), (tail[2].split(",") if len(tail) > 2 else [])
    return None


def cgroup2_mount(mountinfo: str) -> Path | None:
    """The mount point of the cgroup v2 hierarchy in a /proc/self/mountinfo text (the unified one of a
    hybrid v1/v2 system too), or None."""
    entry = _cgroup2_entry(mountinfo)
    return entry[0] if entry else None


def favors_dynmods(mountinfo: str) -> bool:
    """Whether cgroup v2 is mounted with `favordynmods`. Without it (every distribution's default) each
    move of a process into a cgroup waits for an RCU grace period and holds up the other cgroup changes
    meanwhile: measured 3-10 ms a task start, and mkdir and rmdir of the task cgroups 6-10 ms, with 8
    short tasks at once on Linux 6.18; with it, 0.05 ms. The agent says so at start; the README's
    "Many short tasks" says how to turn it on."""
    entry = _cgroup2_entry(mountinfo)
    return entry is not None and "favordynmods" in entry[1]


def own_cgroup(proc_cgroup: str) -> str | None:
    """The v2 path of a process from its /proc/<pid>/cgroup text (the `0::` line), or None."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
            return None if path.endswith("(deleted)") else path
    return None


@dataclass
class TaskCgroup:
    """The cgroup of one attempt; every method is best effort (a vanished cgroup is an empty one)."""

    path: Path

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        """The live processes in it (the kernel leaves exited ones, zombies, out)."""
        try:
            return [int(x) for x in _read(self.path / "cgroup.procs").split()]
        except (OSError, ValueError):
            return []

    def populated(self) -> bool:
        try:
            for line in _read(self.path / "cgroup.events").splitlines():
                if line.startswith("populated "):
                    return line.split()[1] == "1"
        except OSError:
            return False
        return bool(self.pids())

    def join(self, pid: int) -> bool:
        """Move `pid` in (the child joins itself before exec; this is the parent's check and catch-up).
        The agent's own child is at worst a zombie here (the agent reaps it later), whose
        /proc/<pid>/cgroup still names where it ran."""
        try:
            where = own_cgroup(_read(Path(f"/proc/{pid}/cgroup")))
            if where is not None and where.rstrip("/").endswith("/" + self.path.name):
                return True
        except OSError:
            pass
        try:
            _write(self.path / "cgroup.procs", str(pid))
            return True
        except OSError as exc:
            log.warning("cannot move process %d into %s: %s", pid, self.path, exc)
            return False

    def signal(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def kill(self) -> None:
        """SIGKILL every process in it at once, those being forked included (`cgroup.kill`)."""
        try:
            _write(self.path / "cgroup.kill", "1")
        except OSError:
            self.signal(signal.SIGKILL)

    def cpu_s(self) -> float:
        """CPU seconds of everything that ever ran in it (`cpu.stat` usage_usec, without a controller too)."""
        try:
            for line in _read(self.path / "cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            pass
        return 0.0

    def anon_mb(self) -> float | None:
        """Its anonymous memory in MB (`memory.stat`, what RSS means for a render: page cache left
        out, shared pages counted once) where the memory controller counts for it, else None."""
        try:
            for line in _read(self.path / "memory.stat").splitlines():
                if line.startswith("anon "):
                    return int(line.split()[1]) / 2**20
        except (OSError, ValueError):
            pass
        return None

    def oom_kills(self) -> int:
        """The kernel's OOM kills inside it (`memory.events`), 0 where not counted."""
        try:
            for line in _read(self.path / "memory.events").splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def empty(self, wait_s: float = _EMPTY_WAIT_S) -> bool:
        """Kill what is left in it and wait until nothing is (at most `wait_s`). False if something still
        is. After the task's own tree is gone this is one read of `cgroup.events`."""
        end = time.monotonic() + wait_s
        while self.populated():
            if time.monotonic() >= end:
                log.warning("processes are left in %s after %.0f s", self.path, wait_s)
                return False
            self.kill()
            time.sleep(0.01)
        return True

    def remove(self, wait_s: float = _EMPTY_WAIT_S) -> bool:
        """Kill what is left, wait until it is empty, remove it. False when it could not be removed."""
        end = time.monotonic() + wait_s
        while True:
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= end:
                    log.warning("cannot remove %s: %s", self.path, exc)
                    return False
            self.kill()
            time.sleep(0.01)


class CgroupHost:
    """Where this agent makes its tasks' cgroups (a child of its own cgroup), and what they can do."""

    def __init__(self, base: Path, memory: bool) -> None:
        self.base = base
        self.memory = memory  # the memory controller counts (and may cap) the task cgroups

    @classmethod
    def detect(cls, *, memory_limit: bool = False) -> tuple[CgroupHost | None, str]:
        """The host, or None and why the agent falls back to process tracking."""
        if not sys.platform.startswith("linux"):
            return None, "not Linux"
        try:
            mountinfo = _read(Path("/proc/self/mountinfo"))
            mount = cgroup2_mount(mountinfo)
            own = own_cgroup(_read(Path("/proc/self/cgroup")))
        except OSError as exc:
            return None, f"cannot read /proc: {exc}"
        if mount is None or own is None:
            return None, "no cgroup v2 hierarchy mounted"
        base = mount / own.lstrip("/")
        if base.name == AGENT_LEAF:  # an earlier run of this process moved itself (tests, restarts)
            base = base.parent
        probe = base / f"{PREFIX}probe-{os.getpid()}"
        try:
            probe.mkdir()
        except FileExistsError:
            pass
        except OSError as exc:
            return None, f"cgroup {base} is not writable ({exc.strerror}; run as root or with systemd Delegate=yes)"
        try:
            missing = [f for f in ("cgroup.procs", "cgroup.kill", "cgroup.events") if not (probe / f).exists()]
            if missing:
                return None, f"cgroup v2 without {', '.join(missing)} (Linux 5.14+ has cgroup.kill)"
            if not os.access(probe / "cgroup.procs", os.W_OK):
                return None, f"cannot move processes into cgroups under {base}"
        finally:
            try:
                os.rmdir(probe)
            except OSError:
                pass
        memory = _has_memory(base) or (memory_limit and _enable_memory(base))
        why = f"tasks run in cgroups under {base}" + ("" if memory else " (no memory controller)")
        if not favors_dynmods(mountinfo):
            why += ("; cgroup2 is mounted without favordynmods, so each task start waits a few ms for the "
                    "kernel (for many short tasks: mount -o remount,favordynmods " + str(mount) + ")")
        return cls(base, memory), why

    def sweep(self) -> int:
        """Remove the task cgroups of agents that are gone (killed and not started again): kill what
        still runs in them. Those of live agents are theirs. Returns how many were removed."""
        removed = 0
        for path in self.base.glob(f"{PREFIX}*-*"):
            owner = path.name[len(PREFIX):].split("-", 1)[0]
            if not owner.isdigit() or _pid_alive(int(owner)) or not path.is_dir():
                continue
            if TaskCgroup(path).remove():
                removed += 1
        return removed

    def create(self, key: str, memory_max_mb: int | None = None) -> TaskCgroup | None:
        """A fresh cgroup for one attempt, named after the agent's pid too (agents of several farms may
        share a machine and a parent cgroup); a stale one of the same name is emptied first. None on
        failure."""
        cg = TaskCgroup(self.base / f"{PREFIX}{os.getpid()}-{key}")
        try:
            cg.path.mkdir()
        except FileExistsError:
            if not cg.remove():
                return None
            try:
                cg.path.mkdir()
            except OSError as exc:
                log.warning("cannot make cgroup %s: %s", cg.path, exc)
                return None
        except OSError as exc:
            log.warning("cannot make cgroup %s: %s", cg.path, exc)
            return None
        if memory_max_mb and self.memory:
            try:
                _write(cg.path / "memory.max", str(int(memory_max_mb) * 2**20))
            except OSError as exc:
                log.warning("cannot cap the memory of %s: %s", cg.path, exc)
            try:  # past its cap a task is ended, not swapped out (a render swapping stalls the node)
                _write(cg.path / "memory.swap.max", "0")
            except OSError:
                pass  # no swap accounting: nothing to cap
        return cg


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _has_memory(base: Path) -> bool:
    try:
        return "memory" in _read(base / "cgroup.subtree_control").split()
    except OSError:
        return False


def _enable_memory(base: Path) -> bool:
    """Enable the memory controller for the task cgroups; a cgroup with processes (the agent's own,
    unless it is the root) cannot, so the agent first moves itself into a leaf beside its tasks."""
    try:
        if "memory" not in _read(base / "cgroup.controllers").split():
            log.warning("memory limits asked for, but the memory controller is not available in %s", base)
            return False
    except OSError:
        return False
    try:
        _write(base / "cgroup.subtree_control", "+memory")
        return True
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            log.warning("cannot enable the memory controller in %s: %s", base, exc)
            return False
    try:
        leaf = base / AGENT_LEAF
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))  # others sharing the cgroup: the kernel refuses
        _write(base / "cgroup.subtree_control", "+memory")
        return True
    except (OSError, ValueError) as exc:
        log.warning("cannot enable the memory controller in %s: %s", base, exc)
        return False
