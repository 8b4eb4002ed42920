"""Server start options: a node timeout too short to work is refused, one shorter than a few default
heartbeats is warned about at start (nodes would flap between up and down and lose their tasks)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.server import main as server_main
from thresher.server.main import AGENT_DEFAULT_HEARTBEAT_S, node_timeout_error, node_timeout_warning


@pytest.mark.parametrize("value", [0.0, 0.5, -3.0, float("nan"), float("inf")])
def test_a_node_timeout_that_cannot_work_is_refused(value: float) -> None:
    assert node_timeout_error(value)
    with pytest.raises(ValueError):
        server_main.serve(node_timeout=value)  # refused before anything starts


def test_short_node_timeouts_warn_and_say_which_heartbeat_agents_need() -> None:
    assert node_timeout_error(1.0) is None and node_timeout_error(60.0) is None
    assert node_timeout_warning(60.0) is None and node_timeout_warning(3 * AGENT_DEFAULT_HEARTBEAT_S) is None
    warning = node_timeout_warning(6.0)
    assert warning and "--heartbeat 2 or less" in warning and "declared down" in warning


def test_server_commands_refuse_a_too_short_node_timeout(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "thresher.server", "--data", str(tmp_path), "--port", "0",
                             "--no-client-config", "--node-timeout", "0.2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--node-timeout" in result.stderr and "too short" in result.stderr
    assert not (tmp_path / "thresher.db").exists()
    result = CliRunner().invoke(app, ["server", "--data", str(tmp_path), "--node-timeout", "0.2"])
    assert result.exit_code == 2 and "too short" in result.output


def test_serve_logs_the_warning_at_start(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                         tmp_path: Path) -> None:
    started: list[float] = []

    def fake_prepare(db_url, data, settings):  # type: ignore[no-untyped-def]
        started.append(settings.node_timeout_s)
        raise SystemExit(0)  # stop before binding a socket

    monkeypatch.setattr(server_main, "prepare", fake_prepare)
    monkeypatch.setattr(server_main.sys, "setswitchinterval", lambda _interval: None)  # not in the test process
    with caplog.at_level(logging.WARNING, logger="thresher.server"), pytest.raises(SystemExit):
        server_main.serve(data_dir=tmp_path, node_timeout=4.0, save_client_config=False)
    assert started == [4.0]
    assert any("--node-timeout 4 is shorter than 3 heartbeats" in r.getMessage() for r in caplog.records)
