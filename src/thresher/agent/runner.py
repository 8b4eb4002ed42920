"""Run one task attempt as a child process tree and say how it went.

Why it is built this way:

- The task gets its own session and process group, so the whole tree (a renderer and every helper it
  spawns) can be signalled at once; descendants that leave the group are tracked with psutil and
  signalled one by one.
- The child asks the kernel for SIGKILL when its parent thread dies (PR_SET_PDEATHSIG), so a
  `kill -9` of the agent does not leave a render running unaccounted; the thread that forks is the
  one that waits for the child, so it lives exactly as long as the child.
- Output (stdout and stderr merged) is decoded with `errors="replace"` and written as UTF-8 to a local
  log file. The file is the source of truth for log streaming, so a server outage loses nothing.
- Exit status 0 is not enough: an error line in the output or a missing, empty or stale output file
  (one not written since the attempt started) makes the attempt fail (a renderer that exits 0 without
  writing its frame is the classic farm lie; last week's frame still on disk must not hide it).
"""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import datetime as _dt
import logging
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_PR_SET_PDEATHSIG = 1
_MAX_LINE = 64 * 1024  # a "line" without newline longer than this is scanned and dropped
_MAX_REASON = 500
# An output must have been modified at or after the attempt started, less this much: file servers and
# filesystems keep coarse or slightly skewed timestamps (FAT and some SMB shares count in 2 s steps).
OUTPUT_MTIME_SLACK_S = 2.0


def utc_now_iso() -> str:
    """Times in reports are ISO 8601 UTC strings, as the protocol says."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


# --- the child side -----------------------------------------------------------------------------

def _load_prctl() -> Callable[..., int] | None:
    """Resolve prctl once in the parent: the child between fork and exec must not load libraries."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.prctl
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _make_child_setup(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: die with the agent. Checks the parent after arming, closing the race where the
    agent died between fork and prctl."""

    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(137)

    return setup


# --- what comes in and what goes out ------------------------------------------------------------

@dataclass
class Assignment:
    """One unit of work from `POST /agent/work` (see docs/protocol.md)."""

    attempt_id: Any
    argv: list[str]
    task_id: Any = None
    job_id: Any = None
    job_name: str = ""
    layer: str = ""
    frames: str = ""
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_s: float | None = None
    gpus: list[int] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    progress_patterns: list[str] = field(default_factory=list)
    error_patterns: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Assignment":
        """Lenient parse: unknown keys are ignored, nulls become defaults (servers evolve)."""
        return cls(
            attempt_id=data["attempt_id"],
            argv=[str(a) for a in (data.get("argv") or [])],
            task_id=data.get("task_id"),
            job_id=data.get("job_id"),
            job_name=str(data.get("job_name") or ""),
            layer=str(data.get("layer") or ""),
            frames=str(data.get("frames") or ""),
            shell=bool(data.get("shell") or False),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            cwd=data.get("cwd") or None,
            timeout_s=float(data["timeout_s"]) if data.get("timeout_s") else None,
            gpus=[int(g) for g in (data.get("gpus") or [])],
            outputs=[str(p) for p in (data.get("outputs") or [])],
            progress_patterns=list(data.get("progress_patterns") or []),
            error_patterns=list(data.get("error_patterns") or []),
        )


@dataclass
class TaskResult:
    """How an attempt ended; `to_report()` is one entry of `POST /agent/finish`."""

    attempt_id: Any
    status: str  # succeeded | failed | killed | lost
    exit_code: int | None
    cpu_s: float
    peak_rss_mb: float
    reason: str | None
    log_size: int
    ended_at: str

    def to_report(self) -> dict[str, Any]:
        return {
            "attempt_id": self.attempt_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "reason": self.reason,
            "log_size": self.log_size,
            "ended_at": self.ended_at,
        }


def _compile(patterns: list[str], what: str) -> list[re.Pattern[str]]:
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            log.warning("ignoring invalid %s pattern %r: %s", what, p, exc)
    return compiled


def build_env(assignment: Assignment, *, hide_gpus: bool) -> dict[str, str]:
    """os.environ + a few THRESHER_* facts + the assignment's env + the GPU mask.

    CUDA_VISIBLE_DEVICES is set to the assigned GPUs; when none were assigned on a node that has GPUs
    it is set to "" so a task cannot grab a GPU that the scheduler gave to another task. The indices
    are NVML's, which count GPUs in PCI bus order; CUDA counts fastest-first unless told otherwise,
    so on a node with mixed GPU models CUDA_DEVICE_ORDER=PCI_BUS_ID makes both name the same cards.
    """
    env = dict(os.environ)
    env["THRESHER_ATTEMPT_ID"] = str(assignment.attempt_id)
    if assignment.task_id is not None:
        env["THRESHER_TASK_ID"] = str(assignment.task_id)
    if assignment.job_id is not None:
        env["THRESHER_JOB_ID"] = str(assignment.job_id)
    if assignment.frames:
        env["THRESHER_FRAMES"] = assignment.frames
    env.update(assignment.env)
    if assignment.gpus:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in assignment.gpus)
    elif hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def command_line(assignment: Assignment) -> list[str]:
    """The argv to exec. A shell only when the layer asked for one (rule 3)."""
    if assignment.shell:
        if not assignment.argv:
            raise ValueError("shell assignment without a command line")
        return ["/bin/sh", "-c", assignment.argv[0], "sh", *assignment.argv[1:]]
    if not assignment.argv:
        raise ValueError("empty argv")
    return list(assignment.argv)


# --- the runner ---------------------------------------------------------------------------------

class TaskRunner:
    """Runs one attempt. Call `run()` from a thread of its own; other threads may call `kill()` and
    read `stats()` at any time."""

    def __init__(self, assignment: Assignment, log_path: Path, *, hide_gpus: bool = False,
                 kill_grace_s: float = 5.0, sample_s: float = 0.5,
                 on_started: Callable[[int, float], None] | None = None,
                 on_output: Callable[[int], None] | None = None) -> None:
        self.assignment = assignment
        self.log_path = Path(log_path)
        self.hide_gpus = hide_gpus
        self.kill_grace_s = kill_grace_s
        self.sample_s = sample_s
        self._on_started = on_started
        self._on_output = on_output
        self._progress_res = _compile(assignment.progress_patterns, "progress")
        self._error_res = _compile(assignment.error_patterns, "error")

        self._lock = threading.Lock()
        self._kill_request: tuple[str, str] | None = None  # (status, reason)
        self._wake_r, self._wake_w = os.pipe()
        self._wake_closed = False
        os.set_blocking(self._wake_w, False)
        self._pid: int | None = None
        self._tracked: dict[int, float] = {}  # pid -> create_time of every process seen in the tree
        self._cpu_s = 0.0
        self._rss_mb = 0.0
        self._peak_rss_mb = 0.0
        self._agent_rss_mb = 0.0
        self.progress: float | None = None
        self._frames: list[int] | None = None  # the chunk's frames, for frame-aware progress
        self._frame_share: tuple[float, float] | None = None  # (done share before this frame, its share)
        self._error_line: str | None = None
        self._started_wall: float | None = None  # time.time() just before the child started
        self._log_file: Any = None
        self._log_size = 0
        self._log_lock = threading.Lock()
        self.started = threading.Event()
        self.finished = threading.Event()
        self.result: TaskResult | None = None

    # -- called from other threads --

    def kill(self, status: str = "killed", reason: str = "killed by server") -> None:
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

    def stats(self) -> dict[str, Any]:
        """Live figures for the heartbeat."""
        return {"attempt_id": self.assignment.attempt_id, "cpu_s": round(self._cpu_s, 3),
                "rss_mb": round(self._rss_mb, 1), "progress": self.progress}

    @property
    def pid(self) -> int | None:
        return self._pid

    # -- the run --

    def run(self) -> TaskResult:
        """Start the child, watch it until it and its tree are gone, return the result."""
        try:
            result = self._run()
        except Exception as exc:  # never leave the caller without a result
            log.exception("attempt %s: runner error", self.assignment.attempt_id)
            self._kill_tree_now()
            result = self._result("failed", None, f"agent error: {exc}")
        finally:
            self._close_log()
            with self._lock:
                self._wake_closed = True
                for fd in (self._wake_r, self._wake_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        self.result = result
        self.finished.set()
        return result

    def _run(self) -> TaskResult:
        a = self.assignment
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb", buffering=0)
        if self._kill_request is not None:
            status, reason = self._kill_request
            self._note(f"not started: {reason}")
            return self._result(status, None, reason)
        try:
            argv = command_line(a)
        except ValueError as exc:
            self._note(f"cannot start: {exc}")
            return self._result("failed", None, f"cannot start: {exc}")
        if a.cwd is not None and not os.path.isdir(a.cwd):
            reason = f"working directory does not exist: {a.cwd}"
            self._note(reason)
            return self._result("failed", None, reason)
        self._make_output_folders()
        try:
            # A forked child's rusage maxrss starts at the agent's own RSS (the pages it shares before
            # exec); remember that to tell a real peak from this artefact.
            self._agent_rss_mb = psutil.Process().memory_info().rss / MIB
        except psutil.Error:
            self._agent_rss_mb = 0.0
        self._started_wall = time.time()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=a.cwd, env=build_env(a, hide_gpus=self.hide_gpus), start_new_session=True,
                preexec_fn=_make_child_setup(os.getpid()), close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"cannot start {argv[0]}: {getattr(exc, 'strerror', None) or exc}"
            self._note(reason)
            return self._result("failed", None, reason)

        self._pid = proc.pid
        start = time.monotonic()
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = 0.0
        self._tracked[proc.pid] = create_time
        if self._on_started is not None:
            try:
                self._on_started(proc.pid, create_time)
            except Exception:
                log.exception("attempt %s: on_started failed", a.attempt_id)
        self.started.set()

        assert proc.stdout is not None
        reader_stop = threading.Event()
        reader = threading.Thread(target=self._read_output, args=(proc.stdout.fileno(), reader_stop),
                                  name=f"output-{a.attempt_id}", daemon=True)
        reader.start()

        status_code, rusage, outcome = self._watch(proc, start)
        proc.returncode = status_code  # we reaped it ourselves with wait4

        # Leftovers (background jobs of the task) hold the pipe open and use the node: end them.
        leftovers = self._alive_tree()
        if leftovers:
            self._signal_tree(signal.SIGTERM)
            self._wait_gone(min(self.kill_grace_s, 1.0))
            if self._alive_tree():
                self._signal_tree(signal.SIGKILL)
                self._wait_gone(2.0)
        reader.join(2.0)
        reader_stop.set()
        reader.join(2.0)
        try:
            proc.stdout.close()
        except OSError:
            pass

        ru_cpu = rusage.ru_utime + rusage.ru_stime if rusage is not None else 0.0
        ru_rss_mb = rusage.ru_maxrss / 1024.0 if rusage is not None else 0.0  # KiB on Linux
        self._cpu_s = max(self._cpu_s, ru_cpu)
        if ru_rss_mb > self._agent_rss_mb * 1.1 + 1.0:
            self._peak_rss_mb = max(self._peak_rss_mb, ru_rss_mb)

        exit_code = os.waitstatus_to_exitcode(status_code) if status_code is not None else None
        if outcome is not None:
            status, reason = outcome
            self._note(reason)
            return self._result(status, exit_code, reason)
        if self._error_line is not None:
            return self._result("failed", exit_code, f"error line: {self._error_line}")
        if exit_code != 0:
            if exit_code is not None and exit_code < 0:
                try:
                    name = signal.Signals(-exit_code).name
                except ValueError:
                    name = str(-exit_code)
                reason = f"killed by signal {name}"
            else:
                reason = f"exit code {exit_code}"
            return self._result("failed", exit_code, reason)
        missing = self._check_outputs()
        if missing is not None:
            self._note(missing)
            return self._result("failed", exit_code, missing)
        return self._result("succeeded", exit_code, None)

    def _watch(self, proc: subprocess.Popen[bytes], start: float) -> tuple[int | None, Any, tuple[str, str] | None]:
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
        outcome: tuple[str, str] | None = None
        term_deadline: float | None = None
        sigkilled = False
        next_sample = time.monotonic() + min(0.05, self.sample_s)
        deadline = start + a.timeout_s if a.timeout_s else None
        try:
            while True:
                pid, status_code, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid != 0:
                    return status_code, rusage, outcome
                now = time.monotonic()
                if now >= next_sample:
                    self._sample()
                    next_sample = now + self.sample_s
                if outcome is None:
                    with self._lock:
                        request = self._kill_request
                    if request is not None:
                        outcome = request
                    elif deadline is not None and now >= deadline:
                        outcome = ("failed", f"timed out after {a.timeout_s:g} s")
                    if outcome is not None:
                        log.info("attempt %s: ending the process tree (%s)", a.attempt_id, outcome[1])
                        self._sample()  # catch descendants born since the last sample
                        self._signal_tree(signal.SIGTERM)
                        term_deadline = now + self.kill_grace_s
                if term_deadline is not None and not sigkilled and now >= term_deadline:
                    self._signal_tree(signal.SIGKILL)
                    sigkilled = True
                wakeups = [next_sample]
                if deadline is not None and outcome is None:
                    wakeups.append(deadline)
                if term_deadline is not None and not sigkilled:
                    wakeups.append(term_deadline)
                timeout = max(0.0, min(wakeups) - time.monotonic())
                if pidfd is None:
                    timeout = min(timeout, 0.02)
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

    # -- process tree --

    def _tree(self) -> list[psutil.Process]:
        """Live processes of the task: the child, its descendants, and every process seen before
        (descendants that double-forked away still belong to the task)."""
        procs: dict[int, psutil.Process] = {}
        if self._pid is not None:
            try:
                root = psutil.Process(self._pid)
                if root.status() != psutil.STATUS_ZOMBIE:
                    procs[root.pid] = root
                for child in root.children(recursive=True):
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

    def _alive_tree(self) -> list[psutil.Process]:
        alive = []
        for p in self._tree():
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                pass
        if self._pid is not None:
            try:  # group members that psutil did not reach (reparented before we saw them)
                os.killpg(self._pid, 0)
                if not alive:
                    alive_in_group = [p for p in psutil.process_iter() if _pgid(p.pid) == self._pid]
                    alive.extend(p for p in alive_in_group if _not_zombie(p))
            except (ProcessLookupError, PermissionError):
                pass
        return alive

    def _sample(self) -> None:
        """Sum RSS and CPU over the tree. CPU counts each live process once plus what live processes
        already reaped (children_* times), so short-lived helpers are not lost."""
        rss = 0
        cpu = 0.0
        for p in self._tree():
            try:
                with p.oneshot():
                    if p.status() == psutil.STATUS_ZOMBIE:
                        continue
                    rss += p.memory_info().rss
                    self._peak_rss_mb = max(self._peak_rss_mb, _vm_hwm_mb(p.pid))
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                continue
        self._rss_mb = rss / MIB
        self._peak_rss_mb = max(self._peak_rss_mb, self._rss_mb)
        self._cpu_s = max(self._cpu_s, cpu)

    def _signal_tree(self, sig: int) -> None:
        if self._pid is not None:
            try:
                os.killpg(self._pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for p in self._tree():
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass

    def _wait_gone(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self._alive_tree():
                return
            time.sleep(0.02)

    def _kill_tree_now(self) -> None:
        try:
            self._signal_tree(signal.SIGKILL)
        except Exception:
            pass

    # -- output --

    def _read_output(self, fd: int, stop: threading.Event) -> None:
        """Copy output to the log file (valid UTF-8) and scan lines for progress and errors."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scan = bool(self._progress_res or self._error_res)
        pending = ""
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                if not sel.select(0.2):
                    if stop.is_set():
                        break
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                text = decoder.decode(data)
                if text:
                    self._write_log(text)
                    if scan:
                        pending = self._scan(pending + text)
            text = decoder.decode(b"", final=True)
            if text:
                self._write_log(text)
                pending += text
            if scan and pending:
                self._scan_line(pending)
        except Exception:
            log.exception("attempt %s: output reader failed", self.assignment.attempt_id)
        finally:
            sel.close()

    def _scan(self, text: str) -> str:
        parts = re.split(r"[\r\n]", text)
        rest = parts.pop()
        for line in parts:
            if line:
                self._scan_line(line)
        if len(rest) > _MAX_LINE:
            self._scan_line(rest)
            rest = ""
        return rest

    def _scan_line(self, line: str) -> None:
        if self._error_line is None:
            for rx in self._error_res:
                if rx.search(line):
                    self._error_line = line.strip()[:_MAX_REASON]
                    break
        for rx in self._progress_res:
            m = rx.search(line)
            if m:
                try:
                    value = self._progress_from(m)
                except (IndexError, TypeError, ValueError, ZeroDivisionError):
                    value = None
                if value is not None:
                    self.progress = max(0.0, min(100.0, value))
                break

    def _progress_from(self, m: re.Match[str]) -> float | None:
        """A task's percent from one matched line. Named groups (templates combine them):

        - `pct`: percent (of the frame being rendered, once a frame is known; else of the task);
        - `done` and `total`: the same as a fraction (`Sample 64/128`, `Rendered 10 of 40 pixels`);
        - `frame` (a frame number) or `nth` and `of` (`Rendering frame 2 of 5`): which frame of the
          chunk renders now, so a chunk of 4 frames at frame 3, 50% reads 62.5%;
        - `frames_done`: frames of the chunk finished (`frame=  12` of ffmpeg);
        - `frame_done`: the number of the frame just finished (`Writing /r/a.0003.exr took 2 s`).
        A pattern without named groups gives the task percent in its first group.
        """
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        if not groups:
            return float(m.group(1))
        count = max(len(self._chunk_frames()), 1)
        if "frames_done" in groups:
            return 100.0 * float(groups["frames_done"]) / count
        if "frame_done" in groups:
            frames = self._chunk_frames()
            frame = int(groups["frame_done"])
            return 100.0 * (frames.index(frame) + 1) / count if frame in frames else None
        if "frame" in groups:
            frames = self._chunk_frames()
            frame = int(groups["frame"])
            if frame in frames:
                self._frame_share = (frames.index(frame) / count, 1.0 / count)
        elif "nth" in groups and "of" in groups:
            of = max(int(groups["of"]), 1)
            self._frame_share = ((int(groups["nth"]) - 1) / of, 1.0 / of)
        unit: float | None = None
        if "pct" in groups:
            unit = float(groups["pct"])
        elif "done" in groups and "total" in groups:
            unit = 100.0 * float(groups["done"]) / float(groups["total"])
        if self._frame_share is None:
            return unit
        base, share = self._frame_share
        return 100.0 * base + share * (unit or 0.0)

    def _chunk_frames(self) -> list[int]:
        if self._frames is None:
            try:
                import fileseq

                self._frames = [int(f) for f in fileseq.FrameSet(self.assignment.frames)] if self.assignment.frames else []
            except Exception:
                self._frames = []
        return self._frames

    def _write_log(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._log_lock:
            if self._log_file is None:
                return
            self._log_file.write(data)
            self._log_size += len(data)
        if self._on_output is not None:
            self._on_output(len(data))

    def _note(self, message: str) -> None:
        """An agent line in the task log, so whoever reads the log sees why the attempt ended."""
        self._write_log(f"[thresher] {message}\n")

    def _close_log(self) -> None:
        with self._log_lock:
            if self._log_file is not None:
                try:
                    self._log_file.close()
                except OSError:
                    pass
                self._log_file = None

    # -- result --

    def _make_output_folders(self) -> None:
        """Create the folders the outputs go to: some renderers (POV-Ray, kick) do not, and fail."""
        base = Path(self.assignment.cwd) if self.assignment.cwd else Path.cwd()
        for folder in {(base / raw).parent for raw in self.assignment.outputs}:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # the application says what is wrong, and the output check fails clearly

    def _check_outputs(self) -> str | None:
        """Each expected output must exist, be non-empty and have been written by this attempt: a frame
        left on disk by an earlier render must not let a renderer that wrote nothing succeed."""
        base = Path(self.assignment.cwd) if self.assignment.cwd else Path.cwd()
        for raw in self.assignment.outputs:
            path = Path(raw)
            if not path.is_absolute():
                path = base / path
            try:
                st = path.stat()
            except OSError:
                return f"missing output: {raw}"
            if st.st_size == 0:
                return f"empty output: {raw}"
            if self._started_wall is not None and st.st_mtime < self._started_wall - OUTPUT_MTIME_SLACK_S:
                return (f"stale output: {raw} was not written by this attempt (modified {_iso(st.st_mtime)}, "
                        f"attempt started {_iso(self._started_wall)})")
        return None

    def _result(self, status: str, exit_code: int | None, reason: str | None) -> TaskResult:
        return TaskResult(
            attempt_id=self.assignment.attempt_id, status=status, exit_code=exit_code,
            cpu_s=self._cpu_s, peak_rss_mb=self._peak_rss_mb,
            reason=reason[:_MAX_REASON] if reason else None, log_size=self._log_size,
            ended_at=utc_now_iso(),
        )


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat(timespec="seconds")


def _vm_hwm_mb(pid: int) -> float:
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


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _not_zombie(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_leftover(pid: int, pgid: int, create_time: float, grace_s: float = 1.0) -> int:
    """End what a previous agent run left behind (after a crash or kill -9): the group `pgid` and the
    process `pid`, only if they are still the ones we started (create times guard against reuse).
    Returns how many processes were signalled."""
    victims: list[psutil.Process] = []
    for p in psutil.process_iter(["pid", "create_time"]):
        try:
            ct = p.info["create_time"] or 0.0
            if p.pid == pid and create_time and abs(ct - create_time) <= 0.01:
                victims.append(p)
            elif _pgid(p.pid) == pgid and ct >= create_time - 0.01 and p.pid != os.getpid():
                victims.append(p)
        except psutil.Error:
            continue
    for p in victims:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2.0)
    return len(victims)
