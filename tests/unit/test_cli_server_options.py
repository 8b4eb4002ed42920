"""Server start options: a node timeout too short to work is refused. (A short one that works needs
no warning: agents learn it when they register and heartbeat three times within it.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.server import main as server_main
from thresher.server.main import node_timeout_error


@pytest.mark.parametrize("value", [0.0, 0.5, -3.0, float("nan"), float("inf")])
def test_a_node_timeout_that_cannot_work_is_refused(value: float) -> None:
    assert node_timeout_error(value)
    with pytest.raises(ValueError):
        server_main.serve(node_timeout=value)  # refused before anything starts


def test_short_node_timeouts_that_work_are_taken() -> None:
    assert node_timeout_error(1.0) is None and node_timeout_error(60.0) is None


def test_server_commands_refuse_a_too_short_node_timeout(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "thresher.server", "--data", str(tmp_path), "--port", "0",
                             "--no-client-config", "--node-timeout", "0.2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--node-timeout" in result.stderr and "too short" in result.stderr
    assert not (tmp_path / "thresher.db").exists()
    result = CliRunner().invoke(app, ["server", "--data", str(tmp_path), "--node-timeout", "0.2"])
    assert result.exit_code == 2 and "too short" in result.output
