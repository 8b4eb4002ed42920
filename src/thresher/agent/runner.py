"""Run one task attempt as a child process tree and say how it went.

This module is the conductor: it starts the child (child.py), in a cgroup of its own where the agent
has them (cgroup.py), watches it until it and its whole tree (process_tree.py) are gone while obeying
kill requests and the timeout, and decides the result from the exit status, the output (output.py,
progress.py) and the checks that catch a renderer that exits 0 without doing its work (output_checks.py).
The attempt is not over, and its slot not free, until nothing it started runs any more. The moment
the child is reaped, `on_exited` hears its exit status (the agent records it in the spool before
anything else, so an agent killed right then reports the real outcome after its restart, `recovery.py`).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from thresher.agent import reaper, timeline
from thresher.agent.cgroup import CgroupHost, TaskCgroup
from thresher.agent.child import build_env, command_line, resolve_program, spawn_plan
from thresher.agent.memory_guard import oom_kill_count, size
from thresher.agent.output import TaskLog, last_output_line, read_output
from thresher.agent.output_checks import ErrorLineWatch, check_outputs, make_output_folders
from thresher.agent.process_tree import MIB, ProcessTree
from thresher.agent.progress import ProgressParser
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import file_key
from thresher.agent.wire import MAX_REASON, TaskResult, utc_now_iso
from thresher.model.failure_summary import LAST_LINE
from thresher.model.states import AttemptState
from thresher.wire.agent import Assignment

log = logging.getLogger(__name__)

_FIRST_SAMPLE_S = 0.05  # the first sample comes early: short tasks get figures too
_NO_PIDFD_POLL_S = 0.02  # without a pidfd, how often the watch loop looks for the child's exit
_LEFTOVER_KILL_WAIT_S = 2.0
_READER_JOIN_S = 2.0


class TaskRunner:
    """Runs one attempt. Call `run()` from a thread of its own; other threads may call `kill()` and
    read `stats()` at any time."""

    def __init__(self, assignment: Assignment, log_path: Path, settings: AgentSettings | None = None, *,
                 hide_gpus: bool = False, on_started: Callable[[int, float, str | None], None] | None = None,
                 on_output: Callable[[int], None] | None = None, cpus: list[int] | None = None,
                 cgroups: CgroupHost | None = None,
                 on_exited: Callable[[dict[str, Any]], None] | None = None) -> None:
        settings = settings or AgentSettings()
        self.assignment = assignment
        self.cpus = cpus  # the CPUs the task is pinned to (`pin_cpus`), or None
        self.log_path = Path(log_path)
        self.hide_gpus = hide_gpus
        self.kill_grace_s = settings.kill_grace_s  # lowered by the daemon at shutdown
        self.sample_s = settings.process_sample_s
        self._leftover_grace_s = settings.leftover_grace_s
        self._output_mtime_slack_s = settings.output_mtime_slack_s
        self._on_started = on_started
        self._on_exited = on_exited
        self._cgroups = cgroups  # where this attempt's cgroup goes; None: process tracking only
        self._memory_max = settings.task_memory_max
        self._cgroup: TaskCgroup | None = None
        self._prepared = False
        self._root_released = False
        self._progress = ProgressParser(assignment.progress_patterns, assignment.frames)
        self._errors = ErrorLineWatch(assignment.error_patterns)
        self._log = TaskLog(self.log_path, on_output)

        self._lock = threading.Lock()
        self._kill_request: tuple[AttemptState, str] | None = None  # (status, reason)
        self._wake_r, self._wake_w = os.pipe()
        self._wake_closed = False
        os.set_blocking(self._wake_w, False)
        self._pid: int | None = None
        self._tree: ProcessTree | None = None
        self._cpu_s = 0.0
        self._rss_mb = 0.0
        self._peak_rss_mb = 0.0
        self._agent_rss_mb = 0.0
        self._started_wall: float | None = None  # time.time() just before the child started
        self._arrived = time.monotonic()  # the assignment reached the agent (the runner is made then)
        self._waited_s = 0.0  # from then to the child's start: preparing, and waiting for room
        self._oom_kills_before = 0  # the kernel's OOM kill count when the child started
        self._cg_oom_kills = 0  # the OOM kills in the attempt's cgroup, read before it is removed
        self.out_of_memory = False  # the memory guard stopped it, or the kernel's OOM killer
        self.started = threading.Event()
        self.finished = threading.Event()
        self.result: TaskResult | None = None

    # -- called from other threads --

    def kill(self, status: AttemptState = AttemptState.KILLED, reason: str = "killed by server") -> None:
        """Ask for the tree to be ended (SIGTERM, grace, SIGKILL). The first request wins."""
        with self._lock:
            if self._kill_request is None:
                self._kill_request = (status, reason)
            if self._wake_closed:
                return  # finished: the fd number may already belong to another file
            try:
                os.write(self._wake_w, b"k")
            except OSError:
                pass

    def stop_out_of_memory(self, reason: str) -> None:
        """The memory guard (`agent/memory_guard.py`) stops this attempt: failed, and out of memory."""
        with self._lock:
            if self._kill_request is None:
                self.out_of_memory = True
        self.kill(AttemptState.FAILED, reason)

    @property
    def kill_requested(self) -> bool:
        return self._kill_request is not None

    @property
    def rss_mb(self) -> float:
        """The tree's RSS at the last sample."""
        return self._rss_mb

    def stats(self) -> dict[str, Any]:
        """Live figures for the heartbeat."""
        return {"attempt_id": self.assignment.attempt_id, "cpu_s": round(self._cpu_s, 3),
                "rss_mb": round(self._rss_mb, 1), "progress": self.progress}

    @property
    def progress(self) -> float | None:
        """The task's percent done as its output last said, or None."""
        return self._progress.percent

    @property
    def pid(self) -> int | None:
        return self._pid

    # -- the run --

    def prepare(self) -> None:
        """Everything a start needs that starts nothing: the log opened, the output folders made, the
        cgroup made. The agent calls it before a task waits for room (`tasks_ahead`, `agent/room.py`), so
        that when its turn comes only the process start is left (a cgroup's mkdir waits behind other
        tasks' moves between cgroups on kernels without `favordynmods`: 5-15 ms on a busy node). `run`
        calls it when nobody did; a second call does nothing."""
        if self._prepared:
            return
        a = self.assignment
        self._log.open()  # may raise (a full disk): `run` then reports the attempt failed
        self._prepared = True
        make_output_folders(a.outputs, a.cwd)
        if self._cgroups is not None and self._kill_request is None:
            self._cgroup = self._cgroups.create(file_key(a.attempt_id), a.memory_mb if self._memory_max else None)

    def run(self, *, release: bool = True) -> TaskResult:
        """Start the child, watch it until it and its tree are gone, return the result. With `release`
        False the attempt's cgroup, empty by then, is left for `release()`: the agent removes it after
        the report is spooled, since an rmdir too can wait behind other tasks' cgroup moves."""
        try:
            result = self._run()
        except Exception as exc:  # never leave the caller without a result
            log.exception("attempt %s: runner error", self.assignment.attempt_id)
            self._kill_tree_now()
            result = self._result(AttemptState.FAILED, None, f"agent error: {exc}")
        finally:
            self._log.close()
            with self._lock:
                self._wake_closed = True
                for fd in (self._wake_r, self._wake_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            if release:
                self.release()
        self.result = result
        self.finished.set()
        return result

    def release(self) -> None:
        """Remove the attempt's cgroup (what still runs in it is killed first); once the run is over."""
        self._drop_cgroup()

    def _scan_line(self, line: str) -> None:
        """One line of output: the first error line is kept, progress lines move the percent."""
        self._errors.feed(line)
        self._progress.feed(line)

    def _run(self) -> TaskResult:
        a = self.assignment
        self.prepare()
        if self._kill_request is not None:
            status, reason = self._kill_request
            self._log.note(f"not started: {reason}")
            return self._result(status, None, reason)
        try:
            argv = command_line(a)
        except ValueError as exc:
            self._log.note(f"cannot start: {exc}")
            return self._result(AttemptState.FAILED, None, f"cannot start: {exc}")
        if a.cwd is not None and not os.path.isdir(a.cwd):
            reason = f"working directory does not exist: {a.cwd}"
            self._log.note(reason)
            return self._result(AttemptState.FAILED, None, reason)
        try:
            # A forked child's rusage maxrss starts at the agent's own RSS (the pages it shares before
            # exec); remember that to tell a real peak from this artefact.
            self._agent_rss_mb = psutil.Process().memory_info().rss / MIB
        except psutil.Error:
            self._agent_rss_mb = 0.0
        self._started_wall = time.time()
        self._waited_s = time.monotonic() - self._arrived
        self._oom_kills_before = oom_kill_count()
        cg = self._cgroup
        env = build_env(a, hide_gpus=self.hide_gpus)
        exec_argv, preexec = spawn_plan(argv, os.getpid(), self.cpus, cg.procs_file if cg else None)
        try:
            if preexec is None:
                resolve_program(argv[0], a.cwd, env)  # what Popen itself would refuse, said the same way
            with reaper.spawn_lock:  # registered before the orphan reaper can see it exit
                proc = subprocess.Popen(
                    exec_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    cwd=a.cwd, env=env, start_new_session=True, preexec_fn=preexec, close_fds=True,
                )
                reaper.register_root(proc.pid)
            timeline.mark("started", a.attempt_id)
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"cannot start {argv[0]}: {getattr(exc, 'strerror', None) or exc}"
            self._log.note(reason)
            return self._result(AttemptState.FAILED, None, reason)
        try:
            return self._follow(proc, start_wall=self._started_wall)
        finally:
            if not self._root_released:
                reaper.release_root(proc.pid)

    def _drop_cgroup(self) -> None:
        """Remove the attempt's cgroup (what still runs in it is killed first)."""
        if self._cgroup is not None:
            self._cg_oom_kills = self._cgroup.oom_kills()
            self._cgroup.remove()
            self._cgroup = None

    def _follow(self, proc: subprocess.Popen[bytes], start_wall: float) -> TaskResult:
        """From the child's start to its verdict: watch it, end what it left, judge."""
        a = self.assignment
        cg = self._cgroup
        if cg is not None and not cg.join(proc.pid):
            self._drop_cgroup()  # the tree is tracked the other way
            cg = None
        self._pid = proc.pid
        start = time.monotonic()
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = 0.0
        tree = self._tree = ProcessTree(proc.pid, create_time, attempt_id=a.attempt_id, cgroup=cg)
        if self._on_started is not None:
            try:
                self._on_started(proc.pid, create_time, str(cg.path) if cg is not None else None)
            except Exception:
                log.exception("attempt %s: on_started failed", a.attempt_id)
        self.started.set()

        assert proc.stdout is not None
        reader_stop = threading.Event()
        on_line = self._scan_line if (self._progress or self._errors) else None
        reader = threading.Thread(target=read_output,
                                  args=(proc.stdout.fileno(), reader_stop, self._log, on_line, a.attempt_id),
                                  name=f"output-{a.attempt_id}", daemon=True)
        reader.start()

        status_code, rusage, outcome = self._watch(proc, tree, start)
        timeline.mark("exit_seen", a.attempt_id)
        proc.returncode = status_code  # we reaped it ourselves with wait4
        reaper.release_root(proc.pid)
        self._root_released = True
        exit_code = os.waitstatus_to_exitcode(status_code) if status_code is not None else None
        ru_cpu = rusage.ru_utime + rusage.ru_stime if rusage is not None else 0.0
        ru_rss_mb = rusage.ru_maxrss / 1024.0 if rusage is not None else 0.0  # KiB on Linux
        self._cpu_s = max(self._cpu_s, ru_cpu)
        if ru_rss_mb > self._agent_rss_mb * 1.1 + 1.0:
            self._peak_rss_mb = max(self._peak_rss_mb, ru_rss_mb)
        if self._on_exited is not None:
            try:
                self._on_exited({"exit_code": exit_code, "outcome": list(outcome) if outcome else None,
                                 "started_wall": start_wall, "ended_at": utc_now_iso(),
                                 "cpu_s": round(self._cpu_s, 3), "peak_rss_mb": round(self._peak_rss_mb, 1)})
            except Exception:
                log.exception("attempt %s: on_exited failed", a.attempt_id)

        # Leftovers (background jobs of the task) hold the pipe open and use the node: end them.
        if tree.alive():
            tree.signal(signal.SIGTERM)
            tree.wait_gone(min(self.kill_grace_s, self._leftover_grace_s))
            if tree.alive():
                tree.signal(signal.SIGKILL)
                tree.wait_gone(_LEFTOVER_KILL_WAIT_S)
        if cg is not None:
            self._sample(tree)  # the cgroup's exact CPU, every process it ever had included
        reaper.reap_orphans()
        reader.join(_READER_JOIN_S)
        reader_stop.set()
        reader.join(_READER_JOIN_S)
        try:
            proc.stdout.close()
        except OSError:
            pass
        if self._cgroup is not None:  # the verdict needs its OOM kills; removing it can wait (`release`)
            self._cgroup.empty()
            self._cg_oom_kills = self._cgroup.oom_kills()
        timeline.mark("drained", a.attempt_id)
        verdict = self._judge(exit_code, outcome)
        timeline.mark("judged", a.attempt_id)
        return verdict

    def _judge(self, exit_code: int | None, outcome: tuple[AttemptState, str] | None) -> TaskResult:
        """The result of a child that is gone: the agent's own reason first, then the output's
        verdict, then the exit status, then the outputs on disk."""
        a = self.assignment
        if outcome is not None:
            status, reason = outcome
            self._log.note(reason)
            return self._result(status, exit_code, reason)
        if self._errors.first is not None:
            return self._result(AttemptState.FAILED, exit_code, f"error line: {self._errors.first}")
        if exit_code in (-signal.SIGKILL, 128 + signal.SIGKILL) and (
                oom_kill_count() > self._oom_kills_before or self._cg_oom_kills > 0):
            # A SIGKILL the agent did not send (to the child, or to a shell's child: 137) while the kernel's
            # OOM kill count went up: the OOM killer.
            self.out_of_memory = True
            reason = f"out of memory: killed by the kernel's OOM killer (peak {size(self._peak_rss_mb)})"
            self._log.note(reason)
            return self._result(AttemptState.FAILED, exit_code, reason)
        if exit_code != 0:
            return self._result(AttemptState.FAILED, exit_code, exit_reason(exit_code, last_output_line(self._log.path)))
        missing = check_outputs(a.outputs, a.cwd, self._started_wall, self._output_mtime_slack_s)
        if missing is not None:
            self._log.note(missing)
            return self._result(AttemptState.FAILED, exit_code, missing)
        return self._result(AttemptState.SUCCEEDED, exit_code, None)

    def _watch(self, proc: subprocess.Popen[bytes], tree: ProcessTree, start: float
               ) -> tuple[int | None, Any, tuple[AttemptState, str] | None]:
        """Wait for the child while sampling, enforcing the timeout and obeying kill requests.

        Returns (wait status, rusage, (status, reason) when the agent ended it)."""
        a = self.assignment
        sel = selectors.DefaultSelector()
        pidfd = None
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            pidfd = None
        sel.register(self._wake_r, selectors.EVENT_READ)
        outcome: tuple[AttemptState, str] | None = None
        term_deadline: float | None = None
        sigkilled = False
        next_sample = time.monotonic() + min(_FIRST_SAMPLE_S, self.sample_s)
        deadline = start + a.timeout_s if a.timeout_s else None
        try:
            while True:
                pid, status_code, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid != 0:
                    return status_code, rusage, outcome
                now = time.monotonic()
                if now >= next_sample:
                    self._sample(tree)
                    next_sample = now + self.sample_s
                if outcome is None:
                    with self._lock:
                        request = self._kill_request
                    if request is not None:
                        outcome = request
                    elif deadline is not None and now >= deadline:
                        outcome = (AttemptState.FAILED, f"timed out after {a.timeout_s:g} s")
                    if outcome is not None:
                        log.info("attempt %s: ending the process tree (%s)", a.attempt_id, outcome[1])
                        self._sample(tree)  # catch descendants born since the last sample
                        tree.signal(signal.SIGTERM)
                        term_deadline = now + self.kill_grace_s
                if term_deadline is not None and not sigkilled and now >= term_deadline:
                    tree.signal(signal.SIGKILL)
                    sigkilled = True
                wakeups = [next_sample]
                if deadline is not None and outcome is None:
                    wakeups.append(deadline)
                if term_deadline is not None and not sigkilled:
                    wakeups.append(term_deadline)
                timeout = max(0.0, min(wakeups) - time.monotonic())
                if pidfd is None:
                    timeout = min(timeout, _NO_PIDFD_POLL_S)
                for key, _ in sel.select(timeout):
                    if key.fd == self._wake_r:
                        try:
                            os.read(self._wake_r, 4096)
                        except OSError:
                            pass
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)

    def _sample(self, tree: ProcessTree) -> None:
        sample = tree.sample()
        self._rss_mb = sample.rss_mb
        self._peak_rss_mb = max(self._peak_rss_mb, sample.hwm_mb, sample.rss_mb)
        self._cpu_s = max(self._cpu_s, sample.cpu_s)

    def _kill_tree_now(self) -> None:
        if self._tree is None:
            return
        try:
            self._tree.signal(signal.SIGKILL)
        except Exception:
            pass
        try:
            self._drop_cgroup()
        except Exception:
            pass

    def _result(self, status: AttemptState, exit_code: int | None, reason: str | None) -> TaskResult:
        return TaskResult(
            attempt_id=self.assignment.attempt_id, status=status, exit_code=exit_code,
            cpu_s=self._cpu_s, peak_rss_mb=self._peak_rss_mb,
            reason=reason[:MAX_REASON] if reason else None, log_size=self._log.size,
            ended_at=utc_now_iso(), out_of_memory=self.out_of_memory, waited_s=self._waited_s,
        )


def exit_reason(exit_code: int | None, last_line: str | None = None) -> str:
    """Why a non-zero exit failed the attempt: `exit code 3`, `killed by signal SIGSEGV`, with the last line
    the task printed: `exit code 3 (last line: ERROR: cannot open /tex/a.exr)` (its failures are grouped
    by what comes before it: `failure_summary.normalize_reason`)."""
    if exit_code is not None and exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = str(-exit_code)
        said = f"killed by signal {name}"
    else:
        said = f"exit code {exit_code}"
    return f"{said}{LAST_LINE}{last_line})" if last_line else said
