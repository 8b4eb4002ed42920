"""Both agent entry points (`python -m thresher.agent`, `thresher agent`) build the same AgentSettings from
flags, environment and `--config`, keep the flags and variables they always had, and turn a bad file
into a clear exit 2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from thresher.agent import __main__ as agent_main
from thresher.agent import daemon
from thresher.agent.settings import AgentSettings
from thresher.cli.main import app

ENV = ("THRESHER_SERVER", "THRESHER_TOKEN", "THRESHER_ENROLL_TOKEN")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name in ENV or name.startswith(("THRESHER_AGENT_", "THRESHER_APP_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path / "home"))  # no saved client config, no enroll.token


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresher.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- python -m thresher.agent

def test_module_flags_become_settings() -> None:
    settings = agent_main.read_settings(["--server", "http://f:1", "--token", "t", "--name", "n", "--cores", "2",
                                      "--memory", "512", "--gpus", "0", "--tags", "a,b", "--heartbeat", "0.5",
                                      "--app", "blender=/opt/b", "--state-dir", "/tmp/s"])
    assert (settings.server, settings.token, settings.name, settings.cores, settings.memory_mb, settings.gpus) == \
        ("http://f:1", "t", "n", 2, 512, 0)
    assert settings.tags == ["a", "b"]
    assert settings.heartbeat_s == 0.5
    assert settings.apps == {"blender": "/opt/b"}
    assert settings.state_dir == Path("/tmp/s")


def test_module_reads_its_older_variables_and_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THRESHER_SERVER", "http://env:1")
    monkeypatch.setenv("THRESHER_TOKEN", "old-token")
    config = write(tmp_path, '[agent]\nname = "from-file"\nheartbeat_s = 2.5\nwork_wait_s = 3\n')
    settings = agent_main.read_settings(["--config", str(config), "--heartbeat", "1"])
    assert settings.server == "http://env:1"
    assert settings.token == "old-token"
    assert settings.name == "from-file"
    assert settings.heartbeat_s == 1.0  # the flag wins over the file
    assert settings.work_wait_s == 3.0


def test_module_without_server_or_token_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        agent_main.read_settings(["--token", "t"])
    assert caught.value.code == 2
    assert "--server is required" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--heartbeat", "0"], "--heartbeat 0.0: Input should be greater than 0"),
    (["--app", "blender"], "write NAME=PATH"),
])
def test_module_bad_flags_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        agent_main.read_settings(["--server", "http://f:1", "--token", "t", *argv])
    assert caught.value.code == 2
    assert needle in capsys.readouterr().err


def test_module_bad_config_file_exits_2_naming_file_and_key(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "[agent]\nheartbeat = 5\n")
    with pytest.raises(SystemExit) as caught:
        agent_main.read_settings(["--server", "http://f:1", "--token", "t", "--config", str(config)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"config file {config}: [agent] heartbeat: unknown setting" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- thresher agent

@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[AgentSettings]:
    seen: list[AgentSettings] = []

    def fake_run_agent(settings: AgentSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(daemon, "run_agent", fake_run_agent)
    return seen


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["agent", *args], env=env)


def test_cli_agent_flags_env_and_file(tmp_path: Path, captured: list[AgentSettings]) -> None:
    config = write(tmp_path, '[agent]\nserver = "http://file:1"\ncores = 3\n[agent.apps]\nnuke = "/file/nuke"\n')
    result = invoke("--config", str(config), "--memory", "2G", "--app", "blender=/opt/b", "--tags", "x",
                    env={"THRESHER_ENROLL_TOKEN": "enrol", "THRESHER_AGENT_HEARTBEAT_S": "0.7"})
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert settings.server == "http://file:1"
    assert settings.token == "enrol"
    assert settings.cores == 3
    assert settings.memory_mb == 2048
    assert settings.heartbeat_s == 0.7
    assert settings.tags == ["x"]
    assert settings.apps == {"nuke": "/file/nuke", "blender": "/opt/b"}


def test_cli_agent_falls_back_to_the_local_enroll_token(tmp_path: Path, captured: list[AgentSettings]) -> None:
    result = invoke("--server", "http://f:1")
    assert result.exit_code == 2
    assert "no enrollment token" in result.output
    token_file = tmp_path / "home" / "data" / "enroll.token"  # the local server's data folder
    token_file.parent.mkdir(parents=True)
    token_file.write_text("local-token\n", encoding="utf-8")
    result = invoke("--server", "http://f:1")
    assert result.exit_code == 0, result.output
    assert captured[0].token == "local-token"


def test_cli_agent_without_a_server_exits_2(captured: list[AgentSettings]) -> None:
    result = invoke("--token", "t")
    assert result.exit_code == 2
    assert "no server" in result.output


def test_cli_agent_bad_config_file_exits_2_without_a_traceback(tmp_path: Path, captured: list[AgentSettings]) -> None:
    config = write(tmp_path, '[agent]\nheartbeat_s = "often"\n')
    result = invoke("--server", "http://f:1", "--token", "t", "--config", str(config))
    assert result.exit_code == 2
    assert f"config file {config}: [agent] heartbeat_s = 'often'" in result.output
    assert "Traceback" not in result.output
    assert captured == []


def test_cli_agent_help_lists_the_flags() -> None:
    result = CliRunner().invoke(app, ["agent", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--server", "--token", "--name", "--cores", "--memory", "--gpus", "--tags", "--state-dir",
                 "--heartbeat", "--app", "--config"):
        assert flag in result.output


def test_a_stored_node_credential_goes_only_to_the_host_it_was_made_on() -> None:
    from thresher.agent.enrol import _same_host

    assert _same_host("http://farm:8765", "http://farm:8765/")
    assert _same_host("http://127.0.0.1:41000", "http://127.0.0.1:42000")  # a local farm's server on a new port
    assert not _same_host("http://farm:8765", "http://other:8765")
    assert not _same_host("http://farm:8765", "https://farm:8765")
    assert not _same_host("", "http://farm:8765")
