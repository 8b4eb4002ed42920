"""`python -m thresher.agent`: run a node agent from a shell, a systemd unit or a test.

The `thresher agent` CLI command calls the same `run_agent` with the same options.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from thresher.agent.daemon import run_agent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m thresher.agent",
                                     description="Thresher render node agent: pulls work from a server and runs it.")
    parser.add_argument("--server", default=os.environ.get("THRESHER_SERVER"),
                        help="server URL, e.g. http://farm:8000 (env THRESHER_SERVER)")
    parser.add_argument("--token", default=os.environ.get("THRESHER_TOKEN"),
                        help="enrollment token (first start) or this node's token (env THRESHER_TOKEN)")
    parser.add_argument("--name", help="node name (default: host name)")
    parser.add_argument("--cores", type=int, help="cores to offer (default: all)")
    parser.add_argument("--memory", type=int, metavar="MB", help="memory to offer in MB (default: all)")
    parser.add_argument("--gpus", type=int, help="GPUs to offer (default: all NVIDIA GPUs found)")
    parser.add_argument("--tags", default="", help="comma-separated tags, e.g. gpu,blender")
    parser.add_argument("--app", action="append", default=[], metavar="NAME=PATH",
                        help="where an application is on this node, e.g. blender=/opt/blender/blender "
                             "(repeatable; env THRESHER_APP_<NAME> works too)")
    parser.add_argument("--state-dir", type=Path, help="state folder (credential, spool, logs)")
    parser.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS", help="heartbeat period")
    args = parser.parse_args(argv)
    if not args.server:
        parser.error("--server is required (or set THRESHER_SERVER)")
    if not args.token:
        parser.error("--token is required (or set THRESHER_TOKEN)")
    if args.heartbeat <= 0:
        parser.error("--heartbeat must be > 0")
    apps = {}
    for item in args.app:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            parser.error(f"--app {item!r}: write NAME=PATH, e.g. blender=/opt/blender/blender")
        apps[name.strip()] = path.strip()
    args.apps = apps
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    return run_agent(args.server, args.token, name=args.name, cores=args.cores, memory_mb=args.memory,
                     gpus=args.gpus, tags=tags, state_dir=args.state_dir, heartbeat_s=args.heartbeat,
                     apps=args.apps)


if __name__ == "__main__":
    sys.exit(main())
