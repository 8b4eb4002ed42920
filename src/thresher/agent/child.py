"""How a task's child process is started: its command line, its environment, and its tie to the agent.

The child asks the kernel for SIGKILL when its parent thread dies (PR_SET_PDEATHSIG), so a `kill -9`
of the agent does not leave a render running unaccounted for; the thread that forks is the one that
waits for the child, so it lives exactly as long as the child. The environment masks the GPUs the
task was not given, so a task cannot grab a card the scheduler gave to another task, and sets the usual
thread variables to the cores the task reserved, so threaded libraries in it do not take the whole node.
Where the agent runs tasks in cgroups (`agent/cgroup.py`) the child joins its cgroup before exec, so
nothing it ever runs starts outside it. Both ties are made without Python code in the child where
possible (`spawn_plan`): a preexec_fn forces a full fork of the agent, 15-30 times slower than vfork.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import sys
from typing import Callable

from thresher.wire.agent import Assignment

_PR_SET_PDEATHSIG = 1

#: Thread-count variables that OpenMP, the BLAS libraries, numexpr, macOS Accelerate and Houdini read,
#: set to the task's reserved cores (the job's own `env` wins). TBB reads none, so none is set for it.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "HOUDINI_MAXTHREADS")


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


def make_child_setup(parent_pid: int, cpus: list[int] | None = None,
                     cgroup_procs: str | None = None) -> Callable[[], None]:
    """preexec_fn: join the task's cgroup (its `cgroup.procs` file) when given, die with the agent, and
    run on `cpus` when given (`pin_cpus`, `agent/cpus.py`), set before exec so no thread of the task ever
    starts elsewhere. Checks the parent after arming, closing the race where the agent died between fork
    and prctl. A failed join is not fatal: the agent checks membership after the start."""

    def setup() -> None:
        if cgroup_procs is not None:
            try:
                fd = os.open(cgroup_procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")  # "0": the writing process
                finally:
                    os.close(fd)
            except OSError:
                pass
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(137)
        if cpus:
            try:
                os.sched_setaffinity(0, cpus)
            except (OSError, AttributeError):
                pass  # pinning is an extra: a task the OS will not pin runs on all CPUs

    return setup


def build_env(assignment: Assignment, *, hide_gpus: bool) -> dict[str, str]:
    """os.environ + a few THRESHER_* facts + the thread variables + the assignment's env + the GPU mask.

    The thread variables (THREAD_VARIABLES, and THRESHER_CORES) are set to the cores the task reserved,
    over what the agent itself was started with, so a task on a node with several slots stays in its
    share; the job's own env comes after them and wins.

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
    if assignment.cores:
        env["THRESHER_CORES"] = str(assignment.cores)
        env.update(dict.fromkeys(THREAD_VARIABLES, str(assignment.cores)))
    env.update(assignment.env)
    if assignment.gpus:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in assignment.gpus)
    elif hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def command_line(assignment: Assignment) -> list[str]:
    """The argv to exec. A shell only when the layer asked for one (rule 3 of docs/design.md)."""
    if assignment.shell:
        if not assignment.argv:
            raise ValueError("shell assignment without a command line")
        return ["/bin/sh", "-c", assignment.argv[0], "sh", *assignment.argv[1:]]
    if not assignment.argv:
        raise ValueError("empty argv")
    return list(assignment.argv)


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
#: Joins the cgroup named by $0 (its cgroup.procs) and execs the rest: the join before exec without a
#: preexec_fn. `echo` is the shell's own, so the task's first process is already in its cgroup.
_JOIN = 'echo 0 > "$0" && exec "$@"'


def spawn_plan(argv: list[str], parent_pid: int, cpus: list[int] | None,
               cgroup_procs: str | None) -> tuple[list[str], Callable[[], None] | None]:
    """How to start `argv`: (the argv to exec, a preexec_fn or None).

    A preexec_fn makes Python fork the whole agent (page tables of a big process: 9-16 ms a task)
    where without one it uses vfork (about 1 ms). So where nothing needs Python code in the child,
    the ties are made by programs exec'd first instead: util-linux `setpriv --pdeathsig KILL` arms
    PDEATHSIG (kept across exec; the parent is still the runner thread), and `/bin/sh` joins the
    cgroup. Pinning CPUs (`pin_cpus`) keeps the preexec_fn, as does a node without setpriv. What is
    lost: the check after arming (an agent killed between the start and setpriv's prctl leaves the
    task running until the agent's next start ends it, `recovery.py`, `CgroupHost.sweep`)."""
    if cpus or _SETPRIV is None or _prctl is None:
        return argv, make_child_setup(parent_pid, cpus, cgroup_procs)
    plan = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    if cgroup_procs is not None:
        plan = ["/bin/sh", "-c", _JOIN, cgroup_procs, *plan]
    return plan, None


def resolve_program(program: str, cwd: str | None, env: dict[str, str]) -> str:
    """The executable `program` names, or the OSError that Popen would raise for it: checked before a
    start through `spawn_plan`'s helpers, which would otherwise turn "no such program" into exit 127."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return path
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return found
