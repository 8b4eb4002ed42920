"""A real farm in subprocesses: one `thresher.server`, any number of `thresher.agent`s.

Used by the end-to-end tests (through the `farm` / `make_farm` fixtures in tests/conftest.py) and by
the benches. Everything runs on 127.0.0.1 with `THRESHER_HOME` pointing into the farm's own folder,
so nothing touches the real user's configuration.

Each process writes its stdout and stderr to `<root>/logs/<name>.log`; `Farm.logs_tail()` gathers the
tails, and the test suite attaches them to the report of any failing test.

    farm = Farm(db_url, root).start()
    farm.start_agent("node-1", cores=4)
    with farm.client() as api:
        job = api.post("/jobs", spec)
    farm.wait_for(lambda: api.get(f"/jobs/{job['id']}")["state"] == "succeeded", timeout=30)
    farm.stop()
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import httpx
import psutil

from thresher.client.http import HttpClient

T = TypeVar("T")

DEFAULT_START_TIMEOUT = 30.0


class FarmError(RuntimeError):
    """A farm process would not start, died, or a wait ran out of time. Carries the log tails."""


@dataclass
class ManagedProcess:
    """One subprocess of the farm and where its output goes."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def tail(self, lines: int = 60) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        text = data[-64_000:].decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Agent(ManagedProcess):
    """An agent process; `state_dir` keeps its identity (token) across restarts."""

    state_dir: Path = Path()
    options: dict[str, Any] = field(default_factory=dict)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group the child leads (it was started in its own session)."""
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            popen.send_signal(sig)
        except ProcessLookupError:
            pass


class Farm:
    """A real Thresher server plus agents, as subprocesses, under one temporary folder.

    `db_url`: `sqlite:///...` or `postgresql://...` (given to the server as --db).
    `root`: a folder owned by this farm; server data, agent state, logs and THRESHER_HOME go there.
    `node_timeout`: seconds without heartbeat before the server declares a node down (--node-timeout).
    `server_args`: extra command-line arguments for the server.
    `env`: extra environment for every subprocess.
    `ca_file`: for a server started with `--tls-cert/--tls-key` in `server_args`: the CA its clients and
    agents trust (agents get it as `$THRESHER_CA_FILE`).
    """

    def __init__(self, db_url: str, root: str | Path, *, node_timeout: float | None = None,
                 server_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 python: str | None = None, ca_file: str | Path | None = None) -> None:
        self.db_url = db_url
        self.ca_file = ca_file
        self.root = Path(root)
        self.node_timeout = node_timeout
        self.server_args = list(server_args)
        self.python = python or sys.executable
        self.data_dir = self.root / "server"
        self.logs_dir = self.root / "logs"
        self.home = self.root / "home"
        for path in (self.data_dir, self.logs_dir, self.home):
            path.mkdir(parents=True, exist_ok=True)
        self.env = self._base_env({**({"THRESHER_CA_FILE": str(ca_file)} if ca_file else {}), **(env or {})})
        self.server: ManagedProcess | None = None
        self.agents: dict[str, Agent] = {}
        self.server_url: str = ""
        self.port: int = 0
        self.admin_token: str = ""
        self.enroll_token: str = ""
        self.leftovers: list[str] = []  # descriptions of processes stop() had to kill after the fact
        self._clients: list[HttpClient] = []
        self._api: HttpClient | None = None
        self._tracked: dict[int, psutil.Process] = {}  # descendants seen at kill/stop time
        self._server_starts = 0
        self._stopped = False

    # ------------------------------------------------------------------ environment
    def _base_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("THRESHER_")}
        env.update({
            "THRESHER_HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_COLOR": "1",
            # tests name projects freely; tests of the refusal turn this off
            "THRESHER_SERVER_CREATE_UNKNOWN_PROJECTS": "true",
        })
        # Loopback must never go through a proxy.
        for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(key, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.update(extra)
        return env

    def _spawn(self, proc: ManagedProcess, env: dict[str, str] | None = None) -> None:
        proc.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(proc.log_path, "ab") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(proc.argv)}\n".encode())
            log.flush()
            proc.popen = subprocess.Popen(
                proc.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env or self.env, cwd=self.root, start_new_session=True)

    # ------------------------------------------------------------------ server
    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> "Farm":
        """Start the server (first on a free port; later on the same port) and wait for health."""
        self.start_server(timeout=timeout)
        return self

    def start_server(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        if self.server and self.server.alive():
            raise FarmError("server already running")
        server_json = self.data_dir / "server.json"
        server_json.unlink(missing_ok=True)
        argv = [self.python, "-m", "thresher.server", "--db", self.db_url, "--host", "127.0.0.1",
                "--port", str(self.port), "--data", str(self.data_dir), "--no-client-config"]
        if self.node_timeout is not None:
            argv += ["--node-timeout", str(self.node_timeout)]
        argv += self.server_args
        self._server_starts += 1
        self.server = ManagedProcess("server", argv, self.logs_dir / "server.log")
        self._spawn(self.server)
        deadline = time.monotonic() + timeout

        # With --port 0 the server picks a port and says so in server.json. On a restart we pass the
        # port we had, so agents keep their URL; server.json may or may not be rewritten then.
        while True:
            self._check_alive(self.server)
            if server_json.exists():
                try:
                    info = json.loads(server_json.read_text())
                    self.server_url = str(info["url"]).rstrip("/")
                    break
                except (ValueError, KeyError):
                    pass  # half-written; read again
            elif self.port and self._health_ok(f"{self._scheme}://127.0.0.1:{self.port}"):
                self.server_url = f"{self._scheme}://127.0.0.1:{self.port}"
                break
            if time.monotonic() > deadline:
                raise self._error(f"server did not write {server_json} within {timeout:.0f}s")
            time.sleep(0.05)
        self.port = httpx.URL(self.server_url).port or self.port

        while not self._health_ok(self.server_url):
            self._check_alive(self.server)
            if time.monotonic() > deadline:
                raise self._error(f"server at {self.server_url} did not answer /api/v1/health in {timeout:.0f}s")
            time.sleep(0.05)

        self.admin_token = self._read_token("admin.token", deadline)
        self.enroll_token = self._read_token("enroll.token", deadline)

    def _read_token(self, name: str, deadline: float) -> str:
        path = self.data_dir / name
        while True:
            try:
                token = path.read_text().strip()
                if token:
                    return token
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self._error(f"server did not write {path}")
            time.sleep(0.05)

    @property
    def _scheme(self) -> str:
        return "https" if "--tls-cert" in self.server_args else "http"

    def _health_ok(self, url: str) -> bool:
        try:
            response = httpx.get(url + "/api/v1/health", timeout=2.0,
                                 verify=ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True)
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def kill_server(self, sig: int = signal.SIGKILL, wait: float = 15.0) -> int | None:
        """Send `sig` to the server and wait for it to exit; returns its exit status."""
        if not self.server or not self.server.popen:
            raise FarmError("no server started")
        popen = self.server.popen
        if popen.poll() is None:
            self._track(popen.pid)
            _signal_group(popen, sig)
        try:
            return popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            _signal_group(popen, signal.SIGKILL)
            return popen.wait(timeout=10)

    def restart_server(self, sig: int = signal.SIGTERM, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Stop the server with `sig` (SIGKILL for a crash) and start it again on the same port."""
        if self.server and self.server.alive():
            self.kill_server(sig)
        self.start_server(timeout=timeout)

    # ------------------------------------------------------------------ agents
    def start_agent(self, name: str, cores: int = 2, memory: int = 4096, *, gpus: int | None = None,
                    tags: Iterable[str] = (), heartbeat: float = 0.5, token: str | None = None,
                    extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                    wait: bool = True, timeout: float = DEFAULT_START_TIMEOUT) -> Agent:
        """Start `python -m thresher.agent` as node `name`; with `wait`, until the server lists it up.

        Restarting an agent with the same name reuses its state folder (and so its identity).
        """
        if name in self.agents and self.agents[name].alive():
            raise FarmError(f"agent {name!r} is already running")
        state_dir = self.root / "agents" / name
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", "thresher.agent", "--server", self.server_url,
                "--token", token or self.enroll_token, "--name", name, "--cores", str(cores),
                "--memory", str(memory), "--state-dir", str(state_dir), "--heartbeat", str(heartbeat)]
        if gpus is not None:
            argv += ["--gpus", str(gpus)]
        tags = list(tags)
        if tags:
            argv += ["--tags", ",".join(tags)]
        argv += list(extra_args)
        agent = Agent(f"agent-{name}", argv, self.logs_dir / f"agent-{name}.log", state_dir=state_dir,
                      options={"cores": cores, "memory": memory, "gpus": gpus, "tags": tags,
                               "heartbeat": heartbeat, "extra_args": list(extra_args), "env": env})
        self.agents[name] = agent
        self._spawn(agent, {**self.env, **(env or {})})
        if wait:
            self.wait_for_node(name, timeout=timeout)
        return agent

    def wait_for_node(self, name: str, state: str = "up", timeout: float = DEFAULT_START_TIMEOUT) -> dict[str, Any]:
        """Wait until GET /nodes lists `name` in `state`; returns the node."""
        agent = self.agents.get(name)

        def node() -> dict[str, Any] | None:
            if agent is not None and state == "up":
                self._check_alive(agent)
            for item in self.api.get("/nodes")["items"]:
                if item.get("name") == name and item.get("state") == state:
                    return item
            return None

        return self.wait_for(node, timeout=timeout, message=f"node {name!r} to be {state}")

    def kill_agent(self, name: str, sig: int = signal.SIGKILL, *, tree: bool = False,
                   wait: float = 15.0) -> int | None:
        """Send `sig` to agent `name` and wait for it to exit; returns its exit status.

        By default only the agent process is signalled (SIGTERM: a graceful shutdown; SIGKILL: the agent
        crashes and the tasks it started keep running). With `tree=True` every process the agent started
        gets `sig` too, like a node losing power. `wait=0` returns at once.
        """
        agent = self.agents[name]
        assert agent.popen is not None
        if agent.popen.poll() is None:
            victims = self._track(agent.popen.pid) if tree else []
            if not tree:
                self._track(agent.popen.pid)
            agent.popen.send_signal(sig)
            for child in victims:
                try:
                    child.send_signal(sig)
                except psutil.Error:
                    pass
        if wait <= 0:
            return agent.popen.poll()
        try:
            return agent.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            _signal_group(agent.popen, signal.SIGKILL)
            return agent.popen.wait(timeout=10)

    def restart_agent(self, name: str, sig: int = signal.SIGTERM, **overrides: Any) -> Agent:
        """Stop agent `name` with `sig` and start it again with the same options and state folder."""
        old = self.agents[name]
        if old.alive():
            self.kill_agent(name, sig)
        opts = {**old.options, **overrides}
        return self.start_agent(name, opts.pop("cores"), opts.pop("memory"), **opts)

    # ------------------------------------------------------------------ clients and waiting
    @property
    def api(self) -> HttpClient:
        """A shared admin client for quick calls (closed by stop())."""
        if self._api is None or self._api.server != self.server_url or self._api.token != self.admin_token:
            self._api = self.client()
        return self._api

    def client(self, token: str | None = None, timeout: float = 30.0) -> HttpClient:
        """An HttpClient on the server, with the admin token unless another is given."""
        client = HttpClient(self.server_url, token or self.admin_token, timeout=timeout, ca_file=self.ca_file)
        self._clients.append(client)
        return client

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05,
                 message: str | None = None) -> T:
        """Call `predicate` until it returns something truthy; return that. Raise FarmError on timeout.

        Exceptions from the predicate are retried until the deadline (the server may be restarting);
        the last one is chained to the timeout error.
        """
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        last_value: Any = None
        while True:
            try:
                last_value = predicate()
                if last_value:
                    return last_value
                last_exc = None
            except FarmError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported on timeout
                last_exc = exc
            if time.monotonic() > deadline:
                what = message or getattr(predicate, "__name__", "condition")
                detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_value!r}"
                raise self._error(f"timed out after {timeout:.1f}s waiting for {what}{detail}") from last_exc
            time.sleep(interval)

    # ------------------------------------------------------------------ diagnostics
    def processes(self) -> list[ManagedProcess]:
        return ([self.server] if self.server else []) + list(self.agents.values())

    def logs_tail(self, lines: int = 60) -> str:
        """The last lines of every process's output, labelled, for failure reports."""
        parts = []
        for proc in self.processes():
            status = "running" if proc.alive() else f"exited {proc.returncode}"
            parts.append(f"----- {proc.name} (pid {proc.pid}, {status}) {proc.log_path}\n{proc.tail(lines)}")
        return "\n".join(parts)

    def _track(self, pid: int) -> list[psutil.Process]:
        """Remember pid's descendants so stop() can find them once they are orphans."""
        found = _descendants(pid)
        for child in found:
            self._tracked.setdefault(child.pid, child)
        return found

    def _check_alive(self, proc: ManagedProcess) -> None:
        if proc.popen is not None and proc.popen.poll() is not None:
            raise self._error(f"{proc.name} exited with status {proc.popen.returncode}")

    def _error(self, message: str) -> FarmError:
        return FarmError(f"{message}\n{self.logs_tail(40)}")

    # ------------------------------------------------------------------ teardown
    def stop(self, grace: float = 10.0) -> None:
        """Terminate agents, then the server; kill whatever they left behind. Idempotent.

        Any process still alive after its parent exited is killed and described in `self.leftovers`.
        """
        if self._stopped:
            return
        self._stopped = True
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        procs = list(self.agents.values()) + ([self.server] if self.server else [])
        for proc in procs:
            if proc.popen is not None and proc.popen.poll() is None:
                self._track(proc.popen.pid)
        tracked = list(self._tracked.values())
        # Agents first (SIGTERM: they should stop their tasks and report), then the server.
        for group in (list(self.agents.values()), [self.server] if self.server else []):
            live = [p for p in group if p.popen is not None and p.popen.poll() is None]
            for proc in live:
                assert proc.popen is not None
                proc.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for proc in live:
                assert proc.popen is not None
                try:
                    proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.leftovers.append(f"{proc.name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s")
                    _signal_group(proc.popen, signal.SIGKILL)
                    proc.popen.wait(timeout=10)
        # Anything the farm processes started and left running (tasks, workers) is an orphan: note it
        # and kill it, then sweep the process groups for good measure.
        survivors = []
        for child in tracked:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(child)
            except psutil.Error:
                pass
        for child in survivors:
            try:
                desc = f"pid {child.pid} {' '.join(child.cmdline())[:200]}"
                child.kill()
                self.leftovers.append(f"orphan killed: {desc}")
            except psutil.Error:
                pass
        psutil.wait_procs(survivors, timeout=5)
        for proc in procs:
            if proc.popen is not None:
                _signal_group(proc.popen, signal.SIGKILL)

    def __enter__(self) -> "Farm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
