"""`thresher server --workers N`: several server processes on one address, and the parent that keeps them.

Why a parent that forks rather than uvicorn's own workers: each process builds its own `ServerContext`
(connections, the leader lock, the peer news and writer threads) after the fork, from the settings the
parent already checked, and a worker that dies is started again, with a message, while the others serve
on. The parent (`main.serve`) binds the socket, migrates the database and makes the data folder's tokens,
session secret and `server.json`; then `Supervisor` forks the workers. They all accept on the one
listening socket (the kernel hands each connection to one of them) and share the data folder: nothing in
it may differ between them (the tokens and the session secret must be the same for every process; a
one-time login link is redeemed by a rename in whichever process gets it), and `server.json` names the
parent. Each worker hears the others' news through PostgreSQL (`server/peers.py`), like servers on
different machines; one of them is the leader.

The parent holds no thread and no connection when it forks and does nothing but wait. SIGTERM or SIGINT
stops every worker (SIGTERM: uvicorn's graceful stop), then the parent; Ctrl-C reaches the parent only
(each worker leads its own process group), so every worker gets exactly one signal. A worker whose parent
is gone (killed -9) stops itself within a second.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Callable, NoReturn

log = logging.getLogger("thresher.server.workers")

#: A worker that served this long before it died is started again at once; one dying sooner waits
#: `RESTART_DELAYS_S` (1, 2, 5, 10, then 30 s) while it keeps dying: a database that is down, a
#: setting that breaks the start, must not make a busy loop of forks.
STEADY_S = 10.0
RESTART_DELAYS_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
#: How long the workers get to stop after SIGTERM before they are killed (uvicorn waits 3 s for open
#: connections, then the app's shutdown drains the writers).
STOP_GRACE_S = 15.0
POLL_S = 0.1


def restart_delay(quick_deaths: int) -> float:
    """Seconds before a worker is started again after it died `quick_deaths` times in a row, each time
    within `STEADY_S` of its start (0 for one that had served steadily)."""
    return RESTART_DELAYS_S[min(max(quick_deaths, 0), len(RESTART_DELAYS_S) - 1)]


def exit_text(status: int) -> str:
    """How a process ended, from `os.waitpid`'s status: `exited with status 1`, `was killed by SIGKILL`."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


@dataclass
class Worker:
    index: int
    pid: int = 0
    started: float = 0.0
    quick_deaths: int = 0
    due: float | None = 0.0  # when to start it (again); None while it runs


class Supervisor:
    """Runs `work(index)` in `count` forked processes until SIGTERM/SIGINT; starts a dead one again."""

    def __init__(self, count: int, work: Callable[[int], None], *, grace_s: float = STOP_GRACE_S) -> None:
        self.workers = [Worker(i + 1) for i in range(count)]
        self.work = work
        self.grace_s = grace_s
        self._stopping = False

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self._stopping:
                self._reap()
                self._start_due()
                time.sleep(POLL_S)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.workers))
        self._stopping = True

    def _start_due(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.due is not None and worker.due <= now and not self._stopping:
                self._start(worker)

    def _start(self, worker: Worker) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(worker.index, parent, self.work)  # never returns
        worker.pid, worker.started, worker.due = pid, time.monotonic(), None
        log.info("worker %d started (pid %d)", worker.index, pid)

    def _by_pid(self, pid: int) -> Worker | None:
        return next((w for w in self.workers if w.pid == pid), None)

    def _reap(self) -> None:
        """Note each worker that ended; plan its start again (`restart_delay`)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._by_pid(pid)
            if worker is None:
                continue
            now = time.monotonic()
            served = now - worker.started
            worker.quick_deaths = 0 if served >= STEADY_S else worker.quick_deaths + 1
            delay = restart_delay(worker.quick_deaths)
            worker.pid, worker.due = 0, now + delay
            if self._stopping:
                continue
            when = f" in {delay:g} s" if delay else ""
            log.warning("worker %d (pid %d) %s after %.1f s; starting it again%s",
                        worker.index, pid, exit_text(status), served, when)

    def _stop_all(self) -> None:
        """SIGTERM to every live worker; SIGKILL to those still there after `grace_s`."""
        self._stopping = True
        for worker in self.workers:
            if worker.pid:
                _signal(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while any(w.pid for w in self.workers) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        for worker in self.workers:
            if worker.pid:
                log.warning("worker %d (pid %d) did not stop in %.0f s: killed", worker.index, worker.pid,
                            self.grace_s)
                _signal(worker.pid, signal.SIGKILL)
                try:
                    os.waitpid(worker.pid, 0)
                except ChildProcessError:
                    pass
                worker.pid = 0
        log.info("every worker stopped")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _quit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _watch_parent(parent: int) -> None:
    """Stop this worker (as SIGTERM would) once its parent is gone: its orphan would serve on alone."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="thresher-parent-watch", daemon=True).start()


def _child(index: int, parent: int, work: Callable[[int], None]) -> NoReturn:
    """The forked worker: its own process group, its index in every log line, `work`, then `_exit` (the
    parent's `finally` blocks, such as removing `server.json`, are not this process's to run)."""
    code = 1
    try:
        os.setpgrp()
        # uvicorn calls the handlers it found again once it stopped: a plain exit then, status 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _quit)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(
                f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s"))
        _watch_parent(parent)
        work(index)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - told, then this worker ends and the parent starts another
        log.exception("worker %d failed", index)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
