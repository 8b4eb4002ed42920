"""The agent as the subreaper of its tasks (Linux): what a task orphans comes back to the agent.

Why: a helper that double-forks and calls `setsid` leaves its task's process group and parent chain;
without a subreaper init adopts it and nobody knows it was the task's. With PR_SET_CHILD_SUBREAPER the
kernel hands such orphans to the agent instead: `process_tree.py` finds them among the agent's own
children and ends them with their attempt, and the agent, now their parent, reaps them when they exit
(`reap_orphans`), or they would stay zombies.

Only the agent daemon becomes a subreaper (`become_subreaper`); a program that merely uses a
`TaskRunner` (the tests) does not, because reaping children it does not know would steal the exit
status of its other subprocesses. A task's root process is registered from its start until its runner
reaped it (`spawn_lock`, `register_root`, `release_root`), so the reaper never takes one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading

import psutil

log = logging.getLogger("thresher.agent")

_PR_SET_CHILD_SUBREAPER = 36

spawn_lock = threading.Lock()  # held while a root is started and registered, and while reaping
_roots: set[int] = set()
_active = False


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants (Linux 3.4+); False where not possible."""
    global _active
    if _active:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            log.warning("cannot become the subreaper of the tasks: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError) as exc:
        log.warning("cannot become the subreaper of the tasks: %s", exc)
        return False
    _active = True
    return True


def is_subreaper() -> bool:
    return _active


def register_root(pid: int) -> None:
    """A task's root process: its runner reaps it (call with `spawn_lock` held, right after the start)."""
    _roots.add(pid)


def release_root(pid: int) -> None:
    with spawn_lock:
        _roots.discard(pid)


def own_children() -> list[int]:
    """The pids of this process's children (task roots and adopted orphans)."""
    me = os.getpid()
    pids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{me}/task")
        for tid in tasks:
            with open(f"/proc/{me}/task/{tid}/children", encoding="ascii") as f:
                pids += [int(x) for x in f.read().split()]
        return pids
    except (OSError, ValueError):  # no CONFIG_PROC_CHILDREN: the slow way, over every process
        pass
    try:
        return [p.pid for p in psutil.Process(me).children()]
    except psutil.Error:
        return []


def is_root(pid: int) -> bool:
    return pid in _roots


def reap_orphans() -> int:
    """Reap adopted orphans that exited (never a registered root); returns how many. One syscall when
    there is nothing to do: the kernel names one exited child without reaping it (WNOWAIT)."""
    if not _active:
        return 0
    reaped = 0
    with spawn_lock:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return reaped
            if info is None or info.si_pid in _roots:
                return reaped  # nothing exited, or a root its runner is about to reap
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                return reaped
