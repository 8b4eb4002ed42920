"""Commands that run farm processes: `server`, `agent`, and `up` (both at once on this machine)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from thresher.cli.common import console, err, fail
from thresher.cli.localfarm import FarmError, LocalFarm, split_cores, split_memory
from thresher.client.config import DEFAULT_PORT, ENV_SERVER, client_config_path, data_dir, load_client_config

if TYPE_CHECKING:
    from thresher.agent.settings import AgentSettings

ENV_ENROLL_TOKEN = "THRESHER_ENROLL_TOKEN"


def once_minutes() -> int:
    from thresher.server.dashboard.once import TTL_S

    return int(TTL_S // 60)


def _parse_memory(value: str | None) -> int | None:
    if value is None:
        return None
    from thresher.model.spec import parse_memory_mb

    try:
        return parse_memory_mb(value.strip() if not value.strip().isdigit() else int(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--memory") from None


def server(
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: sqlite file in the data folder)",
                                           show_default=False)] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: 127.0.0.1).",
                                             show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, show_default=False,
                                             help=f"Port to listen on; 0 picks a free one (default: {DEFAULT_PORT}).")]
    = None,
    data: Annotated[Path | None, typer.Option("--data", help="Data folder: tokens, logs, sqlite database.",
                                              show_default=False)] = None,
    node_timeout: Annotated[float | None, typer.Option(
        "--node-timeout", show_default=False, help="Seconds of silence before a node is down (at least 1; 3 "
        "heartbeats of the agents, 5 s each by default; default: 60).")] = None,
    no_client_config: Annotated[bool, typer.Option("--no-client-config", help="Do not save the admin token "
                                                   "where the CLI finds it.")] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", metavar="FILE", show_default=False,
        help="PEM certificate (chain after it) to serve HTTPS with; needs --tls-key (README: TLS).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", metavar="FILE", show_default=False,
                                                 help="PEM private key of --tls-cert (unencrypted).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", show_default=False,
        help="TOML file whose \\[server] section holds settings (docs/configuration.md); flags and environment "
             "variables win over it.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, max=64, show_default=False,
        help="Server processes serving the one address, each started again if it dies (PostgreSQL only; "
             "default: 1).")] = None,
) -> None:
    """Run the Thresher server (API, dispatcher, dashboard) until stopped."""
    from thresher.config import ConfigError, load_settings
    from thresher.server.main import StartupError, serve
    from thresher.server.settings import ServerSettings

    try:
        settings = load_settings(ServerSettings, section="server", config_file=config, overrides={
            "db": db, "host": host, "port": port, "data_dir": data, "node_timeout_s": node_timeout,
            "tls_cert": tls_cert, "tls_key": tls_key, "workers": workers})
    except ConfigError as exc:
        fail(str(exc), 2)
    data_path = (settings.data_dir or data_dir()).expanduser().resolve()
    settings.data_dir = data_path
    try:
        serve(settings, save_client_config=not no_client_config)
    except StartupError as exc:
        fail(str(exc), 1)


def agent(
    server: Annotated[str | None, typer.Option("--server", "-s", help=f"Server URL (default: ${ENV_SERVER}, "
                                               "then the saved client config)", show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", "-t", show_default=False,
        help=f"Enrollment token (default: ${ENV_ENROLL_TOKEN}, then enroll.token of the local data folder)")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", metavar="FILE", show_default=False,
        help="CA certificate(s) that signed an https server's certificate (default: $THRESHER_CA_FILE, then "
             "the public CAs).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Node name (default: host name)")] = None,
    cores: Annotated[int | None, typer.Option("--cores", min=1, help="Cores to offer (default: all)")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory to offer: MB or '16G' (default: all)")]
    = None,
    gpus: Annotated[int | None, typer.Option("--gpus", min=0, help="GPUs to offer (default: all found)")] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Comma separated tags, e.g. gpu,linux")] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="The pool (cluster) this node serves (default: "
                                             "the one the server has; `default` for a new node)")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Where the agent keeps its credential "
                                                   "and unsent reports.", show_default=False)] = None,
    heartbeat: Annotated[float | None, typer.Option("--heartbeat", help="Seconds between heartbeats.")] = None,
    app: Annotated[list[str] | None, typer.Option(
        "--app", metavar="NAME=PATH", help="Where an application is on this node, e.g. blender=/opt/blender/blender "
        "(repeatable; $THRESHER_APP_<NAME> works too)")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", show_default=False,
        help="TOML file whose \\[agent] section holds settings (docs/configuration.md); flags and environment "
             "variables win over it.")] = None,
) -> None:
    """Run a render node agent: register, pull work, run it, report."""
    from thresher.agent.daemon import run_agent
    from thresher.agent.settings import AgentSettings, app_entries
    from thresher.config import ConfigError, load_settings

    try:
        apps = app_entries(app or [])
        settings = load_settings(AgentSettings, section="agent", config_file=config, overrides={
            "server": server, "token": token, "name": name, "cores": cores, "memory_mb": _parse_memory(memory),
            "gpus": gpus, "tags": tags, "pool": pool, "state_dir": state_dir, "heartbeat_s": heartbeat, "apps": apps or None,
            "ca_file": ca_file})
    except (ValueError, ConfigError) as exc:
        fail(str(exc), 2)
    if not settings.server:
        settings.server = load_client_config().get("server")
    if not settings.server:
        fail("no server: pass --server URL or set $THRESHER_SERVER", 2)
    local = data_dir() / "enroll.token"
    if not settings.token and local.exists():
        settings.token = local.read_text(encoding="utf-8").strip()
    if not settings.token:
        fail(f"no enrollment token: pass --token or set ${ENV_ENROLL_TOKEN} "
             "(the server writes it to enroll.token in its data folder)", 2)
    raise typer.Exit(run_agent(settings) or 0)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl+C so `kill <pid>` stops the farm as cleanly as the keyboard does. SIGINT
    stops it too even when it was started in the background (`thresher up &`), where the shell hands
    down SIGINT ignored and Python would then never raise KeyboardInterrupt."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def up(
    agents: Annotated[int, typer.Option("--agents", "-a", min=0, help="Local agents to start.")] = 1,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The server's port.")] = DEFAULT_PORT,
    data: Annotated[Path | None, typer.Option("--data", help="Data folder (default: the user data folder)",
                                              show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show server and agent output here "
                                          "instead of in log files.")] = False,
    cores: Annotated[int | None, typer.Option("--cores", min=1, show_default=False, help="Cores each agent "
                                              "offers (default: the machine's cores shared out)")] = None,
    memory: Annotated[str | None, typer.Option("--memory", show_default=False, help="Memory each agent offers: "
                                               "MB or '16G' (default: the machine's memory shared out)")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", min=0, help="GPUs each agent offers (default: all found)",
                                             show_default=False)] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Comma separated tags of every agent, e.g. gpu,linux",
                                             show_default=False)] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="The pool every agent serves", show_default=False)]
    = None,
    app: Annotated[list[str] | None, typer.Option(
        "--app", metavar="NAME=PATH", help="Where an application is, for every agent (repeatable)")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", show_default=False,
        help="TOML file: its \\[server] section goes to the server, \\[agent] to every agent "
             "(docs/configuration.md); flags win over it.")] = None,
) -> None:
    """Run a farm on this machine: a server and local agents, until Ctrl+C. A crashed agent is started again."""
    from thresher.agent.settings import AgentSettings, app_entries
    from thresher.config import ConfigError, load_settings

    try:
        apps = app_entries(app or [])
        wanted = load_settings(AgentSettings, section="agent", config_file=config, overrides={
            "cores": cores, "memory_mb": _parse_memory(memory), "gpus": gpus, "tags": tags, "pool": pool,
            "apps": apps or None})
    except (ValueError, ConfigError) as exc:
        fail(str(exc), 2)
    data_path = (data or data_dir()).expanduser().resolve()
    farm = LocalFarm(data_dir=data_path, port=port, agents=agents, host=host,
                     cores_per_agent=wanted.cores or split_cores(os.cpu_count(), agents),
                     memory_per_agent_mb=wanted.memory_mb or split_memory(None, agents),
                     agent_args=_agent_args(wanted, config), server_args=["--config", str(config)] if config else [],
                     log_to_files=not verbose, say=lambda message: console.print(f"[dim]{escape(message)}[/dim]", markup=True))
    with sigterm_as_interrupt():
        try:
            farm.start()
            _print_farm(farm)
            while (problem := farm.check()) is None:
                time.sleep(0.5)
            err(f"error: {problem}")
            code = 1
        except FarmError as exc:
            err(f"error: {exc}")
            code = 1
        except KeyboardInterrupt:
            code = 0
        finally:
            try:
                farm.stop()
            except KeyboardInterrupt:  # a second Ctrl+C while stopping: stop harder
                farm.stop()
    console.print("farm stopped")
    raise typer.Exit(code)


def _agent_args(wanted: "AgentSettings", config: Path | None) -> list[str]:
    """Flags that give every local agent what `up` was told (flags, environment or config file)."""
    args = ["--config", str(config)] if config else []
    if wanted.gpus is not None:
        args += ["--gpus", str(wanted.gpus)]
    if wanted.tags:
        args += ["--tags", ",".join(wanted.tags)]
    if wanted.pool:
        args += ["--pool", wanted.pool]
    for name, path in sorted(wanted.apps.items()):
        args += ["--app", f"{name}={path}"]
    return args


def login_link(farm: LocalFarm) -> str:
    """A one-time dashboard login link for the farm's admin (server/dashboard/once.py)."""
    from thresher.server.dashboard import once

    return f"{farm.url}/login?once={once.issue(farm.data_dir, farm.admin_token())}"


def _print_farm(farm: LocalFarm) -> None:
    saved = load_client_config().get("server") == farm.url
    console.print(f"[bold green]Thresher farm is up[/bold green] with {farm.agents} agent(s)", markup=True)
    console.print(f"  API        {farm.url}/api/v1")
    console.print(f"  API docs   {farm.url}/docs")
    console.print(f"  dashboard  {farm.url}/")
    console.print(f"  log in     {login_link(farm)}  (once, within {once_minutes()} minutes)")
    console.print(f"  admin token saved in {farm.admin_token_path}"
                  + (f" and {client_config_path()}" if saved else ""))
    if farm.log_to_files:
        console.print(f"  logs       {farm.log_dir}")
    console.print("Try: [bold]thresher submit-cmd --frames 1-10 -- echo frame {frame}[/bold]   Ctrl+C stops the farm.",
                  markup=True)
    sys.stdout.flush()
