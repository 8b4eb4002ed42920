"""Settings from flags, environment variables and a TOML file, read the same way by every Thresher process.

Each process (the agent, the server) has one settings model; this module reads the outside world into
it and writes docs/configuration.md from the models, so the page can never say something the code
does not do. Highest first:

1. command-line flags that were actually given;
2. environment variables: `<env_prefix><FIELD>` (e.g. `THRESHER_AGENT_HEARTBEAT_S`), then any older
   names a field keeps working (`Outside.env`);
3. the section of the TOML file given with `--config` (`[agent]`, `[server]`), keys named as the fields;
4. the model's defaults.

Settings that are tables (an agent's applications) merge entry by entry across the three, so a flag
adds to what the file says instead of replacing all of it. A bad file or value is a `ConfigError`
whose message names the file or variable or flag, the key and the problem: a person reads it, never a
stack trace.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)

DOCS_PATH = Path("docs") / "configuration.md"


@dataclass(frozen=True)
class Outside:
    """How one setting is also spelled outside the TOML file; put it in the field's `Annotated[...]`.

    `flag`: the command-line flag (for the docs and for error messages about a flag's value).
    `env`: older environment variable names that keep working, read after the prefixed one.
    `env_entries`: for a table setting, `<env_entries><KEY>=value` variables add entries (key lowercased).
    """

    flag: str | None = None
    env: tuple[str, ...] = ()
    env_entries: str | None = None


class ConfigError(Exception):
    """A config file or value a person must fix; `str()` says where and what, one problem a line."""


class ThresherSettings(BaseSettings):
    """Base of the settings models. Constructing one reads nothing but its arguments: `load_settings`
    is the one place that reads flags, environment and file, so every entry point has the same
    precedence and the same error messages."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


# --- reading ------------------------------------------------------------------------------------

def read_config_section(path: Path, section: str) -> dict[str, Any]:
    """The table `[section]` of the TOML file at `path` ({} when the file has none)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [{section}] must be a table of settings, not a single value")
    return table


def outside_of(field: FieldInfo) -> Outside:
    """The `Outside` spellings declared on a field (an empty one when it declares none)."""
    return next((m for m in field.metadata if isinstance(m, Outside)), Outside())


def env_names(model: type[BaseSettings], name: str) -> list[str]:
    """The environment variables of one setting, the one that wins first. A table setting with
    `env_entries` is read from those variables, not from one prefixed variable."""
    prefix = str(model.model_config.get("env_prefix", ""))
    outside = outside_of(model.model_fields[name])
    own = [] if outside.env_entries else [f"{prefix}{name.upper()}"]
    return [*own, *outside.env]


def flag_of(model: type[BaseSettings], name: str) -> str | None:
    return outside_of(model.model_fields[name]).flag


def _is_table(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is dict or typing.get_origin(annotation) is dict


def _env_values(model: type[BaseSettings], environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """field -> (raw value, where it came from) for every setting the environment sets."""
    found: dict[str, tuple[Any, str]] = {}
    for name, field in model.model_fields.items():
        outside = outside_of(field)
        if outside.env_entries:
            entries = {key[len(outside.env_entries):].lower(): value for key, value in sorted(environ.items())
                       if key.startswith(outside.env_entries) and len(key) > len(outside.env_entries) and value}
            if entries:
                found[name] = (entries, f"environment variables {outside.env_entries}<NAME>")
        for var in env_names(model, name):
            if var in environ:
                found[name] = (environ[var], f"environment variable {var}={environ[var]!r}")
                break
    return found


def load_settings(model: type[S], *, section: str, config_file: Path | None = None,
                  overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> S:
    """Build `model` from flags (`overrides`: field -> value; None means the flag was not given), the
    environment (`environ`, default `os.environ`) and the `[section]` of `config_file`.

    Raises ConfigError naming the file, variable or flag, the key and the problem."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def put(name: str, value: Any, origin: str) -> None:
        if _is_table(model.model_fields[name]) and isinstance(value, dict) and isinstance(values.get(name), dict):
            value = {**values[name], **value}  # tables merge entry by entry, the higher source winning
        values[name] = value
        origins[name] = origin

    if config_file is not None:
        table = read_config_section(config_file, section)
        problems = []
        for key, value in table.items():
            if key not in model.model_fields:
                close = difflib.get_close_matches(key, list(model.model_fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"config file {config_file}: [{section}] {key}: unknown setting{hint}")
                continue
            put(key, value, f"config file {config_file}: [{section}] {key} = {value!r}")
        if problems:
            raise ConfigError(_several(problems))
    for name, (value, origin) in _env_values(model, environ).items():
        put(name, value, origin)
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in model.model_fields:
            raise ValueError(f"{model.__name__} has no setting {name!r}")  # a programming error, not a person's
        flag = flag_of(model, name) or f"--{name.replace('_', '-')}"
        put(name, value, f"{flag} {value!r}")
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origins)) from None


def _explain(exc: ValidationError, origins: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else ""
        where = origins.get(name, f"setting {name}" if name else "settings")
        inner = ".".join(str(part) for part in loc[1:])
        message = str(error.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        lines.append(f"{where}: {inner + ': ' if inner else ''}{message}")
    return _several(lines)


def _several(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the settings:\n" + "\n".join(f"  - {p}" for p in problems)


# --- docs/configuration.md ----------------------------------------------------------------------

_DOCS_INTRO = """\
# Configuration

<!-- Generated from the settings models by `python scripts/gen_config_docs.py`; do not edit by hand.
     tests/unit/test_config.py fails when this page is stale. -->

Every setting can be given, highest first:

1. as a command-line flag, where it has one;
2. as an environment variable (the first listed wins over the others);
3. in a TOML file passed with `--config thresher.toml`, under the section of the process;
4. or left to its default.

Settings that are tables (the agent's `apps`) merge entry by entry: a flag adds an entry to those of
the file. In environment variables, a list is written comma-separated (`THRESHER_AGENT_TAGS=gpu,linux`).
A bad file, key or value stops the process with a message that names it.

One file can serve both processes; each reads its own section:

```toml
[server]
host = "0.0.0.0"
port = 8000
db = "postgresql://thresher@dbhost/thresher"
node_timeout_s = 60

[agent]
server = "http://farm:8000"
tags = ["gpu", "linux"]
heartbeat_s = 5.0

[agent.apps]
blender = "/opt/blender-4.2/blender"
```
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "-"
    if isinstance(default, float) and default.is_integer():
        return f"`{default:g}`"
    return f"`{default!r}`" if isinstance(default, str) else f"`{default}`"


def render_config_docs(sections: Sequence[tuple[str, type[BaseSettings]]]) -> str:
    """The text of docs/configuration.md: the intro, then one table per (TOML section, settings model)."""
    parts = [_DOCS_INTRO]
    for section, model in sections:
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        parts.append(f"\n## [{section}]\n\n{doc}\n\n"
                     "| Setting | TOML key | Environment variable | Flag | Default | Description |\n"
                     "| --- | --- | --- | --- | --- | --- |\n")
        for name, field in model.model_fields.items():
            outside = outside_of(field)
            env = [f"`{var}`" for var in env_names(model, name)]
            if outside.env_entries:
                env.append(f"`{outside.env_entries}<NAME>`")
            flag = f"`{outside.flag}`" if outside.flag else "-"
            parts.append(f"| {name} | `{section}.{name}` | {', '.join(env)} | {flag} | {_cell(_default_text(field))} "
                         f"| {_cell(field.description or '')} |\n")
    return "".join(parts)


def write_config_docs(path: Path, sections: Sequence[tuple[str, type[BaseSettings]]]) -> bool:
    """Write the page at `path`; True when it changed."""
    text = render_config_docs(sections)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True

