"""Client config resolution: argument, then environment, then client.json, then the default."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from thresher.client import config


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    monkeypatch.delenv("THRESHER_SERVER", raising=False)
    monkeypatch.delenv("THRESHER_TOKEN", raising=False)
    return tmp_path


def test_folders_follow_thresher_home(home: Path) -> None:
    assert config.config_dir() == home / "config"
    assert config.data_dir() == home / "data"
    assert config.client_config_path() == home / "config" / "client.json"


def test_folders_default_to_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("THRESHER_HOME")
    assert config.config_dir() == Path(platformdirs.user_config_dir("thresher"))
    assert config.data_dir() == Path(platformdirs.user_data_dir("thresher"))


def test_nothing_saved_gives_default_server_and_no_token() -> None:
    settings = config.resolve()
    assert settings.server == config.DEFAULT_SERVER
    assert settings.token is None
    assert settings.token_source == "none"
    assert config.load_client_config() == {}


def test_save_then_load_round_trip(home: Path) -> None:
    path = config.save_client_config("http://farm:8642", "secret")
    assert path == home / "config" / "client.json"
    assert json.loads(path.read_text()) == {"server": "http://farm:8642", "token": "secret"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load_client_config() == {"server": "http://farm:8642", "token": "secret"}
    settings = config.resolve()
    assert (settings.server, settings.token) == ("http://farm:8642", "secret")


def test_environment_beats_file(monkeypatch: pytest.MonkeyPatch) -> None:
    config.save_client_config("http://file:1", "file-token")
    monkeypatch.setenv("THRESHER_SERVER", "http://env:2/")
    monkeypatch.setenv("THRESHER_TOKEN", "env-token")
    settings = config.resolve()
    assert (settings.server, settings.token) == ("http://env:2", "env-token")
    assert settings.token_source == "THRESHER_TOKEN"


def test_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THRESHER_SERVER", "http://env:2")
    monkeypatch.setenv("THRESHER_TOKEN", "env-token")
    settings = config.resolve("http://arg:3", "arg-token")
    assert (settings.server, settings.token) == ("http://arg:3", "arg-token")


def test_each_setting_resolves_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    config.save_client_config("http://file:1", "file-token")
    monkeypatch.setenv("THRESHER_SERVER", "http://env:2")
    settings = config.resolve(token="arg-token")
    assert (settings.server, settings.token) == ("http://env:2", "arg-token")
    settings = config.resolve(server="http://arg:3")
    assert (settings.server, settings.token) == ("http://arg:3", "file-token")


@pytest.mark.parametrize("content", ["not json", "[1, 2]", ""])
def test_damaged_config_file_is_ignored(home: Path, content: str) -> None:
    path = home / "config" / "client.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert config.load_client_config() == {}
    assert config.resolve().server == config.DEFAULT_SERVER


@pytest.mark.parametrize("typed", ["http://127.0.0.1:8642/api/v1", "http://127.0.0.1:8642/api/v1/",
                                   "127.0.0.1:8642/api/v1", "http://127.0.0.1:8642/", "127.0.0.1:8642"])
def test_the_api_address_thresher_up_prints_is_the_servers_base(typed: str) -> None:
    assert config.server_url(typed) == "http://127.0.0.1:8642"
    assert config.resolve(server=typed).server == "http://127.0.0.1:8642"


def test_a_path_other_than_the_apis_is_kept() -> None:
    assert config.server_url("https://farm.example/thresher/") == "https://farm.example/thresher"
    assert config.server_url("https://farm.example/thresher/api/v1") == "https://farm.example/thresher"
