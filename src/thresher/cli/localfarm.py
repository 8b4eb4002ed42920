"""A whole farm on this machine: one server process and N agent processes (`thresher up`, `demo`).

The farm is a set of child processes, so the rules are about processes: start the server, wait until
it answers, start agents with the enrollment token it wrote, and on the way out stop agents before
the server (so they report their tasks) with terminate, wait, kill, leaving no orphan behind.
Children run in their own session so a Ctrl+C in the terminal reaches only us and we stop them in
order; on Linux they also get SIGTERM if we die without cleaning up.

An agent that dies is started again (same name and state folder, so it comes back as the same node)
after a delay that doubles while it keeps dying (`RESTART_DELAYS_S`), and the rest of the farm goes on;
only the server dying ends the farm. The farm refuses a data folder another live server serves
(server/running.py) before it changes anything there. Local agents share the machine: each offers its
share of the cores and of the memory unless told otherwise (`agent_args`, from `up`'s flags).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from thresher.client.api import Thresher
from thresher.client.http import ApiError, ServerUnreachable
from thresher.model.failure_summary import plural
from thresher.model.states import NodeState
from thresher.server.running import running_server

SERVER_START_TIMEOUT_S = 60.0
AGENT_START_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Delays before starting a dead agent again, the next one each time it dies soon after a start."""
STABLE_S = 60.0
"""An agent that ran this long before dying starts again after the first delay."""


class FarmError(Exception):
    """The local farm could not start or died; the message says which part and where its log is."""


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us if the farm process dies (no orphans)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the demo's farm must not collide with a running one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def split_cores(total: int | None, agents: int) -> int:
    """Cores each local agent offers: the machine's cores shared out, at least one each."""
    return max(1, (total or 1) // max(1, agents))


def split_memory(total_mb: int | None, agents: int) -> int:
    """Memory (MB) each local agent offers: the machine's memory shared out like its cores."""
    if total_mb is None:
        import psutil

        total_mb = int(psutil.virtual_memory().total // (1024 * 1024))
    return max(1, total_mb // max(1, agents))


@dataclass
class Child:
    """One child process and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path | None
    log_file: IO[bytes] | None = None
    started: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0
    """Times in a row it died within STABLE_S of a start (picks the restart delay)."""
    restart_at: float | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class LocalFarm:
    """Server plus agents as child processes, sharing one data folder."""

    data_dir: Path
    port: int
    agents: int = 1
    host: str = "127.0.0.1"
    cores_per_agent: int | None = None
    memory_per_agent_mb: int | None = None
    agent_args: list[str] = field(default_factory=list)
    """More flags for every agent (`--tags`, `--pool`, `--app`, `--config` ... from `up`)."""
    server_args: list[str] = field(default_factory=list)
    """More flags for the server (`--config` from `up`)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the children (the demo moves THRESHER_HOME away from the user's)."""
    log_to_files: bool = True
    save_client_config: bool = True
    """Whether the server saves its admin token as the user's client config (not for the demo)."""
    node_prefix: str = field(default_factory=lambda: socket.gethostname().split(".")[0] or "node")
    say: Callable[[str], None] = lambda message: None

    server: Child | None = None
    agent_children: list[Child] = field(default_factory=list)
    url: str = ""

    # -- paths ---------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def enroll_token_path(self) -> Path:
        return self.data_dir / "enroll.token"

    @property
    def server_json_path(self) -> Path:
        return self.data_dir / "server.json"

    def admin_token(self) -> str:
        return self.admin_token_path.read_text(encoding="utf-8").strip()

    def client(self) -> Thresher:
        return Thresher(self.url, self.admin_token())

    # -- start ---------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        env = {**os.environ, **self.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        log_path: Path | None = None
        log_file: IO[bytes] | None = None
        if self.log_to_files:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{name}.log"
            log_file = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT if log_file else None,
            start_new_session=True, preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        return Child(name, proc, log_path, log_file)

    def server_argv(self) -> list[str]:
        argv = [sys.executable, "-m", "thresher.cli", "server",
                "--db", f"sqlite:///{self.data_dir / 'thresher.db'}",
                "--host", self.host, "--port", str(self.port), "--data", str(self.data_dir)]
        if not self.save_client_config:
            argv.append("--no-client-config")
        return argv + self.server_args

    def agent_argv(self, index: int) -> list[str]:
        argv = [sys.executable, "-m", "thresher.cli", "agent", "--server", self.url,
                "--name", f"{self.node_prefix}-{index}", "--state-dir", str(self.data_dir / "agents" / str(index))]
        if self.cores_per_agent:
            argv += ["--cores", str(self.cores_per_agent)]
        if self.memory_per_agent_mb:
            argv += ["--memory", str(self.memory_per_agent_mb)]
        return argv + self.agent_args

    def start(self) -> None:
        """Start the server, wait for it, then the agents, then wait until they are registered."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        other = running_server(self.data_dir)
        if other is not None:
            raise FarmError(f"a farm already serves {self.data_dir}: {other.describe()}; stop it first (Ctrl+C "
                            f"where it runs, or kill {other.pid}), or pass --data with another folder")
        if port_in_use(self.host, self.port):
            hint = f" (see {self.server_json_path})" if self.server_json_path.exists() else ""
            raise FarmError(f"port {self.port} on {self.host} is already in use: is a farm already running?{hint}")
        self.server_json_path.unlink(missing_ok=True)
        self.url = f"http://{self.host}:{self.port}"
        self.say(f"starting server on {self.url}")
        self.server = self._spawn("server", self.server_argv())
        self._wait_for_server()
        self._start_agents()

    def _wait_for_server(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        probe = Thresher(self.url, None, timeout=2.0)
        try:
            while True:
                if not self.server.alive():
                    raise FarmError(self._died("server", self.server))
                url = self._url_from_server_json()
                if url and url != self.url:
                    probe.close()
                    self.url = url
                    probe = Thresher(self.url, None, timeout=2.0)
                try:
                    probe.health()
                    if self.enroll_token_path.exists() and self.admin_token_path.exists():
                        return
                except (ServerUnreachable, ApiError):
                    pass
                if time.monotonic() > deadline:
                    raise FarmError(f"server did not answer within {SERVER_START_TIMEOUT_S:.0f} s"
                                    + self._log_hint(self.server))
                time.sleep(0.1)
        finally:
            probe.close()

    def _url_from_server_json(self) -> str | None:
        try:
            info = json.loads(self.server_json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if self.server is not None and info.get("pid") not in (None, self.server.proc.pid):
            return None
        url = info.get("url")
        return url.rstrip("/") if isinstance(url, str) and url else None

    def _start_agents(self) -> None:
        if self.agents <= 0:
            return
        each = [plural(self.cores_per_agent, "core")] if self.cores_per_agent else []
        each += [f"{self.memory_per_agent_mb} MB"] if self.memory_per_agent_mb else []
        self.say(f"starting {plural(self.agents, 'agent')}"
                 + (f", {' and '.join(each)} each" if each else ""))
        for index in range(1, self.agents + 1):
            self.agent_children.append(self._spawn_agent(index))
        self._wait_for_agents()

    def _spawn_agent(self, index: int) -> Child:
        enroll = self.enroll_token_path.read_text(encoding="utf-8").strip()
        # The token goes through the environment, not argv, so `ps` does not show it.
        return self._spawn(f"agent-{index}", self.agent_argv(index), {"THRESHER_ENROLL_TOKEN": enroll})

    def _wait_for_agents(self) -> None:
        names = {f"{self.node_prefix}-{i}" for i in range(1, self.agents + 1)}
        deadline = time.monotonic() + AGENT_START_TIMEOUT_S
        with self.client() as client:
            while True:
                for child in self.agent_children:
                    if not child.alive():
                        raise FarmError(self._died(child.name, child))
                try:
                    up = {n.name for n in client.all_nodes() if n.state == NodeState.UP}
                except (ServerUnreachable, ApiError):
                    up = set()
                if names <= up:
                    return
                if time.monotonic() > deadline:
                    missing = ", ".join(sorted(names - up))
                    raise FarmError(f"agents did not register within {AGENT_START_TIMEOUT_S:.0f} s: {missing}"
                                    + self._log_hint(self.agent_children[0]))
                time.sleep(0.2)

    def _log_hint(self, child: Child) -> str:
        return f"; see {child.log_path}" if child.log_path else ""

    def _died(self, what: str, child: Child) -> str:
        tail = child.log_tail()
        message = f"{what} exited with code {child.proc.returncode}{self._log_hint(child)}"
        return message + ("\n" + tail if tail else "")

    # -- run and stop --------------------------------------------------------------------------

    def check(self) -> str | None:
        """None while the server runs, else what happened to it (that ends the farm). Dead agents are
        started again here, after their delay; call it often (twice a second)."""
        if self.server is not None and not self.server.alive():
            return self._died("server", self.server)
        now = time.monotonic()
        for position, child in enumerate(self.agent_children):
            if child.alive():
                continue
            if child.restart_at is None:
                quick = child.quick_deaths + 1 if now - child.started < STABLE_S else 1
                delay = RESTART_DELAYS_S[min(quick, len(RESTART_DELAYS_S)) - 1]
                child.quick_deaths, child.restart_at = quick, now + delay
                node = f"{self.node_prefix}-{child.name.rsplit('-', 1)[1]}"
                self.say(f"{child.name} (node {node}) exited with code {child.proc.returncode}; starting it again in "
                         f"{delay:.0f} s{self._log_hint(child)}")
            elif now >= child.restart_at:
                if child.log_file is not None:
                    child.log_file.close()
                index = int(child.name.rsplit("-", 1)[1])
                fresh = self._spawn_agent(index)
                fresh.quick_deaths = child.quick_deaths
                self.agent_children[position] = fresh
                self.say(f"{child.name} started again (pid {fresh.proc.pid})")
        return None

    def stop(self) -> None:
        """Agents first (they hand their tasks back), then the server: terminate, wait, kill."""
        if self.agent_children:
            self.say("stopping agents")
            _stop_all(self.agent_children)
        if self.server is not None:
            self.say("stopping server")
            _stop_all([self.server])
        for child in [*self.agent_children, *([self.server] if self.server else [])]:
            if child.log_file is not None:
                child.log_file.close()
        self.agent_children = []
        self.server = None

    def __enter__(self) -> "LocalFarm":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_all(children: list[Child], grace: float = STOP_GRACE_S) -> None:
    for child in children:
        if child.alive():
            try:
                child.proc.terminate()
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                child.proc.kill()
            child.proc.wait()
