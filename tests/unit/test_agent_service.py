"""Reporter and daemon against a small in-process HTTP server that speaks the agent protocol.

The fake keeps logs and reports in memory and can be stopped and restarted on the same port, so the
tests can cut the "network" at will; the agent side (threads, files, child processes) is all real.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from thresher.agent.connectivity import Connectivity
from thresher.agent.daemon import Agent
from thresher.agent.reporter import Reporter
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool
from thresher.client.http import HttpClient

PY = sys.executable


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # an agent that hung up mid-answer (shutdown, long poll) is normal here


class FakeServer:
    """The `/api/v1/agent/*` calls, in memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: dict[int, bytes] = {}
        self.finished: dict[int, dict[str, Any]] = {}
        self.assignments: list[dict[str, Any]] = []
        self.kills: list[int] = []
        self.kill_reasons: dict[str, str] = {}  # as JSON carries them: the ids as text
        self.beat_kills: list[int] = []  # what the heartbeat's answer asks to stop (with `kill_reasons`)
        self.heartbeats: list[dict[str, Any]] = []
        self.registrations: list[tuple[str, dict[str, Any]]] = []
        self.valid_tokens = {"enroll", "node-token"}
        self.calls: list[str] = []
        self.finish_calls = 0
        self.foreign: set[int] = set()  # attempts the server says are not this node's
        self.register_extra: dict[str, Any] = {}
        self.log_calls = 0
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --
    def start(self) -> "FakeServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                status, answer = fake.handle(self.path, token, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the protocol --
    def handle(self, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        path, _, query = path.partition("?")
        with self.lock:
            self.calls.append(path)
        if token not in self.valid_tokens:
            return 401, {"detail": "bad token"}
        if path == "/api/v1/agent/register":
            with self.lock:
                self.registrations.append((token, body))
            return 200, {"node_id": 1, "name": body["name"], "token": "node-token", "node_timeout_s": 60.0,
                         **self.register_extra}
        if path == "/api/v1/agent/work":
            asked = re.search(r"wait=([\d.]+)", query)
            wait = float(asked.group(1)) if asked else 0.0
            end = time.monotonic() + min(wait, 0.2)
            while True:
                with self.lock:
                    if self.assignments or self.kills:
                        answer = {"assignments": self.assignments, "kill": self.kills,
                                  "kill_reasons": self.kill_reasons}
                        self.assignments, self.kills = [], []
                        return 200, answer
                if time.monotonic() >= end:
                    return 200, {"assignments": [], "kill": []}
                time.sleep(0.01)
        if path == "/api/v1/agent/heartbeat":
            with self.lock:
                self.heartbeats.append(body)
                kill, self.beat_kills = self.beat_kills, []
            return 200, {"kill": kill, "kill_reasons": self.kill_reasons, "admin_state": "enabled"}
        m = re.fullmatch(r"/api/v1/agent/attempts/(\d+)/log", path)
        if m:
            attempt_id = int(m.group(1))
            with self.lock:
                self.log_calls += 1
                have = self.logs.get(attempt_id, b"")
                offset = body["offset"]
                if offset > len(have):
                    return 409, {"detail": "gap", "errors": [], "next_offset": len(have)}
                raw = body["data"].encode("utf-8")
                have = have[:offset] + raw if offset + len(raw) > len(have) else have
                self.logs[attempt_id] = have
                return 200, {"next_offset": len(have)}
        if path == "/api/v1/agent/finish":
            results = []
            with self.lock:
                self.finish_calls += 1
                for report in body["reports"]:
                    attempt_id = report["attempt_id"]
                    logged = len(self.logs.get(attempt_id, b""))
                    if attempt_id in self.foreign:
                        results.append({"attempt_id": attempt_id, "accepted": False, "next_offset": None,
                                        "reason": f"no attempt {attempt_id} on this node"})
                    elif logged < report["log_size"]:
                        results.append({"attempt_id": attempt_id, "accepted": False, "next_offset": logged})
                    else:
                        self.finished.setdefault(attempt_id, report)
                        results.append({"attempt_id": attempt_id, "accepted": True, "next_offset": None})
            return 200, {"results": results}
        return 404, {"detail": "no such route"}


@pytest.fixture
def fake() -> Any:
    server = FakeServer().start()
    yield server
    server.stop()


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def report(attempt_id: int, log_size: int, status: str = "succeeded") -> dict[str, Any]:
    return {"attempt_id": attempt_id, "status": status, "exit_code": 0, "cpu_s": 0.1, "peak_rss_mb": 1.0,
            "reason": None, "log_size": log_size, "ended_at": "2024-01-01T00:00:00+00:00"}


def make_reporter(fake: FakeServer, state: Path, **kw: Any) -> tuple[Reporter, Spool]:
    spool = Spool(state)
    return Reporter(HttpClient(fake.url, "node-token", timeout=5), spool, Connectivity(), AgentSettings(**kw)), spool


# ---------------------------------------------------------------- reporter

def test_streams_log_in_utf8_safe_chunks_then_reports(fake: FakeServer, tmp_path: Path) -> None:
    reporter, spool = make_reporter(fake, tmp_path, log_chunk_bytes=16)
    text = "line é 1\nline € 2\n😀 end\n" * 3
    spool.log_path(1).write_text(text, encoding="utf-8")
    reporter.track(1, spool.log_path(1))
    spool.put_report(report(1, len(text.encode())))
    reporter.run_once()
    assert fake.logs[1].decode("utf-8") == text
    assert fake.finished[1]["status"] == "succeeded"
    assert spool.pending() == []
    assert not spool.log_path(1).exists()  # the server holds it now


def test_report_after_restart_catches_up_log_from_next_offset(fake: FakeServer, tmp_path: Path) -> None:
    """A restarted agent does not know what the server holds: the report says, the log follows."""
    reporter, spool = make_reporter(fake, tmp_path)
    text = "0123456789" * 10
    spool.log_path(2).write_text(text)
    fake.logs[2] = text[:40].encode()
    spool.put_report(report(2, len(text)))
    reporter.run_once()
    assert fake.logs[2].decode() == text
    assert 2 in fake.finished
    assert spool.pending() == []


def test_a_report_the_server_says_is_not_ours_is_dropped_at_once(fake: FakeServer, tmp_path: Path) -> None:
    reporter, spool = make_reporter(fake, tmp_path)
    fake.foreign.add(9)
    fake.logs[9] = b"x"
    spool.log_path(9).write_text("x")
    spool.put_report(report(9, 1))
    reporter.run_once()
    assert spool.pending() == [] and 9 not in fake.finished
    assert fake.finish_calls == 1  # not resent until some refusal limit


def test_log_gap_is_resent_from_next_offset(fake: FakeServer, tmp_path: Path) -> None:
    reporter, spool = make_reporter(fake, tmp_path)
    spool.log_path(3).write_text("abcdefghij")
    reporter.track(3, spool.log_path(3))
    reporter._offsets["3"] = 5  # we believe the server has 5 bytes; it has none
    reporter.run_once()
    assert fake.logs[3] == b"abcdefghij"


def test_reports_wait_on_disk_while_server_is_down(fake: FakeServer, tmp_path: Path) -> None:
    reporter, spool = make_reporter(fake, tmp_path, report_interval_s=0.05)
    fake.stop()
    spool.log_path(4).write_text("out\n")
    reporter.track(4, spool.log_path(4))
    spool.put_report(report(4, 4))
    reporter.start()
    try:
        reporter.wake()
        time.sleep(0.5)
        assert reporter.conn.down
        assert [r["attempt_id"] for r in Spool(tmp_path).pending()] == [4]
        fake.start()  # same port
        assert reporter.drain(10)
        assert fake.finished[4]["log_size"] == 4
        assert fake.logs[4] == b"out\n"
        assert not reporter.conn.down
    finally:
        reporter.stop()


def test_refused_log_does_not_block_the_report(fake: FakeServer, tmp_path: Path) -> None:
    reporter, spool = make_reporter(fake, tmp_path)
    spool.log_path(5).write_text("x" * 10)
    spool.put_report(report(5, 10))
    spool.log_path(5).unlink()  # the local log is gone (disk cleaned by hand)
    reporter.run_once()
    assert fake.finished[5]["log_size"] == 0
    assert "log incomplete" in fake.finished[5]["reason"]
    assert spool.pending() == []


# ---------------------------------------------------------------- daemon

def start_agent(fake: FakeServer, state: Path, **kw: Any) -> tuple[Agent, threading.Thread, list[int]]:
    config = AgentSettings(server=fake.url, token=kw.pop("token", "enroll"), name=kw.pop("name", "n1"), cores=2,
                         memory_mb=1024, state_dir=state, heartbeat_s=0.2, work_wait_s=0.2,
                         kill_grace_s=1.0, shutdown_grace_s=1.0, shutdown_flush_s=3.0, **kw)
    agent = Agent(config)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(agent.run()), daemon=True)
    thread.start()
    return agent, thread, codes


def test_heartbeats_three_times_within_the_servers_node_timeout(fake: FakeServer, tmp_path: Path) -> None:
    fake.register_extra = {"node_timeout_s": 0.3}  # the agent is set to beat every 0.2 s: too slow for it
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    assert agent.heartbeat_s == pytest.approx(0.1)
    start = len(fake.heartbeats)
    time.sleep(1.0)
    assert len(fake.heartbeats) - start >= 6
    assert stop_agent(agent, thread, codes) == 0


def stop_agent(agent: Agent, thread: threading.Thread, codes: list[int]) -> int:
    agent.request_stop()
    thread.join(15)
    assert not thread.is_alive()
    return codes[0]


def assignment(attempt_id: int, argv: list[str], **kw: Any) -> dict[str, Any]:
    return {"attempt_id": attempt_id, "task_id": attempt_id, "job_id": 1, "job_name": "j", "layer": "l",
            "frames": "1", "argv": argv, "shell": False, "env": {}, "cwd": None, "timeout_s": None, "gpus": [],
            "outputs": [], "progress_patterns": [], "error_patterns": [], **kw}


def test_enrols_runs_work_and_reuses_credential(fake: FakeServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    agent, thread, codes = start_agent(fake, state)
    assert agent.registered.wait(5)
    cred = json.loads((state / "credential.json").read_text())
    assert cred["token"] == "node-token" and cred["node_id"] == 1 and cred["name"] == "n1"
    assert (state / "credential.json").stat().st_mode & 0o777 == 0o600
    with fake.lock:
        fake.assignments.append(assignment(10, [PY, "-c", "print('hello from 10')"]))
        fake.assignments.append(assignment(11, [PY, "-c", "import sys; sys.exit(4)"]))
    wait_for(lambda: 10 in fake.finished and 11 in fake.finished)
    assert fake.finished[10]["status"] == "succeeded"
    assert fake.logs[10] == b"hello from 10\n"
    assert fake.finished[11]["status"] == "failed" and fake.finished[11]["exit_code"] == 4
    wait_for(lambda: len(fake.heartbeats) >= 2)
    beat = fake.heartbeats[-1]
    assert {"cpu_percent", "memory_used_mb", "load", "running", "pending_reports"} <= set(beat)
    assert stop_agent(agent, thread, codes) == 0
    first_instance = cred["instance_id"]

    fake.valid_tokens.discard("enroll")  # enrolment token revoked: the node token must suffice
    agent, thread, codes = start_agent(fake, state)
    assert agent.registered.wait(5)
    token, body = fake.registrations[-1]
    assert token == "node-token"
    assert body["instance_id"] == first_instance
    assert stop_agent(agent, thread, codes) == 0


def test_an_assignment_the_agent_cannot_read_is_skipped_and_the_others_run(fake: FakeServer, tmp_path: Path) -> None:
    """Answers are read with the wire models the server declares; one assignment that does not fit them
    (here without its command) is left out with an error in the log, never the whole answer."""
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    broken = assignment(30, [PY, "-c", "print('never')"])
    del broken["argv"]
    with fake.lock:
        fake.assignments += [broken, assignment(31, [PY, "-c", "print('fine')"])]
    wait_for(lambda: 31 in fake.finished)
    assert fake.finished[31]["status"] == "succeeded" and 30 not in fake.finished
    assert stop_agent(agent, thread, codes) == 0


def test_shutdown_kills_tasks_and_reports_lost(fake: FakeServer, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            f"print('working', flush=True); time.sleep(60)")
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    with fake.lock:
        fake.assignments.append(assignment(20, [PY, "-c", code]))
    # The file exists from the child's open() on; its pid is there only after write() and close.
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    wait_for(lambda: any(r["attempt_id"] == 20 for hb in fake.heartbeats for r in hb["running"]))
    assert stop_agent(agent, thread, codes) == 0
    assert fake.finished[20]["status"] == "lost"
    assert fake.finished[20]["reason"] == "agent shutdown"
    assert fake.logs[20] == b"working\n[thresher] agent shutdown\n"
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)


def test_server_kill_list_is_obeyed(fake: FakeServer, tmp_path: Path) -> None:
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    with fake.lock:
        fake.assignments.append(assignment(30, [PY, "-c", "import time; time.sleep(60)"]))
    wait_for(lambda: any(r["attempt_id"] == 30 for hb in fake.heartbeats for r in hb["running"]))
    with fake.lock:
        fake.kills.append(30)
    wait_for(lambda: 30 in fake.finished)
    assert fake.finished[30]["status"] == "killed"
    assert fake.logs[30].endswith(b"[thresher] killed by server\n")  # a server that gives no reason
    assert stop_agent(agent, thread, codes) == 0


@pytest.mark.parametrize("by_heartbeat", [False, True])
def test_the_servers_reason_for_a_kill_ends_the_attempts_log(fake: FakeServer, tmp_path: Path,
                                                             by_heartbeat: bool) -> None:
    """The log an artist reads said "killed by server" for every kill: now who stopped it, and how."""
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    with fake.lock:
        fake.assignments.append(assignment(31, [PY, "-c", "import time; print('working', flush=True); time.sleep(60)"]))
    wait_for(lambda: any(r["attempt_id"] == 31 for hb in fake.heartbeats for r in hb["running"]))
    with fake.lock:
        fake.kill_reasons = {"31": "job killed by ana"}
        (fake.beat_kills if by_heartbeat else fake.kills).append(31)
    wait_for(lambda: 31 in fake.finished)
    assert fake.finished[31]["status"] == "killed" and fake.finished[31]["reason"] == "job killed by ana"
    assert fake.logs[31] == b"working\n[thresher] job killed by ana\n"
    assert stop_agent(agent, thread, codes) == 0


def test_outage_keeps_task_running_and_delivers_later(fake: FakeServer, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    code = (f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.02)\nprint('done')")
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    with fake.lock:
        fake.assignments.append(assignment(40, [PY, "-c", code]))
    wait_for(lambda: any(r["attempt_id"] == 40 for hb in fake.heartbeats for r in hb["running"]))
    fake.stop()
    flag.write_text("")
    wait_for(lambda: Spool(tmp_path / "state").pending_ids() == [40])  # finished, spooled, waiting
    time.sleep(0.3)
    fake.start()
    wait_for(lambda: 40 in fake.finished, timeout=15)
    assert fake.finished[40]["status"] == "succeeded"
    assert fake.logs[40] == b"done\n"
    assert thread.is_alive()
    assert stop_agent(agent, thread, codes) == 0


def test_restart_after_crash_reports_leftovers_lost(fake: FakeServer, tmp_path: Path) -> None:
    """A previous agent died hard: its running record leads the new one to the orphaned tree."""
    state = tmp_path / "state"
    spool = Spool(state)
    orphan = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        import psutil
        spool.mark_running(50, pid=orphan.pid, pgid=orphan.pid, create_time=psutil.Process(orphan.pid).create_time(),
                           started_at="t")
        spool.log_path(50).write_text("partial output\n")
        spool.mark_running(51, pid=0, pgid=0, create_time=0.0, started_at="t")  # never started
        agent, thread, codes = start_agent(fake, state)
        assert orphan.wait(10) is not None
        wait_for(lambda: 50 in fake.finished and 51 in fake.finished)
        assert fake.finished[50]["status"] == "lost"
        assert fake.logs[50] == b"partial output\n"
        assert spool.running_records() == []
        assert stop_agent(agent, thread, codes) == 0
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_second_agent_on_same_state_dir_is_refused(fake: FakeServer, tmp_path: Path) -> None:
    agent, thread, codes = start_agent(fake, tmp_path / "state")
    assert agent.registered.wait(5)
    other = Agent(AgentSettings(server=fake.url, token="enroll", name="n1", state_dir=tmp_path / "state"))
    assert other.run() == 2
    assert stop_agent(agent, thread, codes) == 0


def test_bad_enrolment_token_exits_2(fake: FakeServer, tmp_path: Path) -> None:
    agent = Agent(AgentSettings(server=fake.url, token="wrong", name="n1", state_dir=tmp_path / "s"))
    assert agent.run() == 2


def test_cli_sigterm_exits_zero(fake: FakeServer, tmp_path: Path) -> None:
    proc = subprocess.Popen([PY, "-m", "thresher.agent", "--server", fake.url, "--token", "enroll", "--name", "cli",
                             "--state-dir", str(tmp_path / "s"), "--heartbeat", "0.2", "--tags", "a,b"],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: fake.registrations, timeout=30)  # a cold interpreter start under load
        assert fake.registrations[0][1]["tags"] == ["a", "b"]
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "registered as node cli" in err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
