"""`python -m thresher.server --db URL --host H --port P --data DIR [--node-timeout S]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from thresher.server.main import node_timeout_error, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m thresher.server", description="Run a Thresher server.")
    parser.add_argument("--db", default=None, help="database URL (default: an SQLite file in the data folder)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8642, help="0 picks a free port")
    parser.add_argument("--data", type=Path, default=None, help="folder for tokens, server.json and the SQLite file")
    parser.add_argument("--node-timeout", type=float, default=60.0, help="seconds before a silent node is down (at least 1; "
                        "agents must heartbeat several times in it: 3x their --heartbeat, 5 s by default)")
    parser.add_argument("--no-client-config", action="store_true", help="do not save the admin token for the CLI")
    args = parser.parse_args()
    problem = node_timeout_error(args.node_timeout)
    if problem:
        parser.error(f"--node-timeout: {problem}")
    serve(args.db, args.host, args.port, args.data, args.node_timeout, save_client_config=not args.no_client_config)


if __name__ == "__main__":
    main()
