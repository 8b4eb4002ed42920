"""The agent daemon: puts the parts together, runs them until told to stop, and shuts down cleanly.

Start: lock the state folder (state_dir.py), end what a crashed previous run left (recovery.py),
register (enrol.py), then start the threads, each with one job: the work poll and the heartbeat
(loops.py), the reporter (reporter.py), and one runner thread per attempt (attempts.py).

The server may vanish at any time: every call retries with backoff while tasks keep running and
their results pile up on disk. SIGTERM/SIGINT end every task tree, report those attempts `lost`
(the server requeues them without counting a try), flush reports for a few seconds, and exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable

from thresher.agent import resources
from thresher.agent.attempts import Attempts
from thresher.agent.connectivity import Connectivity
from thresher.agent.enrol import Enrolment
from thresher.agent.fatal import EXIT_CONFIG, EXIT_OK, AgentFatal
from thresher.agent.loops import Beats, heartbeat_loop, start_work, work_loop
from thresher.agent.memory_guard import free_floor_mb, guard_loop
from thresher.agent.reaper import become_subreaper
from thresher.agent.recovery import recover_leftovers
from thresher.agent.reporter import Reporter
from thresher.agent.room import Room
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool
from thresher.agent.state_dir import StateDirLock, default_state_dir
from thresher.client.http import HttpClient
from thresher.model.heartbeat_rule import poll_beat_wait

log = logging.getLogger("thresher.agent")

_STOP_POLL_S = 0.5  # how often the main thread looks whether it was asked to stop
_JOIN_EXTRA_S = 5.0  # at shutdown, runner threads get the kill grace and this much more
_HURRIED_FLUSH_S = 0.5  # a second stop request: flush reports this long only
_LATE_ANSWER_S = 1.0  # at shutdown, how long to wait for the long poll's last answer


class Agent:
    """One node agent. `run()` blocks until `request_stop()` (or a fatal error) and returns an exit code."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.facts = resources.detect_facts(name=settings.name, cores=settings.cores, memory_mb=settings.memory_mb,
                                            gpus=settings.gpus, tags=settings.tags, apps=settings.apps,
                                            pool=settings.pool)
        self.name = self.facts.name
        self.state_dir = Path(settings.state_dir) if settings.state_dir else default_state_dir(self.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(self.state_dir)
        self.conn = Connectivity()
        self.enrolment = Enrolment(settings, self.state_dir, self.conn)
        self.node_id: Any = None
        self._token: str | None = None
        self._heartbeat_s = settings.heartbeat_s
        self._poll_beat_s: float | None = None  # set when the server counts an idle poll as a heartbeat
        self.beats = Beats()
        self.hide_gpus = self.facts.physical_gpus > 0 or len(self.facts.gpus) > 0
        self.stop_event = threading.Event()
        self._hurry = False
        self._threads: list[threading.Thread] = []
        self._clients: list[HttpClient] = []
        self._reporter: Reporter | None = None
        self._attempts: Attempts | None = None
        self._dir_lock = StateDirLock(self.state_dir)
        self.registered = threading.Event()

    # -- what the loops read (loops.LoopHost) --

    @property
    def token(self) -> str | None:
        """This node's credential, once registered (it changes when the agent enrols again)."""
        return self._token

    @property
    def heartbeat_s(self) -> float:
        """The heartbeat period in force: the setting, or less when the server's node timeout asks."""
        return self._heartbeat_s

    @property
    def poll_beat_s(self) -> float | None:
        """The wait of an idle poll that carries the heartbeat (`model/heartbeat_rule.py`); None when the
        server does not count one (an older server): the agent heartbeats as it always did."""
        return self._poll_beat_s

    def deliver_reports(self, timeout: float) -> bool:
        """Send every spooled report now, waiting up to `timeout` s; whether none is left."""
        return self._reporter.drain(timeout) if self._reporter is not None else True

    @property
    def attempts(self) -> Attempts:
        if self._attempts is None:
            raise RuntimeError("the agent's threads have not started")
        return self._attempts

    def client(self, token: str | None, timeout: float | None = None) -> HttpClient:
        """An HTTP client for one thread; the agent closes them all when it ends."""
        client = HttpClient(self.enrolment.server, token, timeout=timeout or self.settings.http_timeout_s,
                            ca_file=self.settings.ca_file)
        self._clients.append(client)
        return client

    def reenrol(self) -> None:
        """The server refused this node's credential: enrol again with the given token."""
        self._register(use_stored=False)

    # -- lifecycle --

    def request_stop(self) -> None:
        """Ask for a clean shutdown (signal handlers, tests). A second request skips waiting."""
        if self.stop_event.is_set():
            self._hurry = True
        self.stop_event.set()

    def run(self) -> int:
        sys.setswitchinterval(self.settings.thread_switch_s)
        try:
            self._dir_lock.acquire()
            recover_leftovers(self.spool, self.settings.leftover_grace_s, self.settings.output_mtime_slack_s)
            if not self._register():
                return EXIT_OK  # stopped before the server ever answered
            self._start_threads()
            while not self.stop_event.wait(_STOP_POLL_S):
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
            self._dir_lock.release()

    def _register(self, use_stored: bool = True) -> bool:
        """Register until the server answers (False if stopped first), then act on its answer."""
        registration = self.enrolment.register(self.facts.to_json(), self.name, self.stop_event,
                                               use_stored=use_stored)
        if registration is None:
            return False
        timeout = registration.node_timeout_s
        if timeout is not None and self._heartbeat_s > timeout / 3:
            # The server declares a node down after `timeout` silent seconds: beat three times within it,
            # or a busy moment makes a healthy node flap down and up and lose its tasks.
            log.warning("the server's node timeout is %.1f s: heartbeat every %.2f s instead of %.2f s",
                        timeout, timeout / 3, self._heartbeat_s)
            self._heartbeat_s = timeout / 3
        self._poll_beat_s = (poll_beat_wait(self.settings.work_wait_s, timeout) if registration.poll_heartbeat
                             else None)
        self.node_id = registration.node_id
        self.name = registration.name
        self._token = registration.token
        if self._reporter is not None:
            self._reporter.client = self.client(self._token)
        f = self.facts
        log.info("registered as node %s (%s): %d cores, %d MB, %d GPUs, tags %s; state in %s",
                 self.name, self.node_id, f.cores, f.memory_mb, len(f.gpus), ",".join(f.tags) or "-",
                 self.state_dir)
        self.registered.set()
        return True

    def _start_threads(self) -> None:
        assert self._token is not None
        self._reporter = Reporter(self.client(self._token), self.spool, self.conn, self.settings)
        room = Room(self.facts.cores, self.facts.memory_mb) if self.settings.tasks_ahead else None
        self._attempts = Attempts(self.settings, self.spool, self._reporter, hide_gpus=self.hide_gpus, room=room)
        attempts = self._attempts
        if room is not None:
            self._reporter.tasks_waiting = lambda: room.waiting() > 0
        if self.settings.finish_asks_work:
            self._reporter.on_work = lambda answer: start_work(attempts, answer)  # a freed slot's next task
        self._reporter.start()
        self._reporter.wake()
        loops: tuple[tuple[Callable[[Agent], None], str], ...] = ((heartbeat_loop, "heartbeat"), (work_loop, "work"))
        for target, name in loops:
            thread = threading.Thread(target=target, args=(self,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        floor = free_floor_mb(self.settings.memory_guard_free_mb, resources.total_memory_mb())
        if floor > 0:
            guard = threading.Thread(target=guard_loop, name="memory-guard", daemon=True,
                                     args=(self._attempts, floor, float(self.facts.memory_mb),
                                           self.settings.process_sample_s, self.stop_event))
            guard.start()
            self._threads.append(guard)

    # -- shutdown --

    def _say_goodbye(self) -> None:
        """Tell the server this node is leaving, so the tasks we give back go to other nodes instead
        of straight back to our own still-open long poll. Best effort: a server that is down will
        notice through the missing heartbeats."""
        if self._token is None:
            return
        try:
            self.client(self._token, timeout=self.settings.goodbye_timeout_s).post("/agent/goodbye", {})
        except Exception as exc:  # noqa: BLE001 - leaving anyway
            log.info("could not say goodbye to the server (%s)", exc)

    def _shutdown(self) -> None:
        if self._reporter is not None:
            self._reporter.on_work = None  # reports from now on ask for nothing
        running = self._attempts.stop_taking() if self._attempts is not None else []
        self.stop_event.set()
        self._say_goodbye()
        grace = self.settings.shutdown_grace_s
        Attempts.give_up(running, grace)
        end = time.monotonic() + grace + _JOIN_EXTRA_S
        for _, thread in running:
            thread.join(max(0.0, end - time.monotonic()))
        if self._reporter is not None:
            flushed = self._reporter.drain(_HURRIED_FLUSH_S if self._hurry else self.settings.shutdown_flush_s)
            work = next((t for t in self._threads if t.name == "work"), None)
            if running and flushed and work is not None and work.is_alive() and not self._hurry:
                # The lost reports put those tasks back in the queue, and the server may hand one
                # straight back to our still-open long poll. Wait for that answer: the work thread
                # reports such assignments lost too, instead of leaving them to the server's timeout.
                work.join(_LATE_ANSWER_S)
                flushed = self._reporter.drain(_LATE_ANSWER_S)
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


def run_agent(settings: AgentSettings) -> int:
    """Run the agent until SIGTERM/SIGINT; returns the process exit code (0 on a clean stop,
    2 when a person must act: enrolment refused, name taken, state folder in use)."""
    _setup_logging()
    # The agent process is the subreaper of its tasks: what a task orphans comes back to it
    # (`agent/reaper.py`). Only here, where the agent is the process's program: an `Agent` run inside
    # another program (tests) must not reap that program's other children.
    become_subreaper()
    try:
        agent = Agent(settings)
    except ValueError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG

    def on_signal(signum: int, frame: FrameType | None) -> None:
        agent.request_stop()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            previous[stop_signal] = signal.signal(stop_signal, on_signal)
    try:
        return agent.run()
    finally:
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)
