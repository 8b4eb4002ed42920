"""A private, throw-away PostgreSQL server for the test suite and the benches.

`PostgresServer` runs `initdb` and `pg_ctl` in a temporary folder, listens on a free TCP port on
127.0.0.1 (and a unix socket in the same folder), and hands out fresh databases so that tests never
see each other's rows. It never touches a system cluster: nothing listens on 5432 on our account.

When the process runs as root, PostgreSQL refuses to start, so the server runs as the `postgres`
system user (`runuser -u postgres --`) and the folder is chowned to it. Otherwise it runs as the
current user. Either way the superuser role is called `postgres` and local TCP logins are trusted,
so URLs look like `postgresql://postgres@127.0.0.1:<port>/<db>`.

Missing binaries raise `PostgresUnavailable` with an explanation: the suite installs PostgreSQL
through `scripts/setup.sh`, so a missing server is an environment error, never a reason to skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """initdb/pg_ctl cannot be found or the server would not start."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: `pg_config --bindir`, else /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    env = os.environ.get("THRESHER_PG_BINDIR")
    if env:
        candidates.append(Path(env))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass

    def version_key(path: str) -> tuple[int, ...]:
        parts = Path(path).parent.name.split(".")
        return tuple(int(p) if p.isdigit() else 0 for p in parts)

    candidates += [Path(p).parent for p in
                   sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: version_key(str(Path(p).parent)),
                          reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: looked at `pg_config --bindir`, "
        "/usr/lib/postgresql/*/bin and $PATH. Run ./scripts/setup.sh (it installs the `postgresql` "
        "package) or set THRESHER_PG_BINDIR.")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; `start()`, `create_database()`, `stop()`.

    `fast=True` turns off fsync and synchronous commit: right for tests (the data is thrown away),
    wrong for benches that want to measure what a real deployment does.
    """

    def __init__(self, base_dir: str | Path | None = None, *, fast: bool = True,
                 max_connections: int = 300, extra_settings: dict[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        self.fast = fast
        self.max_connections = max_connections
        self.extra_settings = dict(extra_settings or {})
        self._own_dir = base_dir is None
        self.root = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="thresher-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self.host = "127.0.0.1"
        self.port = 0
        self.user = SUPERUSER
        self._as_root = os.geteuid() == 0
        self._started = False
        self._databases: list[str] = []

    # ------------------------------------------------------------------ process control
    def _cmd(self, *argv: str | Path) -> list[str]:
        """Prefix with runuser when we are root: PostgreSQL refuses to run as root."""
        args = [str(a) for a in argv]
        if self._as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            return [runuser, "-u", "postgres", "--", *args]
        return args

    def _run(self, *argv: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._cmd(*argv), capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, env=self._env())
        if proc.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(str(argv[0])).name} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"{self.log_tail()}")
        return proc

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LC_ALL", "C.UTF-8")
        env.pop("PGDATA", None)
        return env

    def _prepare_ownership(self) -> None:
        if not self._as_root:
            return
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable("running as root but there is no `postgres` system user to run "
                                      "the server as (install the postgresql package)") from exc
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, pw.pw_uid, pw.pw_gid)
        # The folder must be reachable by the postgres user: every parent needs o+x.
        os.chmod(self.root, 0o700)

    def start(self) -> "PostgresServer":
        if self._started:
            return self
        self.socket_dir.mkdir(exist_ok=True)
        self._prepare_ownership()
        if not (self.data_dir / "PG_VERSION").exists():
            extra = ["--no-sync"] if self.fast else []
            self._run(self.bindir / "initdb", "-D", self.data_dir, "-U", SUPERUSER, "--auth=trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions", *extra)
            self._write_settings()
        last_error: Exception | None = None
        for _ in range(5):
            self.port = free_port()
            try:
                self._run(self.bindir / "pg_ctl", "start", "-D", self.data_dir, "-l", self.log_file,
                          "-w", "-t", "60", "-o", f"-p {self.port} -h {self.host} -k {self.socket_dir}")
                break
            except PostgresUnavailable as exc:  # port grabbed between free_port() and bind: retry
                last_error = exc
        else:
            raise PostgresUnavailable(f"PostgreSQL would not start: {last_error}")
        self._started = True
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _write_settings(self) -> None:
        settings = {
            "max_connections": str(self.max_connections),
            "shared_buffers": "128MB",
            "listen_addresses": "'127.0.0.1'",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if self.fast:
            settings.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        settings.update(self.extra_settings)
        conf = self.data_dir / "postgresql.conf"
        text = "\n# thresher test settings\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        # Written by us as root into a postgres-owned folder: keep ownership right.
        with open(conf, "a", encoding="utf-8") as fh:
            fh.write(text)

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"PostgreSQL on port {self.port} does not answer\n{self.log_tail()}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the folder if we created it."""
        if self._started:
            self._started = False
            try:
                subprocess.run(self._cmd(self.bindir / "pg_ctl", "stop", "-D", self.data_dir, "-m", "immediate",
                                         "-w", "-t", "30"), capture_output=True, timeout=60, env=self._env())
            except (OSError, subprocess.SubprocessError):
                pass
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no postgres log)"
        return "postgres log:\n" + "\n".join(text[-lines:])

    # ------------------------------------------------------------------ databases
    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        """A URL for `database`; driver="postgresql+psycopg" gives the SQLAlchemy spelling."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh empty database and return its `postgresql://` URL."""
        import psycopg
        from psycopg import sql

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'")
                         .format(sql.Identifier(name)))
        self._databases.append(name)
        return self.url(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database, disconnecting whoever is still in it. Best effort."""
        import psycopg
        from psycopg import sql

        name = name_or_url.rsplit("/", 1)[-1]
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error:
            pass

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
