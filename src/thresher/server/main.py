"""Starting a server: database, migrations, first tokens, a listening socket, uvicorn."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from thresher.config import load_settings
from thresher.server.app import create_app
from thresher.server.auth import ensure_bootstrap_tokens
from thresher.server.context import ServerContext
from thresher.server.dashboard.secret import SessionSecret
from thresher.server.dashboard.session import SessionStore
from thresher.server.db.engine import Database
from thresher.server.events import EventHub
from thresher.server.settings import ServerSettings

log = logging.getLogger("thresher.server")


def default_data_dir() -> Path:
    from thresher.client.config import data_dir

    return data_dir()


def prepare(db_url: str | None, data_dir: Path, settings: ServerSettings | None = None) -> ServerContext:
    """Open and migrate the database and make sure the first tokens and the session secret exist. Without
    `settings`, they come from the environment alone (`THRESHER_SERVER_*`), as a server start reads them."""
    settings = settings or load_settings(ServerSettings, section="server")
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(db_url or f"sqlite:///{data_dir / 'thresher.db'}", settings.pool)
    db.migrate()
    with db.write() as conn:
        ensure_bootstrap_tokens(conn, data_dir)
    events = EventHub(tick_s=settings.dashboard_tick_s, summary_s=settings.dashboard_summary_s,
                      sample_s=settings.node_sample_s)
    sessions = SessionStore(SessionSecret.in_folder(data_dir), idle_s=settings.session_idle_s,
                            lifetime_s=settings.session_lifetime_s)
    return ServerContext(db=db, settings=settings, events=events, sessions=sessions)


def serve(settings: ServerSettings, save_client_config: bool = True) -> None:
    """Run a server until SIGINT/SIGTERM. Port 0 picks a free port; `data_dir/server.json` tells which."""
    # The event loop thread (HTTP) and the database threads hand the GIL to each other thousands of
    # times a second; each database call releases it and must win it back. Python's default 5 ms switch
    # interval lets the busy side keep it that long, and the writer that everybody waits for stalls.
    sys.setswitchinterval(settings.gil_switch_interval_s)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = settings.data_dir or default_data_dir()
    server = prepare(settings.db, data, settings)
    host, port = settings.host, settings.port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown_host}:{bound_port}"
    admin_token = (data / "admin.token").read_text().strip()
    if save_client_config:
        from thresher.client.config import save_client_config as save

        save(url, admin_token)
    info = data / "server.json"
    tmp = info.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "db": server.db.url.split("@")[-1]}))
    tmp.replace(info)
    log.info("Thresher server on %s (API docs %s/docs); admin token in %s", url, url, data / "admin.token")
    config = uvicorn.Config(create_app(server), log_level="warning", access_log=False, timeout_keep_alive=75,
                            timeout_graceful_shutdown=3)  # open dashboard event streams must not hold a stop
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        server.db.dispose()
        info.unlink(missing_ok=True)
