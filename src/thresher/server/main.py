"""Starting a server: database, migrations, first tokens, a listening socket, uvicorn."""

from __future__ import annotations

import errno
import gc
import logging
import socket
import sys
from pathlib import Path
from typing import Callable

import uvicorn

from thresher.config import load_settings
from thresher.server.app import create_app
from thresher.server.auth import ensure_bootstrap_tokens
from thresher.server.context import ServerContext
from thresher.server.dashboard.secret import SessionSecret
from thresher.server.dashboard.session import SessionStore
from thresher.server.db.engine import Database
from thresher.server.events import EventHub
from thresher.server.running import SERVER_JSON, running_server, write_server_json
from thresher.server.settings import ServerSettings
from thresher.server.tls import tls_problem

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


class StartupError(Exception):
    """The server cannot start for a reason the user can fix: one line says what and what to do."""


def _database_problem(url: str, exc: BaseException) -> StartupError:
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too broken to parse is shown as "the database"
        shown = "the database"
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    hint = ("check the path and that its folder is writable" if url.startswith("sqlite")
            else "check that PostgreSQL runs there, and the user, password and database name in --db")
    return StartupError(f"cannot open the database {shown}: {first}; {hint}")


def open_database(db_url: str | None, data_dir: Path, settings: ServerSettings) -> ServerContext:
    """`prepare` that turns an unreachable database or unwritable data folder into a StartupError."""
    from sqlalchemy.exc import SQLAlchemyError

    url = db_url or f"sqlite:///{data_dir / 'thresher.db'}"
    try:
        return prepare(db_url, data_dir, settings)
    except SQLAlchemyError as exc:
        raise _database_problem(url, exc) from exc
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else data_dir
        if not url.startswith("sqlite") or where.is_relative_to(data_dir) or where == data_dir:
            raise StartupError(f"cannot write to the data folder {data_dir}: {exc.strerror or exc}; "
                               "pass --data with a folder this user may write") from exc
        raise _database_problem(url, exc) from exc


def listen(host: str, port: int) -> socket.socket:
    """The server's socket; a port in use or an address this machine lacks is a StartupError."""
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} on {host} is already in use (another server?); stop it, or pass "
                               "--port with another port (0 picks a free one)") from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StartupError(f"not allowed to listen on port {port} on {host}; use a port above 1023") from exc
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host "
                           "(an address of this machine, or 0.0.0.0 for all)") from exc
    return sock


# Young objects collected at once: a dispatch round or a batch of reports holds thousands of rows for a
# few milliseconds. With Python's default (700) they outlive two young collections, reach the oldest
# generation and make it due every second or two: a full pass over every object of the server (150-300 ms
# on a 2-core VM under load, finding nothing to free) while the writer everybody waits for stands still.
GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Collect young objects less often, and leave what the server built before serving (modules, table
    and model definitions) out of every full collection (`gc.freeze`)."""
    _young, middle, old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def workers_problem(settings: ServerSettings) -> str | None:
    """Why `--workers N` cannot be served, or None (one process always can)."""
    if settings.workers <= 1:
        return None
    url = settings.db or "sqlite:"
    if url.startswith("postgresql"):
        return None
    return (f"--workers {settings.workers} needs PostgreSQL (--db postgresql://...): an SQLite file takes one "
            "server process; drop --workers, or move the farm to PostgreSQL")


def uvicorn_config(server: ServerContext, settings: ServerSettings) -> uvicorn.Config:
    """The one way a server process runs its app (one process, or each of `--workers`)."""
    tls = settings.tls_cert is not None
    # proxy_headers off: X-Forwarded-* is believed by our own rule only, from `trusted_proxies`
    return uvicorn.Config(create_app(server), log_level="warning", access_log=False, timeout_keep_alive=75,
                          proxy_headers=False,
                          timeout_graceful_shutdown=3,  # open dashboard event streams must not hold a stop
                          ssl_certfile=str(settings.tls_cert) if tls else None,
                          ssl_keyfile=str(settings.tls_key) if tls else None)


class _Server(uvicorn.Server):
    """uvicorn's server that, when it stops, first answers the agents' long polls and ends the
    dashboards' event streams: they would otherwise hold the stop for its whole graceful timeout and
    then be cancelled, each with a traceback in the log."""

    def __init__(self, config: uvicorn.Config, server: ServerContext) -> None:
        super().__init__(config)
        self.thresher = server

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.thresher.notifier.close()
        self.thresher.events.close()
        await super().shutdown(sockets)


def run_app(server: ServerContext, settings: ServerSettings, sock: socket.socket) -> None:
    """Serve `sock` in this process until SIGINT/SIGTERM."""
    try:
        config = uvicorn_config(server, settings)
        _tune_gc()
        _Server(config, server).run(sockets=[sock])
    finally:
        server.db.dispose()


def _worker(settings: ServerSettings, sock: socket.socket) -> Callable[[int], None]:
    """What each of `--workers` runs once forked: a whole server of its own on the parent's socket."""
    data = settings.data_dir
    assert data is not None

    def work(index: int) -> None:
        try:  # the parent migrated and made the tokens: this finds them
            server = open_database(settings.db, data, settings)
        except StartupError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from exc
        run_app(server, settings, sock)

    return work


def serve(settings: ServerSettings, save_client_config: bool = True) -> None:
    """Run a server until SIGINT/SIGTERM. Port 0 picks a free port; `data_dir/server.json` tells which.
    With `settings.workers` above 1, this process supervises that many server processes on its socket.

    Raises StartupError (before anything is changed where it can be) when it cannot start."""
    problem = workers_problem(settings)
    if problem:
        raise StartupError(problem)
    # The event loop thread (HTTP) and the database threads hand the GIL to each other thousands of
    # times a second; each database call releases it and must win it back. Python's default 5 ms switch
    # interval lets the busy side keep it that long, and the writer that everybody waits for stalls.
    sys.setswitchinterval(settings.gil_switch_interval_s)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = settings.data_dir or default_data_dir()
    settings.data_dir = data
    other = running_server(data)
    if other is not None:
        raise StartupError(f"the data folder {data} is already served by {other.describe()}; stop that "
                           "server first, or pass --data with another folder")
    if settings.tls_cert is not None and settings.tls_key is not None:
        problem = tls_problem(settings.tls_cert, settings.tls_key)
        if problem:
            raise StartupError(problem)
    sock = listen(settings.host, settings.port)
    try:
        server = open_database(settings.db, data, settings)
    except StartupError:
        sock.close()
        raise
    host = settings.host
    bound_port = sock.getsockname()[1]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    scheme = "https" if settings.tls_cert else "http"
    url = f"{scheme}://{shown_host}:{bound_port}"
    admin_token = (data / "admin.token").read_text().strip()
    if save_client_config:
        from thresher.client.config import save_client_config as save

        save(url, admin_token)
    write_server_json(data, url, server.db.url.split("@")[-1])
    info = data / SERVER_JSON
    log.info("Thresher server on %s (API docs %s/docs); admin token in %s", url, url, data / "admin.token")
    try:
        if settings.workers > 1:
            from thresher.server.workers import Supervisor

            server.db.dispose()  # each worker opens its own connections after the fork
            log.info("%d worker processes on it", settings.workers)
            Supervisor(settings.workers, _worker(settings, sock)).run()
        else:
            run_app(server, settings, sock)
    finally:
        info.unlink(missing_ok=True)
