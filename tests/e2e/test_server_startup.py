"""`thresher server` that cannot start says why in one line, exits non-zero, and prints no traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from tests.e2e.test_cli_up import THRESHER, _env

pytestmark = pytest.mark.e2e


def _server(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*THRESHER, "server", "--data", str(tmp_path / "data"), *args], env=_env(tmp_path / "h"),
                          capture_output=True, text=True, timeout=60)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        line = _one_line_error(_server(tmp_path, "--port", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line


def test_postgresql_refused(tmp_path: Path) -> None:
    url = f"postgresql://thresher:secret@127.0.0.1:{_closed_port()}/thresher"
    line = _one_line_error(_server(tmp_path, "--port", "0", "--db", url))
    assert "cannot open the database postgresql://thresher:***@127.0.0.1" in line and "--db" in line
    assert "Connection refused" in line and "secret" not in line


@pytest.mark.postgres
@pytest.mark.parametrize("change", [{"database": "no_such_database_here"}, {"username": "no_such_role"}],
                         ids=["unknown database", "unknown user"])
def test_postgresql_that_refuses_the_login(tmp_path: Path, pg_url: str, change: dict[str, str]) -> None:
    # The test server trusts local logins, so a wrong password cannot fail there: a wrong user does.
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(**change).render_as_string(hide_password=False)  # type: ignore[arg-type]
    line = _one_line_error(_server(tmp_path, "--port", "0", "--db", url))
    assert "cannot open the database postgresql" in line and "--db" in line
    assert next(iter(change.values())) in line


def test_sqlite_path_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _one_line_error(_server(tmp_path, "--port", "0", "--db", f"sqlite:///{blocker / 'x.db'}"))
    assert "cannot open the database sqlite" in line


def test_python_m_thresher_server_too(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = subprocess.run([THRESHER[0], "-m", "thresher.server", "--port", str(port),
                                 "--data", str(tmp_path / "d")], env=_env(tmp_path / "h"), capture_output=True,
                                text=True, timeout=60)
    assert "already in use" in _one_line_error(result)
