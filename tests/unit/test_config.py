"""The shared settings loader (thresher.config): precedence, older names, tables, clear errors, and the
generated docs/configuration.md, which must match the models."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from thresher.agent.settings import AgentSettings
from thresher.config import ConfigError, env_names, load_settings, render_config_docs

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None, **overrides: Any) -> AgentSettings:
    config_file = None
    if toml is not None:
        config_file = tmp_path / "thresher.toml"
        config_file.write_text(toml, encoding="utf-8")
    return load_settings(AgentSettings, section="agent", config_file=config_file, overrides=overrides,
                         environ=env or {})


def test_defaults_when_nothing_is_given(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.heartbeat_s == 5.0
    assert settings.work_wait_s == 20.0
    assert settings.server is None
    assert settings.tags == []


def test_flags_win_over_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    toml = '[agent]\nheartbeat_s = 7.0\nwork_wait_s = 9\nkill_grace_s = 3\n'
    env = {"THRESHER_AGENT_HEARTBEAT_S": "6", "THRESHER_AGENT_WORK_WAIT_S": "8"}
    settings = load(tmp_path, toml, env, heartbeat_s=4.0, cores=None)  # None: the flag was not given
    assert settings.heartbeat_s == 4.0       # flag
    assert settings.work_wait_s == 8.0       # environment
    assert settings.kill_grace_s == 3.0      # file
    assert settings.cores is None            # default
    assert settings.shutdown_flush_s == 5.0  # default


def test_other_sections_of_the_file_are_not_the_agents(tmp_path: Path) -> None:
    settings = load(tmp_path, '[server]\nport = 9000\n[agent]\nname = "n7"\n')
    assert settings.name == "n7"


def test_older_environment_variables_keep_working_and_the_prefixed_one_wins(tmp_path: Path) -> None:
    assert load(tmp_path, env={"THRESHER_SERVER": "http://a:1"}).server == "http://a:1"
    both = {"THRESHER_SERVER": "http://a:1", "THRESHER_AGENT_SERVER": "http://b:2"}
    assert load(tmp_path, env=both).server == "http://b:2"
    assert load(tmp_path, env={"THRESHER_ENROLL_TOKEN": "e"}).token == "e"
    assert env_names(AgentSettings, "server") == ["THRESHER_AGENT_SERVER", "THRESHER_SERVER"]


def test_applications_merge_entry_by_entry_flags_over_environment_over_file(tmp_path: Path) -> None:
    toml = '[agent.apps]\nblender = "/file/blender"\nnuke = "/file/nuke"\nhoudini = "/file/hython"\n'
    env = {"THRESHER_APP_BLENDER": "/env/blender", "THRESHER_APP_NUKE": "/env/nuke"}
    settings = load(tmp_path, toml, env, apps={"nuke": "/flag/nuke"})
    assert settings.apps == {"blender": "/env/blender", "nuke": "/flag/nuke", "houdini": "/file/hython"}


def test_tags_from_a_comma_list_or_a_toml_list(tmp_path: Path) -> None:
    assert load(tmp_path, env={"THRESHER_AGENT_TAGS": "gpu, linux,"}).tags == ["gpu", "linux"]
    assert load(tmp_path, '[agent]\ntags = ["a", "b"]\n').tags == ["a", "b"]
    assert load(tmp_path, tags="x,y").tags == ["x", "y"]


def test_paths_and_integers_from_text(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"THRESHER_AGENT_STATE_DIR": "/var/lib/thresher", "THRESHER_AGENT_CORES": "4"})
    assert settings.state_dir == Path("/var/lib/thresher")
    assert settings.cores == 4


def problem(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml, env, **overrides)
    message = str(caught.value)
    assert "Traceback" not in message
    return message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nowhere\.toml: not found"):
        load_settings(AgentSettings, section="agent", config_file=tmp_path / "nowhere.toml", environ={})


def test_a_file_that_is_not_toml_says_where(tmp_path: Path) -> None:
    message = problem(tmp_path, "[agent]\nheartbeat_s 5\n")
    assert "thresher.toml: not valid TOML" in message
    assert "line 2" in message


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    message = problem(tmp_path, "[agent]\nheartbeat = 5\n")
    assert "thresher.toml: [agent] heartbeat: unknown setting (did you mean 'heartbeat_s'?)" in message


def test_a_bad_value_in_the_file_names_the_file_the_key_and_the_problem(tmp_path: Path) -> None:
    message = problem(tmp_path, '[agent]\nheartbeat_s = "often"\n')
    assert "thresher.toml: [agent] heartbeat_s = 'often'" in message
    assert "valid number" in message


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    message = problem(tmp_path, env={"THRESHER_AGENT_KILL_GRACE_S": "-1"})
    assert message.startswith("environment variable THRESHER_AGENT_KILL_GRACE_S='-1': ")
    assert "greater than or equal to 0" in message


def test_a_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    assert problem(tmp_path, heartbeat_s=0.0).startswith("--heartbeat 0.0: Input should be greater than 0")


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert "[agent] must be a table" in problem(tmp_path, 'agent = 5\n')


def test_every_problem_is_reported_one_per_line(tmp_path: Path) -> None:
    message = problem(tmp_path, "[agent]\ncores = 0\ngpus = -1\n")
    assert message.splitlines()[0] == "2 problems in the settings:"
    assert "  - config file " in message.splitlines()[1] and "cores = 0" in message.splitlines()[1]
    assert "gpus = -1" in message.splitlines()[2]


def _doc_sections() -> list[Any]:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SECTIONS)


def test_configuration_page_is_up_to_date() -> None:
    """docs/configuration.md is generated: run `python scripts/gen_config_docs.py` after changing a model."""
    expected = render_config_docs(_doc_sections())
    actual = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/configuration.md is stale: run `python scripts/gen_config_docs.py`"


def test_the_page_lists_every_setting_with_its_names() -> None:
    text = render_config_docs([("agent", AgentSettings)])
    for name in AgentSettings.model_fields:
        assert f"| {name} | `agent.{name}` |" in text
    assert "`THRESHER_AGENT_HEARTBEAT_S` | `--heartbeat` | `5` |" in text
    assert "`THRESHER_APP_<NAME>`" in text
