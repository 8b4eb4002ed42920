"""The task runner against real child processes: exit codes, trees, timeouts, env, logs, checks."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from thresher.agent.recovery import kill_leftover
from thresher.agent.runner import TaskRunner
from thresher.agent.settings import AgentSettings
from thresher.agent.wire import TaskResult
from thresher.model.states import AttemptState
from thresher.wire.agent import Assignment

PY = sys.executable


def make(argv: list[str], **kw) -> Assignment:
    ids = dict(attempt_id=kw.pop("attempt_id", 1), task_id=1, job_id=1, job_name="test", layer="render", frames="1")
    return Assignment(argv=argv, **{**ids, **kw})


def py(code: str, **kw) -> Assignment:
    return make([PY, "-c", textwrap.dedent(code)], **kw)


def run(assignment: Assignment, tmp_path: Path, hide_gpus: bool = False, **settings) -> tuple[TaskResult, str]:
    log_path = tmp_path / "logs" / f"{assignment.attempt_id}.log"
    runner = TaskRunner(assignment, log_path, AgentSettings(**settings), hide_gpus=hide_gpus)
    result = runner.run()
    return result, log_path.read_text(encoding="utf-8")


def start_in_thread(runner: TaskRunner) -> threading.Thread:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    assert runner.started.wait(5), "task did not start"
    return thread


def wait_for(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_success_and_output_log(tmp_path: Path) -> None:
    result, log = run(py("print('hello'); import sys; print('oops', file=sys.stderr)"), tmp_path)
    assert result.status == "succeeded"
    assert result.exit_code == 0
    assert result.reason is None
    assert "hello\n" in log and "oops\n" in log
    assert result.log_size == len(log.encode("utf-8"))
    assert result.ended_at.endswith("+00:00")


def test_nonzero_exit_fails(tmp_path: Path) -> None:
    result, _ = run(py("import sys; sys.exit(3)"), tmp_path)
    assert result.status == "failed"
    assert result.exit_code == 3
    assert result.reason == "exit code 3"


def test_a_failed_exit_quotes_the_last_line_the_task_printed(tmp_path: Path) -> None:
    """What the application said just before it gave up, as one clean line: not the agent's notes, not
    colour codes, not a NUL (which no PostgreSQL text holds: the report would be refused)."""
    script = ("import sys; print('rendering'); sys.stderr.write('\\x1b[31mERROR:\\x1b[0m cannot open\\t/tex/a.exr \\x00!\\n');"
              " print(); sys.exit(2)")
    result, log = run(py(script), tmp_path)
    assert result.reason == "exit code 2 (last line: ERROR: cannot open /tex/a.exr \ufffd!)", result.reason
    assert "\x00" in log  # the log itself keeps every byte
    result, _ = run(py("import os, signal; print('segv at 0x0', flush=True); os.kill(os.getpid(), signal.SIGSEGV)",
                       attempt_id=2), tmp_path)
    assert result.reason == "killed by signal SIGSEGV (last line: segv at 0x0)"


def test_killed_by_signal_reason(tmp_path: Path) -> None:
    result, _ = run(py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"), tmp_path)
    assert result.status == "failed"
    assert result.exit_code == -11
    assert result.reason is not None
    assert "SIGSEGV" in result.reason


def test_missing_program_fails_cleanly(tmp_path: Path) -> None:
    result, log = run(make(["/nonexistent/renderer", "-x"]), tmp_path)
    assert result.status == "failed"
    assert result.exit_code is None
    assert result.reason is not None
    assert "cannot start /nonexistent/renderer" in result.reason
    assert "[thresher] cannot start" in log


def test_missing_cwd_fails_cleanly(tmp_path: Path) -> None:
    result, _ = run(py("print(1)", cwd=str(tmp_path / "nope")), tmp_path)
    assert result.status == "failed"
    assert result.reason is not None
    assert "working directory does not exist" in result.reason


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe bad \\xc3\\xa9\\n')"
    result, log = run(py(code), tmp_path)
    assert result.status == "succeeded"
    assert "ok \ufffd\ufffd bad \u00e9" in log
    assert result.log_size == (tmp_path / "logs" / "1.log").stat().st_size


def test_cwd_env_and_argument_list(tmp_path: Path) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    code = """
        import os, sys
        print('cwd=' + os.getcwd())
        print('foo=' + os.environ['FOO'])
        print('attempt=' + os.environ['THRESHER_ATTEMPT_ID'])
        print('args=' + '|'.join(sys.argv[1:]))
    """
    a = make([PY, "-c", textwrap.dedent(code), "a b", "$HOME", ";rm"], cwd=str(work), env={"FOO": "bar baz"},
             attempt_id=42)
    result, log = run(a, tmp_path)
    assert result.status == "succeeded", log
    assert f"cwd={work}" in log
    assert "foo=bar baz" in log
    assert "attempt=42" in log
    assert "args=a b|$HOME|;rm" in log  # no shell: arguments arrive untouched


def test_shell_only_when_asked(tmp_path: Path) -> None:
    a = make(["echo one && echo two | tr a-z A-Z"], shell=True)
    result, log = run(a, tmp_path)
    assert result.status == "succeeded"
    assert log == "one\nTWO\n"


def test_cuda_visible_devices(tmp_path: Path) -> None:
    code = "import os; print('cvd=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))"
    _, log = run(py(code, gpus=[1, 3]), tmp_path / "a", hide_gpus=True)
    assert "cvd=1,3" in log
    order = "import os; print('order=' + os.environ.get('CUDA_DEVICE_ORDER', '<unset>'))"
    _, log = run(py(order, gpus=[0]), tmp_path / "o", hide_gpus=True)
    assert "order=PCI_BUS_ID" in log  # CUDA's indices follow NVML's (PCI bus order)
    _, log = run(py(code), tmp_path / "b", hide_gpus=True)
    assert "cvd=\n" in log  # a GPU node, no GPU given: none visible
    _, log = run(py(code), tmp_path / "c", hide_gpus=False)
    assert f"cvd={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}\n" in log  # CPU node: untouched


def test_progress_parsed(tmp_path: Path) -> None:
    code = """
        import sys, time
        for p in (10, 55.5):
            print(f'Fra:1 Mem:1M | Rendering {p}%', flush=True)
        sys.stdout.write('tile\\r progress 70% \\r')
        sys.stdout.flush()
        time.sleep(0.3)
    """
    a = py(code, progress_patterns=[r"(?P<pct>\d+(?:\.\d+)?)%"])
    runner = TaskRunner(a, tmp_path / "p.log")
    result = runner.run()
    assert result.status == "succeeded"
    assert runner.progress == 70.0
    assert runner.stats()["progress"] == 70.0


def test_error_line_fails_even_with_exit_zero(tmp_path: Path) -> None:
    code = "print('Saved frame 1'); print('Error: Cannot read scene file'); print('done')"
    result, _ = run(py(code, error_patterns=[r"^Error:", r"[invalid"]), tmp_path)
    assert result.status == "failed"
    assert result.exit_code == 0
    assert result.reason == "error line: Error: Cannot read scene file"


def test_missing_and_empty_outputs_fail(tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    code = "open('frame_0001.png', 'w').write('x'); open('frame_0002.png', 'w')"
    outs = ["frame_0001.png", "frame_0002.png", str(work / "frame_0003.png")]
    result, log = run(py(code, cwd=str(work), outputs=outs), tmp_path)
    assert result.status == "failed"
    assert result.reason == "empty output: frame_0002.png"
    (work / "frame_0002.png").write_text("y")
    outs2 = ["frame_0001.png", str(work / "frame_0003.png")]
    result, log = run(py("pass", cwd=str(work), outputs=outs2, attempt_id=2), tmp_path)
    assert result.status == "failed"
    assert result.reason == f"missing output: {work / 'frame_0003.png'}"
    assert "[thresher] missing output" in log
    result, _ = run(py("pass", cwd=str(work), outputs=["frame_0001.png"], attempt_id=3), tmp_path)
    assert result.status == "succeeded"


TREE = """
import os, subprocess, sys, time
kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range(2)]
# a grandchild that leaves the process group (double fork + setsid), like a daemonising helper
gc = subprocess.Popen([sys.executable, '-c',
    'import os, subprocess, sys, time\\n'
    'p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)\\n'
    'print("escaped", p.pid, flush=True)\\n'
    'time.sleep(60)'], stdout=sys.stdout)
print('tree', ' '.join(str(k.pid) for k in kids), gc.pid, flush=True)
time.sleep(60)
"""


def _pids_from_log(path: Path) -> list[int]:
    pids: list[int] = []
    text = path.read_text() if path.exists() else ""
    for line in text[:text.rfind("\n") + 1].splitlines():  # complete lines only
        if line.startswith("tree ") or line.startswith("escaped "):
            pids += [int(x) for x in line.split()[1:]]
    return pids


def _all_gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def test_kill_ends_whole_tree(tmp_path: Path) -> None:
    log_path = tmp_path / "tree.log"
    runner = TaskRunner(make([PY, "-c", TREE]), log_path, AgentSettings(kill_grace_s=1.0, process_sample_s=0.1))
    thread = start_in_thread(runner)
    wait_for(lambda: len(_pids_from_log(log_path)) == 4)
    task_pid = runner.pid
    assert task_pid is not None  # it printed its children's pids
    pids = [task_pid] + _pids_from_log(log_path)
    assert len(pids) == 5
    time.sleep(0.3)  # let a sample see the escaped process
    runner.kill(AttemptState.KILLED, "killed by server")
    thread.join(10)
    assert not thread.is_alive()
    result = runner.result
    assert result is not None
    assert result.status == "killed"
    assert result.reason == "killed by server"
    wait_for(lambda: _all_gone(pids), timeout=3)


def test_timeout_kills_and_fails(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    result, log = run(py(code, timeout_s=0.5), tmp_path, kill_grace_s=0.5)
    assert result.status == "failed"
    assert result.reason == "timed out after 0.5 s"
    assert result.exit_code == -9  # ignored SIGTERM, got SIGKILL after the grace
    assert "[thresher] timed out" in log


def test_background_leftovers_are_ended(tmp_path: Path) -> None:
    a = make(["sleep 30 & echo $!"], shell=True)
    result, log = run(a, tmp_path)
    assert result.status == "succeeded"
    pid = int(log.split()[0])
    wait_for(lambda: _all_gone([pid]), timeout=3)


def test_kill_before_start(tmp_path: Path) -> None:
    runner = TaskRunner(py("print('never')"), tmp_path / "k.log")
    runner.kill(AttemptState.LOST, "agent shutdown")
    result = runner.run()
    assert result.status == "lost"
    assert "never" not in (tmp_path / "k.log").read_text()


def test_peak_memory_and_cpu(tmp_path: Path) -> None:
    code = """
        import time
        block = bytearray(100 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
        time.sleep(0.2)
    """
    result, _ = run(py(code), tmp_path, process_sample_s=0.1)
    assert result.status == "succeeded"
    assert result.peak_rss_mb >= 80
    assert result.cpu_s >= 0.2


def test_small_task_is_not_charged_the_agents_memory(tmp_path: Path) -> None:
    """rusage maxrss of a forked child starts at the parent's RSS; a tiny task must not inherit it."""
    big = bytearray(200 * 1024 * 1024)  # make the "agent" (this test process) clearly large
    for i in range(0, len(big), 4096):
        big[i] = 1
    result, _ = run(make(["sleep", "0.05"]), tmp_path, process_sample_s=0.02)
    assert result.status == "succeeded"
    assert result.peak_rss_mb < 50
    del big


def test_peak_memory_of_grandchild(tmp_path: Path) -> None:
    inner = "import time; b = bytearray(100 * 1024 * 1024); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; time.sleep(1)"
    a = make([f"{PY} -c '{inner}'; true"], shell=True)
    result, _ = run(a, tmp_path, process_sample_s=0.1)
    assert result.status == "succeeded"
    assert result.peak_rss_mb >= 80


def test_kill_leftover_after_agent_crash(tmp_path: Path) -> None:
    import subprocess
    proc = subprocess.Popen([PY, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                             "time.sleep(60)"], start_new_session=True)
    try:
        wait_for(lambda: len(psutil.Process(proc.pid).children()) == 1)
        child = psutil.Process(proc.pid).children()[0]
        n = kill_leftover(proc.pid, proc.pid, psutil.Process(proc.pid).create_time(), grace_s=1.0)
        assert n == 2
        proc.wait(5)
        wait_for(lambda: _all_gone([child.pid]), timeout=3)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill_leftover_ignores_reused_pid(tmp_path: Path) -> None:
    import subprocess
    proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert kill_leftover(proc.pid, proc.pid, psutil.Process(proc.pid).create_time() + 1000, grace_s=1.0) == 0
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_task_dies_with_agent(tmp_path: Path) -> None:
    """kill -9 of the agent process must not leave its render running."""
    import subprocess
    script = textwrap.dedent(f"""
        import sys, threading
        from pathlib import Path
        from thresher.agent.runner import TaskRunner
        from thresher.wire.agent import Assignment
        r = TaskRunner(Assignment(attempt_id=1, task_id=1, job_id=1, job_name='t', layer='l', frames='1', argv=[{PY!r}, '-c', 'import time; time.sleep(60)']),
                       Path({str(tmp_path / 'x.log')!r}))
        t = threading.Thread(target=r.run, daemon=True); t.start()
        r.started.wait(5)
        print(r.pid, flush=True)
        t.join()
    """)
    agent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None
    try:
        task_pid = int(agent.stdout.readline())
        assert psutil.pid_exists(task_pid)
        agent.kill()
        agent.wait(5)
        wait_for(lambda: _all_gone([task_pid]), timeout=3)
    finally:
        if agent.poll() is None:
            agent.kill()


def test_the_memory_guard_stops_a_task_out_of_memory(tmp_path: Path) -> None:
    runner = TaskRunner(py("import time; time.sleep(30)"), tmp_path / "a.log", AgentSettings(kill_grace_s=1))
    thread = start_in_thread(runner)
    runner.stop_out_of_memory("out of memory: used 600 MB of 100 MB reserved")
    thread.join(10)
    assert runner.result is not None and runner.result.status == "failed" and runner.result.out_of_memory
    assert runner.result.to_report()["out_of_memory"] is True
    assert runner.result.reason == "out of memory: used 600 MB of 100 MB reserved"


def test_a_sigkill_while_the_oom_count_rises_is_the_oom_killer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = iter([5, 6])
    monkeypatch.setattr("thresher.agent.runner.oom_kill_count", lambda: next(counts))
    result, log = run(py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), tmp_path)
    assert result.status == "failed" and result.out_of_memory
    assert result.reason is not None and result.reason.startswith("out of memory: killed by the kernel's OOM killer")
    monkeypatch.setattr("thresher.agent.runner.oom_kill_count", lambda: 5)
    result, _ = run(py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", attempt_id=2), tmp_path)
    assert result.reason == "killed by signal SIGKILL" and not result.out_of_memory
