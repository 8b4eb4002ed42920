"""Tasks cannot escape: what an attempt started is gone when it ends (exit, kill, timeout), in a cgroup
of its own and, without one, with the agent as their subreaper. Real processes throughout: each case
runs an agent-like process (the runner, as the agent daemon sets it up) and a task whose helper leaves
the task's process group (`setsid`, a double fork) and writes its pid to a file.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from thresher.agent.cgroup import CgroupHost, cgroup2_mount, favors_dynmods, own_cgroup
from thresher.agent.recovery import recover_leftovers
from thresher.agent.runner import TaskRunner
from thresher.agent.spool import Spool
from thresher.wire.agent import Assignment

PY = sys.executable
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and cgroups are Linux's")


@pytest.fixture
def host() -> CgroupHost:
    """Where this process may make task cgroups; the test is skipped where it may not."""
    found, why = CgroupHost.detect()
    if found is None:
        pytest.skip(f"cgroups not usable here: {why}")
    return found

# The agent side: become the subreaper as the daemon does, maybe find cgroups, run one attempt, then
# say in what state the escaped helper is at the moment the runner returned.
DRIVER = textwrap.dedent("""
    import json, os, sys, threading, time
    from pathlib import Path
    import psutil
    from thresher.agent import reaper
    from thresher.agent.cgroup import CgroupHost
    from thresher.agent.runner import TaskRunner
    from thresher.agent.settings import AgentSettings
    from thresher.wire.agent import Assignment

    args = json.loads(sys.argv[1])
    assert reaper.become_subreaper()
    host = None
    if args["cgroup"]:
        host, why = CgroupHost.detect()
        if host is None:
            print(json.dumps({"skip": why}), flush=True)
            sys.exit(0)
    a = Assignment(attempt_id=7, task_id=1, job_id=1, job_name="t", layer="l", frames="1",
                   argv=[args["command"]], shell=True, timeout_s=args.get("timeout_s"))
    runner = TaskRunner(a, Path(args["log"]), AgentSettings(kill_grace_s=0.5, leftover_grace_s=0.5,
                        process_sample_s=0.5), cgroups=host)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    pidfile = Path(args["pidfile"])
    if args.get("kill"):
        end = time.monotonic() + 20
        while not pidfile.exists() and time.monotonic() < end:
            time.sleep(0.02)
        runner.kill()
    thread.join(60)
    pid = int(pidfile.read_text())
    try:
        state = "zombie" if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE else "running"
    except psutil.NoSuchProcess:
        state = "gone"
    cgroups_left = [p.name for p in host.base.glob(f"thresher-{os.getpid()}-*")] if host else []
    print(json.dumps({"status": runner.result.status, "helper": state, "helper_pid": pid,
                      "cgroups_left": cgroups_left}), flush=True)
""")


def escape_shell(pidfile: Path) -> str:
    """A helper in a session of its own whose parent exits at once (it keeps the output pipe)."""
    return f"setsid sh -c 'sleep 300 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}'"


def escape_daemon(pidfile: Path) -> str:
    """A true daemon: double fork, setsid, every inherited file closed (the pipe too)."""
    code = textwrap.dedent(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 256)
                with open({str(pidfile) + '.tmp'!r}, "w") as f:
                    f.write(str(os.getpid()))
                os.rename({str(pidfile) + '.tmp'!r}, {str(pidfile)!r})
                time.sleep(300)
                os._exit(0)
            while not os.path.exists({str(pidfile)!r}):
                time.sleep(0.01)
            os._exit(0)
        os.wait()
    """)
    return f"{shlex.quote(PY)} -c {shlex.quote(code)}"


def run_driver(tmp_path: Path, command: str, *, cgroup: bool, **extra: object) -> dict:
    args = {"command": command, "cgroup": cgroup, "log": str(tmp_path / "task.log"),
            "pidfile": str(tmp_path / "helper.pid"), **extra}
    out = subprocess.run([PY, "-c", DRIVER, json.dumps(args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if "skip" in answer:
        pytest.skip(f"cgroups not usable here: {answer['skip']}")
    return answer


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def _no_helper_left(tmp_path: Path):
    yield
    pidfile = tmp_path / "helper.pid"
    if pidfile.exists():  # never leave a helper behind, whatever the test found
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


MODES = [pytest.param(True, id="cgroup"), pytest.param(False, id="subreaper")]


@linux_only
@pytest.mark.parametrize("cgroup", MODES)
@pytest.mark.parametrize("escape", [escape_shell, escape_daemon], ids=["setsid", "double-fork"])
def test_an_escaped_helper_ends_with_a_normal_exit(tmp_path: Path, cgroup: bool, escape) -> None:
    answer = run_driver(tmp_path, f"{escape(tmp_path / 'helper.pid')}; exit 0", cgroup=cgroup)
    assert answer["status"] == "succeeded"
    assert answer["helper"] != "running", "the helper outlived its attempt"
    assert _gone(answer["helper_pid"])
    assert answer["cgroups_left"] == []


@linux_only
@pytest.mark.parametrize("cgroup", MODES)
def test_an_escaped_helper_ends_with_a_kill(tmp_path: Path, cgroup: bool) -> None:
    answer = run_driver(tmp_path, f"{escape_shell(tmp_path / 'helper.pid')}; sleep 300", cgroup=cgroup, kill=True)
    assert answer["status"] == "killed"
    assert answer["helper"] != "running", "the helper outlived its attempt"
    assert _gone(answer["helper_pid"])


@linux_only
@pytest.mark.parametrize("cgroup", MODES)
def test_an_escaped_helper_ends_with_a_timeout(tmp_path: Path, cgroup: bool) -> None:
    answer = run_driver(tmp_path, f"{escape_daemon(tmp_path / 'helper.pid')}; sleep 300", cgroup=cgroup,
                        timeout_s=1.0)
    assert answer["status"] == "failed"
    assert answer["helper"] != "running", "the helper outlived its attempt"
    assert _gone(answer["helper_pid"])


# -- the at-least-once window: an agent killed between its child's exit and the spooled report --

AGENT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from thresher.agent.attempts import Attempts
    from thresher.agent.connectivity import Connectivity
    from thresher.agent.reaper import become_subreaper
    from thresher.agent.reporter import Reporter
    from thresher.agent.settings import AgentSettings
    from thresher.agent.spool import Spool
    from thresher.client.http import HttpClient
    from thresher.wire.agent import Assignment

    args = json.loads(sys.argv[1])
    become_subreaper()
    settings = AgentSettings(leftover_grace_s=30.0, kill_grace_s=30.0)
    spool = Spool(Path(args["state"]))
    reporter = Reporter(HttpClient("http://127.0.0.1:9"), spool, Connectivity(), settings)  # never started
    attempts = Attempts(settings, spool, reporter, hide_gpus=False)
    attempts.start(Assignment(attempt_id=args["attempt_id"], task_id=1, job_id=1, job_name="t", layer="l",
                              frames="1", argv=[args["command"]], shell=True, cwd=args["cwd"],
                              outputs=args["outputs"], error_patterns=args["errors"]))
    time.sleep(60)  # the task's helper kills this process first
""")


def _agent_dies_after_the_exit(tmp_path: Path, body: str, *, outputs: list[str] | None = None,
                               errors: list[str] | None = None, attempt_id: int = 3) -> dict:
    """Run `body` as a task of a real `Attempts`; a helper of the task that ignores SIGTERM kills the
    agent with SIGKILL 1 s after the task exited, while the agent is still ending leftovers (after
    the exit was reaped, before the report is spooled). Then a new agent's recovery reports it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    # $PPID of the task's shell (and of its subshell) is the agent. The shell ignores SIGTERM before
    # it forks the helper, so the helper is born ignoring it: a trap set inside the subshell could
    # come too late on a loaded machine, when the agent's SIGTERM to the group beats it.
    command = f"{body}; trap '' TERM; (sleep 1; kill -9 $PPID) & exit ${{RC:-0}}"
    args = {"state": str(state), "attempt_id": attempt_id, "command": command, "cwd": str(tmp_path),
            "outputs": outputs or [], "errors": errors or []}
    agent = subprocess.Popen([PY, "-c", AGENT, json.dumps(args)], stderr=subprocess.PIPE, text=True)
    try:
        agent.wait(60)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == -signal.SIGKILL, agent.stderr.read() if agent.stderr else ""
    spool = Spool(state)
    assert spool.pending() == [], "the agent died before it spooled anything"
    assert [r["attempt_id"] for r in spool.running_records()] == [attempt_id]
    recover_leftovers(spool, grace_s=1.0)
    (report,) = spool.pending()
    assert spool.running_records() == []
    return report


@linux_only
def test_an_exit_reaped_before_the_agent_died_is_reported_not_rerun(tmp_path: Path) -> None:
    report = _agent_dies_after_the_exit(tmp_path, "echo frame > out.png", outputs=["out.png"])
    assert report["status"] == "succeeded", report
    assert report["exit_code"] == 0


@linux_only
def test_after_the_restart_the_checks_still_judge(tmp_path: Path) -> None:
    report = _agent_dies_after_the_exit(tmp_path, "echo 'ERROR: no licence'", errors=["^ERROR"])
    assert report["status"] == "failed" and report["reason"] == "error line: ERROR: no licence"
    report = _agent_dies_after_the_exit(tmp_path / "b", "true", outputs=["missing.png"], attempt_id=4)
    assert report["status"] == "failed" and report["reason"] == "missing output: missing.png"
    report = _agent_dies_after_the_exit(tmp_path / "c", "RC=3", attempt_id=5)
    assert report["status"] == "failed" and report["exit_code"] == 3


def test_a_record_without_an_exit_is_still_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.mark_running(9, pid=0, pgid=0, create_time=0.0, started_at="t", checks={"outputs": []})
    recover_leftovers(spool, grace_s=0.1)
    (report,) = spool.pending()
    assert report["status"] == "lost"


# -- the cgroup v2 plumbing --

def test_the_cgroup2_mount_and_own_path_are_read() -> None:
    mountinfo = ("35 24 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                 "36 24 0:31 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n")
    assert cgroup2_mount(mountinfo) == Path("/sys/fs/cgroup/unified")
    assert cgroup2_mount("35 24 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n") is None
    assert own_cgroup("4:memory:/x\n0::/system.slice/thresher.service\n") == "/system.slice/thresher.service"
    assert own_cgroup("4:memory:/x\n") is None


def test_favordynmods_is_read_from_the_superblock_options() -> None:
    systemd = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
    assert cgroup2_mount(systemd) == Path("/sys/fs/cgroup") and not favors_dynmods(systemd)
    assert favors_dynmods(systemd.replace("rw,nsdelegate", "rw,nsdelegate,favordynmods"))
    assert not favors_dynmods("35 24 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory,favordynmods\n")


def _runner(host: CgroupHost, tmp_path: Path, attempt_id: int, argv: list[str]) -> TaskRunner:
    a = Assignment(attempt_id=attempt_id, task_id=1, job_id=1, job_name="t", layer="l", frames="1", argv=argv)
    return TaskRunner(a, tmp_path / f"{attempt_id}.log", cgroups=host)


@linux_only
def test_a_prepared_cgroup_waits_for_the_start_and_is_removed_on_release(tmp_path: Path, host: CgroupHost) -> None:
    """The agent makes an attempt's cgroup while the task waits for room and removes it after the report:
    neither the mkdir nor the rmdir is on the way from one task's exit to the next one's start."""
    runner = _runner(host, tmp_path, 901, ["/bin/sh", "-c", "sleep 300 & echo started"])
    runner.prepare()
    path = host.base / f"thresher-{os.getpid()}-901"
    assert path.is_dir(), "made before the start"
    try:
        result = runner.run(release=False)
        assert result.status == "succeeded", result.reason
        assert path.is_dir() and (path / "cgroup.procs").read_text().split() == [], "kept, and empty"
        runner.release()
        assert not path.exists()
    finally:
        runner.release()


@linux_only
def test_an_attempt_killed_before_its_start_leaves_no_cgroup(tmp_path: Path, host: CgroupHost) -> None:
    runner = _runner(host, tmp_path, 902, ["sleep", "300"])
    runner.prepare()
    runner.kill(reason="killed by server")
    result = runner.run()
    assert (result.status, result.exit_code) == ("killed", None)
    assert "not started: killed by server" in (tmp_path / "902.log").read_text()
    assert not (host.base / f"thresher-{os.getpid()}-902").exists()


@linux_only
def test_a_task_cgroup_counts_cpu_and_kills_everything(tmp_path: Path, host: CgroupHost) -> None:
    cg = host.create("probe-test")
    assert cg is not None
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass\ntime.sleep(300)"
    procs = [subprocess.Popen([PY, "-c", spin], start_new_session=True) for _ in range(2)]
    try:
        for p in procs:
            assert cg.join(p.pid)
        assert sorted(cg.pids()) == sorted(p.pid for p in procs)
        end = time.monotonic() + 20
        while cg.cpu_s() < 0.3 and time.monotonic() < end:
            time.sleep(0.05)
        assert cg.cpu_s() >= 0.3
        cg.kill()
        for p in procs:
            assert p.wait(10) == -signal.SIGKILL
        assert cg.remove() and not cg.path.exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cg.remove()


@linux_only
def test_cgroups_of_agents_that_are_gone_are_swept(tmp_path: Path, host: CgroupHost) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid no process has now
    stale = host.base / f"thresher-{dead.pid}-12"
    mine = host.create("13")
    assert mine is not None
    try:
        stale.mkdir()
        assert host.sweep() >= 1
        assert not stale.exists()
        assert mine.path.exists(), "a live agent's cgroup is its own"
    finally:
        mine.remove()
        if stale.exists():
            stale.rmdir()


# -- the start without a preexec_fn (child.spawn_plan): Popen's own refusals, said the same way --

def test_a_missing_or_unrunnable_program_still_cannot_start(tmp_path: Path) -> None:
    from thresher.agent.runner import TaskRunner
    from thresher.wire.agent import Assignment

    def reason(argv: list[str], attempt_id: int) -> str | None:
        a = Assignment(attempt_id=attempt_id, task_id=1, job_id=1, job_name="t", layer="l", frames="1", argv=argv,
                       cwd=str(tmp_path))
        result = TaskRunner(a, tmp_path / f"{attempt_id}.log").run()
        assert result.status == "failed" and result.exit_code is None
        return result.reason

    assert reason(["no-such-renderer-x7", "-f", "1"], 1) == "cannot start no-such-renderer-x7: No such file or directory"
    (tmp_path / "render.sh").write_text("#!/bin/sh\necho hi\n")
    assert reason(["./render.sh"], 2) == "cannot start ./render.sh: Permission denied"
    (tmp_path / "render.sh").chmod(0o755)
    a = Assignment(attempt_id=3, task_id=1, job_id=1, job_name="t", layer="l", frames="1", argv=["./render.sh"],
                   cwd=str(tmp_path))
    result = TaskRunner(a, tmp_path / "3.log").run()
    assert result.status == "succeeded" and (tmp_path / "3.log").read_text() == "hi\n"


MEMORY_DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from thresher.agent.cgroup import CgroupHost
    from thresher.agent.runner import TaskRunner
    from thresher.agent.settings import AgentSettings
    from thresher.wire.agent import Assignment

    host, why = CgroupHost.detect(memory_limit=True)  # may move this process into a leaf: not pytest's
    if host is None or not host.memory:
        print(json.dumps({"skip": why}))
        sys.exit(0)
    grab = "b = bytearray(400 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\nprint('survived')"
    a = Assignment(attempt_id=8, task_id=1, job_id=1, job_name="t", layer="l", frames="1",
                   argv=[sys.executable, "-c", grab], memory_mb=64)
    r = TaskRunner(a, Path(sys.argv[1]), AgentSettings(task_memory_max=True), cgroups=host).run()
    print(json.dumps({"status": r.status, "oom": r.out_of_memory, "reason": r.reason}))
""")


@linux_only
def test_task_memory_max_caps_a_task_at_its_reservation(tmp_path: Path) -> None:
    out = subprocess.run([PY, "-c", MEMORY_DRIVER, str(tmp_path / "m.log")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if "skip" in answer:
        pytest.skip(f"no memory controller for task cgroups here: {answer['skip']}")
    assert answer["status"] == "failed" and answer["oom"], answer
    assert "survived" not in (tmp_path / "m.log").read_text()
