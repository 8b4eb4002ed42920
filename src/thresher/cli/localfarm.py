"""A whole farm on this machine: one server process and N agent processes (`thresher up`, `demo`).

The farm is a set of child processes, so the rules are about processes: start the server, wait until
it answers, start agents with the enrollment token it wrote, and on the way out stop agents before
the server (so they report their tasks) with terminate, wait, kill, leaving no orphan behind.
Children run in their own session so a Ctrl+C in the terminal reaches only us and we stop them in
order; on Linux they also get SIGTERM if we die without cleaning up.
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
from thresher.model.states import NodeState

SERVER_START_TIMEOUT_S = 60.0
AGENT_START_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0


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


@dataclass
class Child:
    """One child process and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path | None
    log_file: IO[bytes] | None = None

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
        return argv

    def agent_argv(self, index: int) -> list[str]:
        argv = [sys.executable, "-m", "thresher.cli", "agent", "--server", self.url,
                "--name", f"{self.node_prefix}-{index}", "--state-dir", str(self.data_dir / "agents" / str(index))]
        if self.cores_per_agent:
            argv += ["--cores", str(self.cores_per_agent)]
        return argv

    def start(self) -> None:
        """Start the server, wait for it, then the agents, then wait until they are registered."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
        enroll = self.enroll_token_path.read_text(encoding="utf-8").strip()
        self.say(f"starting {self.agents} agent{'s' if self.agents != 1 else ''}"
                 + (f", {self.cores_per_agent} cores each" if self.cores_per_agent else ""))
        for index in range(1, self.agents + 1):
            # The token goes through the environment, not argv, so `ps` does not show it.
            child = self._spawn(f"agent-{index}", self.agent_argv(index), {"THRESHER_ENROLL_TOKEN": enroll})
            self.agent_children.append(child)
        self._wait_for_agents()

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
        """None while everything runs; else what died (the server dying ends the farm)."""
        if self.server is not None and not self.server.alive():
            return self._died("server", self.server)
        for child in self.agent_children:
            if not child.alive():
                return self._died(child.name, child)
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
