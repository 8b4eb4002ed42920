"""The agent daemon: enrol, heartbeat, pull work, run it, report it, shut down cleanly.

Threads, each with one job:

- work: long-polls `POST /agent/work` and starts a runner thread per assignment. The server answers
  early when something changed, so the poll is re-issued at once: no fixed sleep on the hot path.
- heartbeat: load figures, what runs, what waits to be reported; obeys the `kill` list.
- reporter: streams logs and delivers spooled finish reports (see reporter.py).
- one runner thread per attempt: forks the task and lives exactly as long as it (PDEATHSIG).

The server may vanish at any time: every call retries with backoff while tasks keep running and
their results pile up on disk. SIGTERM/SIGINT end every task tree, report those attempts `lost`
(the server requeues them without counting a try), flush reports for a few seconds, and exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from thresher.agent import resources
from thresher.agent.connectivity import Backoff, Connectivity, is_outage
from thresher.agent.reporter import Reporter
from thresher.agent.runner import Assignment, TaskRunner, kill_leftover, utc_now_iso
from thresher.agent.spool import Spool, file_key, write_json_atomic
from thresher.client.http import ApiError, HttpClient

log = logging.getLogger("thresher.agent")

CREDENTIAL_FILE = "credential.json"
EXIT_OK = 0
EXIT_CONFIG = 2  # refused enrolment, name taken, state folder in use: a person must act


class AgentFatal(Exception):
    """A condition that retrying cannot fix (the agent exits with EXIT_CONFIG)."""


def default_state_dir(name: str) -> Path:
    """`$THRESHER_HOME/agents/<name>` when THRESHER_HOME is set (tests, portable installs), else the
    platform's per-user state folder. One folder per agent name, so several agents can share a box."""
    safe = file_key(name)
    home = os.environ.get("THRESHER_HOME")
    if home:
        return Path(home) / "agents" / safe
    return Path(platformdirs.user_state_dir("thresher")) / f"agent-{safe}"


def machine_id() -> str:
    """An id of the OS install. A state folder carrying another machine's id was copied with a disk
    image, and must not make two machines share one node identity."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text().strip()
            if value:
                return value
        except OSError:
            continue
    return ""


@dataclass
class AgentConfig:
    """Everything the agent needs to know; `run_agent` arguments plus tuning knobs for tests."""

    server: str
    token: str
    name: str | None = None
    cores: int | None = None
    memory_mb: int | None = None
    gpus: int | None = None
    tags: list[str] = field(default_factory=list)
    apps: dict[str, str] = field(default_factory=dict)  # --app NAME=PATH: executables on this node
    state_dir: Path | None = None
    heartbeat_s: float = 5.0
    work_wait_s: float = 20.0
    kill_grace_s: float = 5.0
    shutdown_grace_s: float = 2.0
    flush_s: float = 5.0
    http_timeout_s: float = 15.0


class Agent:
    """One node agent. `run()` blocks until `request_stop()` (or a fatal error) and returns an exit code."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.facts = resources.detect_facts(name=config.name, cores=config.cores, memory_mb=config.memory_mb,
                                            gpus=config.gpus, tags=config.tags, apps=config.apps)
        self.name = self.facts.name
        self.state_dir = Path(config.state_dir) if config.state_dir else default_state_dir(self.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(self.state_dir)
        self.conn = Connectivity()
        self.node_id: Any = None
        self.token: str | None = None
        self.hide_gpus = self.facts.physical_gpus > 0 or len(self.facts.gpus) > 0
        self._stop = threading.Event()
        self._stopping = False
        self._hurry = False
        self._lock = threading.Lock()
        self._runners: dict[str, TaskRunner] = {}
        self._runner_threads: dict[str, threading.Thread] = {}
        self._threads: list[threading.Thread] = []
        self._clients: list[HttpClient] = []
        self._reporter: Reporter | None = None
        self._lock_fd: int | None = None
        self._admin_state: str | None = None
        self.registered = threading.Event()

    # -- lifecycle --

    def request_stop(self) -> None:
        """Ask for a clean shutdown (signal handlers, tests). A second request skips waiting."""
        if self._stop.is_set():
            self._hurry = True
        self._stop.set()

    def run(self) -> int:
        try:
            self._lock_state_dir()
            self._recover_leftovers()
            if not self._register():
                return EXIT_OK  # stopped before the server ever answered
            self._start_threads()
            while not self._stop.wait(0.5):
                pass
            self._shutdown()
            return EXIT_OK
        except AgentFatal as exc:
            log.error("%s", exc)
            self._shutdown()
            return EXIT_CONFIG
        finally:
            for client in self._clients:
                try:
                    client.close()
                except Exception:
                    pass
            self._unlock_state_dir()

    def _lock_state_dir(self) -> None:
        """One agent per state folder: two would kill each other's tasks on restart."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return
        fd = os.open(self.state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AgentFatal(f"another agent is running with state folder {self.state_dir}")
        os.set_inheritable(fd, False)
        self._lock_fd = fd

    def _unlock_state_dir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _client(self, token: str | None, timeout: float | None = None) -> HttpClient:
        client = HttpClient(self.config.server, token, timeout=timeout or self.config.http_timeout_s)
        self._clients.append(client)
        return client

    # -- recovery after a crash --

    def _recover_leftovers(self) -> None:
        """Attempts a previous run left running: end their trees and report them lost."""
        for record in self.spool.running_records():
            attempt_id = record["attempt_id"]
            pid = record.get("pid")
            if pid:
                n = kill_leftover(int(pid), int(record.get("pgid") or pid), float(record.get("create_time") or 0.0))
                if n:
                    log.warning("attempt %s: ended %d leftover processes from a previous agent run", attempt_id, n)
            if not (self.spool.spool_dir / f"{file_key(attempt_id)}.json").exists():
                try:
                    log_size = self.spool.log_path(attempt_id).stat().st_size
                except FileNotFoundError:
                    log_size = 0
                self.spool.put_report({
                    "attempt_id": attempt_id, "status": "lost", "exit_code": None, "cpu_s": 0.0,
                    "peak_rss_mb": 0.0, "reason": "agent restarted while the attempt was running",
                    "log_size": log_size, "ended_at": utc_now_iso(),
                })
                log.warning("attempt %s was running when the agent stopped: reporting it lost", attempt_id)
            self.spool.clear_running(attempt_id)

    # -- enrolment --

    def _credential_path(self) -> Path:
        return self.state_dir / CREDENTIAL_FILE

    def _load_credential(self) -> dict[str, Any] | None:
        path = self._credential_path()
        try:
            import json
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable credential %s (%s): enrolling again", path, exc)
            return None
        if not isinstance(data, dict) or not data.get("token"):
            return None
        mid = machine_id()
        if data.get("machine_id") and mid and data["machine_id"] != mid:
            log.warning("state folder %s comes from another machine (cloned image?): enrolling as a new node",
                        self.state_dir)
            return None
        return data

    def _register(self, use_stored: bool = True) -> bool:
        """Register (enrol or refresh facts) until the server answers; False if stopped first.

        The stored node credential is tried first, then the given token: an agent whose node was
        deleted (or whose server lost its database) enrols again instead of failing forever."""
        cred = self._load_credential()
        instance_id = (cred or {}).get("instance_id") or uuid.uuid4().hex
        candidates: list[tuple[str, str]] = []
        if use_stored and cred and cred.get("server", "").rstrip("/") == self.config.server.rstrip("/"):
            candidates.append(("stored node credential", cred["token"]))
        if not candidates or candidates[0][1] != self.config.token:
            candidates.append(("given token", self.config.token))
        body = dict(self.facts.to_json(), instance_id=instance_id)
        backoff = Backoff(maximum=5.0)
        while not self._stop.is_set():
            refused: list[str] = []
            for what, token in candidates:
                client = HttpClient(self.config.server, token, timeout=self.config.http_timeout_s)
                try:
                    answer = client.post("/agent/register", body)
                except ApiError as exc:
                    if is_outage(exc):
                        self.conn.failed("registering", exc)
                        break
                    if exc.status in (401, 403):
                        refused.append(f"{what}: {exc.detail}")
                        continue
                    if exc.status == 409:
                        raise AgentFatal(f"registration refused: {exc.detail} (another agent uses the name "
                                         f"{self.name!r}? pick another with --name)")
                    raise AgentFatal(f"registration refused: {exc}")
                except Exception as exc:
                    if is_outage(exc):
                        self.conn.failed("registering", exc)
                        break
                    raise
                finally:
                    client.close()
                self.conn.ok()
                self._registered(answer, token, instance_id)
                return True
            else:
                raise AgentFatal("registration refused: " + "; ".join(refused))
            self._stop.wait(backoff.next_delay())
        return False

    def _registered(self, answer: dict[str, Any], used_token: str, instance_id: str) -> None:
        timeout = answer.get("node_timeout_s")
        if isinstance(timeout, (int, float)) and timeout > 0 and self.config.heartbeat_s > timeout / 3:
            # The server declares a node down after `timeout` silent seconds: beat three times within it,
            # or a busy moment makes a healthy node flap down and up and lose its tasks.
            log.warning("the server's node timeout is %.1f s: heartbeat every %.2f s instead of %.2f s",
                        timeout, timeout / 3, self.config.heartbeat_s)
            self.config.heartbeat_s = timeout / 3
        self.node_id = answer.get("node_id")
        self.name = answer.get("name") or self.name
        self.token = answer.get("token") or used_token
        write_json_atomic(self._credential_path(), {
            "server": self.config.server, "node_id": self.node_id, "name": self.name, "token": self.token,
            "instance_id": instance_id, "machine_id": machine_id(),
        }, mode=0o600, durable=True)
        os.chmod(self._credential_path(), 0o600)
        if self._reporter is not None:
            self._reporter.client = self._client(self.token)
        f = self.facts
        log.info("registered as node %s (%s): %d cores, %d MB, %d GPUs, tags %s; state in %s",
                 self.name, self.node_id, f.cores, f.memory_mb, len(f.gpus), ",".join(f.tags) or "-",
                 self.state_dir)
        self.registered.set()

    # -- threads --

    def _start_threads(self) -> None:
        assert self.token is not None
        self._reporter = Reporter(self._client(self.token), self.spool, self.conn)
        self._reporter.start()
        self._reporter.wake()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._work_loop, "work")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work_loop(self) -> None:
        wait = self.config.work_wait_s
        client = self._client(self.token, timeout=wait + self.config.http_timeout_s)
        backoff = Backoff()
        auth_warned = False
        while not self._stop.is_set():
            try:
                answer = client.request("POST", "/agent/work", json={}, params={"wait": wait},
                                        timeout=wait + self.config.http_timeout_s)
            except Exception as exc:
                if is_outage(exc):
                    self.conn.failed("asking for work", exc)
                elif isinstance(exc, ApiError) and exc.status == 401 and not self._stop.is_set():
                    log.error("the server refused this node's credential (%s): enrolling again", exc.detail)
                    try:
                        self._register(use_stored=False)
                    except AgentFatal as fatal:
                        log.error("%s", fatal)
                    if client.token != self.token:
                        client = self._client(self.token, timeout=wait + self.config.http_timeout_s)
                        continue
                elif isinstance(exc, ApiError):
                    if not auth_warned:
                        log.error("server refused the work request: %s", exc)
                        auth_warned = True
                else:
                    log.exception("work loop: unexpected error")
                self._stop.wait(backoff.next_delay())
                continue
            self.conn.ok()
            backoff.reset()
            auth_warned = False
            if not isinstance(answer, dict):
                continue
            try:
                self._apply_kills(answer.get("kill") or [], "killed by server")
                for item in answer.get("assignments") or []:
                    self._start_attempt(item)
            except Exception:  # a bad answer or a full disk must not end the work loop
                log.exception("work loop: could not handle the server's answer")
                self._stop.wait(backoff.next_delay())

    def _heartbeat_loop(self) -> None:
        client = self._client(self.token)
        resources.sample_load()  # prime cpu_percent
        refused = False
        while not self._stop.is_set():
            if client.token != self.token:  # enrolled again
                client = self._client(self.token)
            try:
                answer = client.post("/agent/heartbeat", self.heartbeat_body())
            except Exception as exc:
                if is_outage(exc):
                    self.conn.failed("heartbeat", exc)
                elif isinstance(exc, ApiError):
                    if not refused:
                        log.warning("heartbeat refused: %s", exc)
                    refused = True
                else:
                    log.exception("heartbeat: unexpected error")
            else:
                self.conn.ok()
                refused = False
                if isinstance(answer, dict):
                    try:
                        self._apply_kills(answer.get("kill") or [], "killed by server")
                    except Exception:
                        log.exception("heartbeat: could not apply the kill list")
                    state = answer.get("admin_state")
                    if state and state != self._admin_state:
                        if self._admin_state is not None or state != "enabled":
                            log.info("node is now %s", state)
                        self._admin_state = state
            self._stop.wait(self.config.heartbeat_s)

    def heartbeat_body(self) -> dict[str, Any]:
        """Running attempts first, then the spool: an attempt that finishes in between shows in one
        list or both, never in neither (which the server would read as lost)."""
        with self._lock:
            runners = list(self._runners.values())
        running = [r.stats() for r in runners]
        pending = self.spool.pending_ids()
        return dict(resources.sample_load(), running=running, pending_reports=pending)

    def _apply_kills(self, attempt_ids: list[Any], reason: str) -> None:
        for attempt_id in attempt_ids:
            with self._lock:
                runner = self._runners.get(file_key(attempt_id))
            if runner is not None and not runner.finished.is_set():
                log.info("attempt %s: kill requested by the server", attempt_id)
                runner.kill("killed", reason)

    # -- attempts --

    def _start_attempt(self, item: dict[str, Any]) -> None:
        try:
            assignment = Assignment.from_json(item)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("ignoring a malformed assignment (%s): %r", exc, item)
            return
        attempt_id = assignment.attempt_id
        key = file_key(attempt_id)
        assert self._reporter is not None
        reporter = self._reporter
        with self._lock:
            if key in self._runners:
                return  # the same assignment twice (a retried call): it already runs
            if self._stopping:
                self.spool.put_report({
                    "attempt_id": attempt_id, "status": "lost", "exit_code": None, "cpu_s": 0.0,
                    "peak_rss_mb": 0.0, "reason": "agent shutdown", "log_size": 0, "ended_at": utc_now_iso(),
                })
                return
            self.spool.mark_running(attempt_id, pid=0, pgid=0, create_time=0.0, started_at=utc_now_iso())
            started_at = utc_now_iso()

            def on_started(pid: int, create_time: float) -> None:
                self.spool.mark_running(attempt_id, pid=pid, pgid=pid, create_time=create_time,
                                        started_at=started_at)

            runner = TaskRunner(
                assignment, self.spool.log_path(attempt_id), hide_gpus=self.hide_gpus,
                kill_grace_s=self.config.kill_grace_s, on_started=on_started,
                on_output=lambda n: reporter.note_output(attempt_id, n),
            )
            reporter.track(attempt_id, self.spool.log_path(attempt_id))
            self._runners[key] = runner
            thread = threading.Thread(target=self._run_attempt, args=(runner,), name=f"attempt-{key}",
                                      daemon=True)
            self._runner_threads[key] = thread
        log.info("attempt %s started: job %s %r layer %s frames %s%s", attempt_id, assignment.job_id,
                 assignment.job_name, assignment.layer, assignment.frames or "-",
                 f" gpus {assignment.gpus}" if assignment.gpus else "")
        thread.start()

    def _run_attempt(self, runner: TaskRunner) -> None:
        """Runs in the attempt's own thread (the forking thread must outlive the child)."""
        attempt_id = runner.assignment.attempt_id
        key = file_key(attempt_id)
        result = runner.run()
        report = result.to_report()
        while True:
            try:
                self.spool.put_report(report)
                break
            except OSError as exc:  # disk full: keep the report in memory and retry
                log.error("attempt %s: cannot spool the report (%s); retrying", attempt_id, exc)
                time.sleep(1.0)
        self.spool.clear_running(attempt_id)
        with self._lock:
            self._runners.pop(key, None)
            self._runner_threads.pop(key, None)
        if self._reporter is not None:
            self._reporter.wake()
        log.info("attempt %s %s: exit %s, %.1f s cpu, %.0f MB peak%s", attempt_id, result.status,
                 result.exit_code, result.cpu_s, result.peak_rss_mb,
                 f" ({result.reason})" if result.reason else "")

    # -- shutdown --

    def _say_goodbye(self) -> None:
        """Tell the server this node is leaving, so the tasks we give back go to other nodes instead
        of straight back to our own still-open long poll. Best effort: a server that is down will
        notice through the missing heartbeats."""
        if self.token is None:
            return
        try:
            self._client(self.token, timeout=2.0).post("/agent/goodbye", {})
        except Exception as exc:  # noqa: BLE001 - leaving anyway
            log.info("could not say goodbye to the server (%s)", exc)

    def _shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            runners = list(self._runners.values())
            threads = list(self._runner_threads.values())
        self._stop.set()
        self._say_goodbye()
        if runners:
            log.info("shutting down: ending %d running task(s)", len(runners))
        for runner in runners:
            runner.kill_grace_s = min(runner.kill_grace_s, self.config.shutdown_grace_s)
            runner.kill("lost", "agent shutdown")
        end = time.monotonic() + self.config.shutdown_grace_s + 5.0
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        if self._reporter is not None:
            flushed = self._reporter.drain(0.5 if self._hurry else self.config.flush_s)
            work = next((t for t in self._threads if t.name == "work"), None)
            if runners and flushed and work is not None and work.is_alive() and not self._hurry:
                # The lost reports put those tasks back in the queue, and the server may hand one
                # straight back to our still-open long poll. Wait for that answer: the work thread
                # reports such assignments lost too, instead of leaving them to the server's timeout.
                work.join(1.0)
                flushed = self._reporter.drain(1.0)
            if not flushed:
                log.warning("%d report(s) not delivered yet; they stay spooled in %s for the next start",
                            len(self.spool.pending()), self.spool.spool_dir)
            self._reporter.stop()
        log.info("agent stopped")


def _setup_logging() -> None:
    """One line per event on stderr, unless the host program configured logging itself."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_agent(server: str, token: str, *, name: str | None = None, cores: int | None = None,
              memory_mb: int | None = None, gpus: int | None = None, tags: list[str] | None = None,
              state_dir: Path | None = None, heartbeat_s: float = 5.0, apps: dict[str, str] | None = None) -> int:
    """Run the agent until SIGTERM/SIGINT; returns the process exit code (0 on a clean stop,
    2 when a person must act: enrolment refused, name taken, state folder in use)."""
    _setup_logging()
    try:
        agent = Agent(AgentConfig(server=server, token=token, name=name, cores=cores, memory_mb=memory_mb,
                                  gpus=gpus, tags=list(tags or []), apps=dict(apps or {}),
                                  state_dir=Path(state_dir) if state_dir else None, heartbeat_s=heartbeat_s))
    except ValueError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: agent.request_stop())
    try:
        return agent.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
