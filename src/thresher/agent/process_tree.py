"""The processes of one task: find them, measure them, signal them.

In a cgroup of its own (`agent/cgroup.py`, Linux with cgroup v2) the task's processes are exactly its
cgroup's: nothing can leave it, its `cpu.stat` counts every process that ever ran, and `cgroup.kill`
ends them all at once. Elsewhere the processes are tracked: the task runs in its own session and
process group, so one `killpg` reaches a renderer and every helper it spawns; descendants that leave
the group (double forks, daemons) are still the task's: every process ever seen in the tree is
remembered with its create time (which guards against pid reuse) and signalled one by one, and where
the agent is the subreaper of its tasks (`agent/reaper.py`) an orphan that left before it was seen
comes back to the agent and is known by the THRESHER_ATTEMPT_ID its environment inherited.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import psutil

from thresher.agent import reaper
from thresher.agent.cgroup import TaskCgroup

MIB = 1024 * 1024


@dataclass(frozen=True)
class TreeSample:
    """Figures of the tree at one moment: summed RSS, the highest kernel RSS high-water mark of one
    process, and CPU seconds (live processes plus what they already reaped)."""

    rss_mb: float
    hwm_mb: float
    cpu_s: float


class ProcessTree:
    """The live processes of the task whose root (and process group leader) is `root_pid`; with
    `cgroup`, those of its cgroup; `attempt_id` names the orphans the agent adopted as subreaper."""

    def __init__(self, root_pid: int, root_create_time: float, *, attempt_id: object = None,
                 cgroup: TaskCgroup | None = None) -> None:
        self.root_pid = root_pid
        self.cgroup = cgroup
        self._marker = f"THRESHER_ATTEMPT_ID={attempt_id}".encode() if attempt_id is not None else None
        self._tracked: dict[int, float] = {root_pid: root_create_time}  # pid -> create_time of every process seen

    def processes(self) -> list[psutil.Process]:
        """Live processes of the task: its cgroup's; or the child, its descendants, the orphans the
        agent adopted, and every process seen before (descendants that double-forked away still belong
        to the task)."""
        if self.cgroup is not None:
            return _processes(self.cgroup.pids())
        procs: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.root_pid)
            if root.status() != psutil.STATUS_ZOMBIE:
                procs[root.pid] = root
            for child in root.children(recursive=True):
                procs[child.pid] = child
        except psutil.Error:
            pass
        for orphan in self._adopted():
            procs[orphan.pid] = orphan
            try:
                for child in orphan.children(recursive=True):
                    procs[child.pid] = child
            except psutil.Error:
                pass
        for pid, ctime in list(self._tracked.items()):
            if pid in procs:
                continue
            try:
                p = psutil.Process(pid)
                if ctime and abs(p.create_time() - ctime) > 0.01:
                    del self._tracked[pid]  # pid reused by an unrelated process
                    continue
                procs[pid] = p
            except psutil.Error:
                self._tracked.pop(pid, None)
        for p in procs.values():
            if p.pid not in self._tracked:
                try:
                    self._tracked[p.pid] = p.create_time()
                except psutil.Error:
                    pass
        return list(procs.values())

    def _adopted(self) -> list[psutil.Process]:
        """Orphans of this task the agent adopted as subreaper: children of the agent that are not a
        task's root and whose environment names this attempt."""
        if self._marker is None or not reaper.is_subreaper():
            return []
        found = []
        for pid in reaper.own_children():
            if pid == self.root_pid or reaper.is_root(pid) or not _environ_has(pid, self._marker):
                continue
            try:
                found.append(psutil.Process(pid))
            except psutil.Error:
                pass
        return found

    def alive(self) -> list[psutil.Process]:
        """The processes of the tree that still run (zombies excluded), group members included."""
        reaper.reap_orphans()
        if self.cgroup is not None:
            return _processes(self.cgroup.pids())
        alive = [p for p in self.processes() if not_zombie(p)]
        try:  # group members that psutil did not reach (reparented before we saw them)
            os.killpg(self.root_pid, 0)
            if not alive:
                alive_in_group = [p for p in psutil.process_iter() if pgid_of(p.pid) == self.root_pid]
                alive.extend(p for p in alive_in_group if not_zombie(p))
        except (ProcessLookupError, PermissionError):
            pass
        return alive

    def sample(self) -> TreeSample:
        """Sum RSS and CPU over the tree. CPU counts each live process once plus what live processes
        already reaped (children_* times), so short-lived helpers are not lost."""
        rss = 0
        hwm_mb = 0.0
        cpu = 0.0
        for p in self.processes():
            try:
                with p.oneshot():
                    if p.status() == psutil.STATUS_ZOMBIE:
                        continue
                    rss += p.memory_info().rss
                    hwm_mb = max(hwm_mb, vm_hwm_mb(p.pid))
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                continue
        rss_mb = rss / MIB
        if self.cgroup is not None:
            cpu = self.cgroup.cpu_s()  # exact: reaped and orphaned processes included
            anon = self.cgroup.anon_mb()  # exact: shared pages once, page cache left out
            rss_mb = anon if anon is not None else rss_mb
        return TreeSample(rss_mb=rss_mb, hwm_mb=hwm_mb, cpu_s=cpu)

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group and to every known process of the tree (SIGKILL to a
        cgroup: all of it at once, those being forked included)."""
        try:
            os.killpg(self.root_pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            if sig == signal.SIGKILL:
                self.cgroup.kill()
            else:
                self.cgroup.signal(sig)
            return
        for p in self.processes():
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass

    def wait_gone(self, timeout: float) -> None:
        """Return once nothing of the tree runs any more, or after `timeout` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return
            time.sleep(0.02)


def vm_hwm_mb(pid: int) -> float:
    """The kernel's high-water mark of one process's RSS since its exec (Linux), catching spikes
    between two samples; 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _processes(pids: list[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return procs


def _environ_has(pid: int, entry: bytes) -> bool:
    """Whether `entry` (`NAME=value`) is in the environment `pid` started with."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    return env.startswith(entry + b"\0") or (b"\0" + entry + b"\0") in env


def pgid_of(pid: int) -> int | None:
    """The process group of `pid`, or None when it is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def not_zombie(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
