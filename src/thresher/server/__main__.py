"""`python -m thresher.server [--config FILE] [--db URL] [--host H] [--port P] [--data DIR] [--node-timeout S]
[--tls-cert FILE --tls-key FILE] [--workers N]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thresher.config import ConfigError, load_settings
from thresher.server.main import StartupError, serve
from thresher.server.settings import ServerSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m thresher.server", description="Run a Thresher server.")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML file whose [server] section holds settings (docs/configuration.md)")
    parser.add_argument("--db", default=None, help="database URL (default: an SQLite file in the data folder)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="0 picks a free port (default 8642)")
    parser.add_argument("--data", type=Path, default=None, help="folder for tokens, server.json and the SQLite file")
    parser.add_argument("--node-timeout", type=float, default=None, help="seconds before a silent node is down "
                        "(at least 1; agents must heartbeat several times in it: 3x their --heartbeat, 5 s by default)")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                        help="PEM certificate (chain) to serve HTTPS with; needs --tls-key")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="PEM private key of --tls-cert")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="server processes on the one address (PostgreSQL only; default 1)")
    parser.add_argument("--no-client-config", action="store_true", help="do not save the admin token for the CLI")
    args = parser.parse_args()
    try:
        settings = load_settings(ServerSettings, section="server", config_file=args.config, overrides={
            "db": args.db, "host": args.host, "port": args.port, "data_dir": args.data,
            "node_timeout_s": args.node_timeout, "tls_cert": args.tls_cert, "tls_key": args.tls_key,
            "workers": args.workers})
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        serve(settings, save_client_config=not args.no_client_config)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
