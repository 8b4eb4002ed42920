"""Starting a server: database, migrations, first tokens, a listening socket, uvicorn."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from thresher.server.app import create_app
from thresher.server.auth import ensure_bootstrap_tokens
from thresher.server.context import ServerContext, Settings
from thresher.server.dashboard.secret import SessionSecret
from thresher.server.dashboard.session import SessionStore
from thresher.server.db.engine import Database
from thresher.server.events import EventHub, node_sample_s_from_environment

log = logging.getLogger("thresher.server")
GIL_SWITCH_INTERVAL_S = 0.001

#: Below this a node timeout cannot work: the liveness check runs every timeout/4 (at least 0.2 s) and a
#: heartbeat is an HTTP call that a busy server may answer late.
MIN_NODE_TIMEOUT_S = 1.0
def node_timeout_error(node_timeout: float) -> str | None:
    """Why a node timeout is refused, or None."""
    if not node_timeout == node_timeout or node_timeout in (float("inf"), float("-inf")):  # NaN, inf
        return "the node timeout must be a number of seconds"
    if node_timeout < MIN_NODE_TIMEOUT_S:
        return (f"a node timeout of {node_timeout:g} s is too short (the least is {MIN_NODE_TIMEOUT_S:g} s): "
                "nodes would be declared down between two heartbeats")
    return None  # agents learn the timeout when they register and beat three times within it


def default_data_dir() -> Path:
    from thresher.client.config import data_dir

    return data_dir()


def prepare(db_url: str | None, data_dir: Path, settings: Settings | None = None) -> ServerContext:
    """Open and migrate the database and make sure the first tokens and the session secret exist."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(db_url or f"sqlite:///{data_dir / 'thresher.db'}")
    db.migrate()
    with db.write() as conn:
        ensure_bootstrap_tokens(conn, data_dir)
    return ServerContext(db=db, settings=settings or Settings(),
                         events=EventHub(sample_s=node_sample_s_from_environment()),
                         sessions=SessionStore(SessionSecret.in_folder(data_dir)))


def serve(db_url: str | None = None, host: str = "127.0.0.1", port: int = 8642, data_dir: Path | None = None,
          node_timeout: float = 60.0, save_client_config: bool = True) -> None:
    """Run a server until SIGINT/SIGTERM. Port 0 picks a free port; `data_dir/server.json` tells which."""
    problem = node_timeout_error(node_timeout)
    if problem:
        raise ValueError(problem)
    # The event loop thread (HTTP) and the database threads hand the GIL to each other thousands of
    # times a second; each database call releases it and must win it back. Python's default 5 ms switch
    # interval lets the busy side keep it that long, and the writer that everybody waits for stalls.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = Path(data_dir) if data_dir else default_data_dir()
    server = prepare(db_url, data, Settings(node_timeout_s=node_timeout, lost_grace_s=min(10.0, node_timeout)))
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
