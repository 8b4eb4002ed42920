"""`--workers N`: refused in one line on SQLite before anything is written; how the parent says a worker
ended and how long it waits before starting one that keeps dying (tests/e2e/test_server_workers.py runs
the real thing)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.server.main import StartupError, serve, workers_problem
from thresher.server.settings import ServerSettings
from thresher.server.workers import RESTART_DELAYS_S, exit_text, restart_delay


def test_several_workers_need_postgresql(tmp_path: Path) -> None:
    assert workers_problem(ServerSettings(workers=1)) is None
    assert workers_problem(ServerSettings(workers=3, db="postgresql://thresher@db/thresher")) is None
    for db in (None, f"sqlite:///{tmp_path / 'x.db'}"):
        problem = workers_problem(ServerSettings(workers=2, db=db))
        assert problem and "--workers 2 needs PostgreSQL" in problem and "\n" not in problem
    with pytest.raises(StartupError, match="needs PostgreSQL"):
        serve(ServerSettings(workers=2, data_dir=tmp_path / "d", port=0), save_client_config=False)
    assert not (tmp_path / "d").exists()  # refused before the data folder or the socket


def test_thresher_server_workers_on_sqlite_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["server", "--workers", "2", "--data", str(tmp_path / "d"), "--port", "0",
                                      "--no-client-config"])
    assert result.exit_code == 1
    assert "needs PostgreSQL" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_a_worker_that_keeps_dying_waits_longer_and_longer() -> None:
    assert restart_delay(0) == 0.0  # one that served steadily: at once
    delays = [restart_delay(n) for n in range(1, 9)]
    assert delays == sorted(delays) and delays[0] == 1.0 and delays[-1] == RESTART_DELAYS_S[-1] == 30.0


def _status(argv: list[str], sig: int | None = None) -> int:
    proc = subprocess.Popen(argv)
    if sig is not None:
        proc.send_signal(sig)
    _pid, status = os.waitpid(proc.pid, 0)
    proc.returncode = 0  # reaped here
    return status


def test_how_a_worker_ended_is_said() -> None:
    assert exit_text(_status(["sh", "-c", "exit 3"])) == "exited with status 3"
    assert exit_text(_status(["sleep", "30"], signal.SIGKILL)) == "was killed by SIGKILL"
    assert exit_text(_status(["sleep", "30"], signal.SIGTERM)) == "was killed by SIGTERM"
