"""Server start options and settings: a node timeout too short to work is refused; flags, environment and
`--config` fill one settings model. (A short timeout that works needs no warning: agents learn it when
they register and heartbeat three times within it.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.config import ConfigError, load_settings
from thresher.server.settings import ServerSettings, node_timeout_error


@pytest.mark.parametrize("value", [0.0, 0.5, -3.0, float("nan"), float("inf")])
def test_a_node_timeout_that_cannot_work_is_refused(value: float) -> None:
    assert node_timeout_error(value)
    with pytest.raises(ConfigError, match="--node-timeout"):
        load_settings(ServerSettings, section="server", overrides={"node_timeout_s": value}, environ={})


def test_short_node_timeouts_that_work_are_taken() -> None:
    assert node_timeout_error(1.0) is None and node_timeout_error(60.0) is None
    settings = ServerSettings(node_timeout_s=4.0)
    assert settings.lost_grace == 4.0  # never longer than the node timeout
    assert ServerSettings().lost_grace == 10.0


def test_server_commands_refuse_a_too_short_node_timeout(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "thresher.server", "--data", str(tmp_path), "--port", "0",
                             "--no-client-config", "--node-timeout", "0.2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--node-timeout" in result.stderr and "too short" in result.stderr
    assert not (tmp_path / "thresher.db").exists()
    invoked = CliRunner().invoke(app, ["server", "--data", str(tmp_path), "--node-timeout", "0.2"])
    assert invoked.exit_code == 2 and "too short" in invoked.output


def test_server_settings_from_file_environment_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "thresher.toml"
    config.write_text('[server]\nport = 9000\nnode_timeout_s = 30\ndispatch_candidate_rows = 128\n'
                      'token_cache_s = 5\n[agent]\nheartbeat_s = 2\n')
    settings = load_settings(ServerSettings, section="server", config_file=config,
                             environ={"THRESHER_SERVER_TOKEN_CACHE_S": "7", "THRESHER_NODE_SAMPLE_S": "0.5"},
                             overrides={"port": 9100, "host": None})
    assert (settings.port, settings.node_timeout_s, settings.token_cache_s) == (9100, 30.0, 7.0)
    assert settings.dispatch_limits.candidate_rows == 128 and settings.node_sample_s == 0.5
    assert settings.host == "127.0.0.1" and settings.lost_grace == 10.0


def test_a_bad_server_config_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "thresher.toml"
    config.write_text("[server]\nnode_timeout = 30\n")
    result = subprocess.run([sys.executable, "-m", "thresher.server", "--config", str(config), "--data", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and str(config) in result.stderr and "node_timeout" in result.stderr
    assert "did you mean 'node_timeout_s'" in result.stderr and "Traceback" not in result.stderr
    config.write_text("[server]\nsession_idle_s = 100000\n")
    invoked = CliRunner().invoke(app, ["server", "--config", str(config), "--data", str(tmp_path)])
    assert invoked.exit_code == 2 and "session_idle_s" in invoked.output and "Traceback" not in invoked.output
