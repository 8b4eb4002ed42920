"""`python -m thresher.agent`: run a node agent from a shell, a systemd unit or a test.

The `thresher agent` CLI command builds the same `AgentSettings` (thresher.config.load_settings) and
calls the same `run_agent`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from thresher.agent.daemon import run_agent
from thresher.agent.settings import AgentSettings, app_entries
from thresher.config import ConfigError, load_settings

ENV_TOKEN = "THRESHER_TOKEN"  # this entry point's older name for the token, read last


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m thresher.agent",
                                     description="Thresher render node agent: pulls work from a server and runs it. "
                                                 "Every setting is listed in docs/configuration.md.")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file whose [agent] section holds settings (flags and environment win over it)")
    parser.add_argument("--server", help="server URL, e.g. http://farm:8000 (env THRESHER_SERVER)")
    parser.add_argument("--token", help="enrollment token (first start) or this node's token (env THRESHER_TOKEN)")
    parser.add_argument("--ca-file", type=Path, metavar="FILE",
                        help="CA certificate(s) that signed an https server's certificate (env THRESHER_CA_FILE)")
    parser.add_argument("--name", help="node name (default: host name)")
    parser.add_argument("--cores", type=int, help="cores to offer (default: all)")
    parser.add_argument("--memory", type=int, metavar="MB", help="memory to offer in MB (default: all)")
    parser.add_argument("--gpus", type=int, help="GPUs to offer (default: all NVIDIA GPUs found)")
    parser.add_argument("--tags", help="comma-separated tags, e.g. gpu,blender")
    parser.add_argument("--app", action="append", default=[], metavar="NAME=PATH",
                        help="where an application is on this node, e.g. blender=/opt/blender/blender "
                             "(repeatable; env THRESHER_APP_<NAME> works too)")
    parser.add_argument("--state-dir", type=Path, help="state folder (credential, spool, logs)")
    parser.add_argument("--heartbeat", type=float, metavar="SECONDS", help="heartbeat period (default: 5)")
    return parser


def read_settings(argv: list[str] | None = None) -> AgentSettings:
    """The agent's settings from the command line, the environment and the --config file."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        apps = app_entries(args.app)
    except ValueError as exc:
        parser.error(str(exc))
    overrides = {"server": args.server, "token": args.token, "name": args.name, "cores": args.cores,
                 "memory_mb": args.memory, "gpus": args.gpus, "tags": args.tags, "apps": apps or None,
                 "state_dir": args.state_dir, "heartbeat_s": args.heartbeat, "ca_file": args.ca_file}
    try:
        settings = load_settings(AgentSettings, section="agent", config_file=args.config, overrides=overrides)
    except ConfigError as exc:
        parser.error(str(exc))
    if not settings.token and os.environ.get(ENV_TOKEN):
        settings = settings.model_copy(update={"token": os.environ[ENV_TOKEN]})
    if not settings.server:
        parser.error("--server is required (or set THRESHER_SERVER)")
    if not settings.token:
        parser.error("--token is required (or set THRESHER_TOKEN)")
    return settings


def main(argv: list[str] | None = None) -> int:
    return run_agent(read_settings(argv))


if __name__ == "__main__":
    sys.exit(main())
