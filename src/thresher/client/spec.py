"""Read job spec files (YAML or JSON) and say exactly where a broken one is broken.

The server validates what a spec *means*; this module only turns a file into a dict, so that a typo
in an artist's YAML yields `shot.yaml, line 12: ...` instead of a parser traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from thresher.model.duplicate_keys import DuplicateKey, json_duplicate, node_duplicate, unique_object


class SpecError(Exception):
    """A job spec file that cannot be read or parsed; the message names the file and line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.message = message
        where = self.path
        if line is not None:
            where += f", line {line}"
            if column is not None:
                where += f", column {column}"
        super().__init__(f"{where}: {message}")


class _SpecLoader(yaml.SafeLoader):
    """YAML as a job spec means it: only `true`/`false` are booleans. YAML 1.1 (PyYAML) also reads `on`,
    `off`, `yes` and `no` as booleans, which would turn a dependency's `on: finished` into `true: ...`
    and a wedge value `no` into false."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def parse_job_spec(text: str, path: str | Path = "<spec>") -> dict[str, Any]:
    """Parse spec text: JSON when the name ends in .json, otherwise YAML (a superset of JSON)."""
    if str(path).lower().endswith(".json"):
        try:
            data = json.loads(text, object_pairs_hook=unique_object)
        except json.JSONDecodeError as exc:
            raise SpecError(path, exc.msg, exc.lineno, exc.colno) from None
        except DuplicateKey:  # where it is, from the text again (a rare path)
            raise SpecError(path, str(json_duplicate(text))) from None
    else:
        loader = _SpecLoader(text)
        try:  # composed, checked for keys given twice (the last would win unseen), then built
            node = loader.get_single_node()
            twice = node_duplicate(node)
            if twice is not None:
                raise SpecError(path, twice.message)
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            context = getattr(exc, "context", None)
            message = f"{context}, {problem}" if context and problem else str(problem)
            line = mark.line + 1 if mark is not None else None
            column = mark.column + 1 if mark is not None else None
            raise SpecError(path, f"invalid YAML: {message}", line, column) from None
        finally:
            loader.dispose()
    if data is None:
        raise SpecError(path, "the file is empty")
    if not isinstance(data, dict):
        raise SpecError(path, f"a job spec must be a mapping (name, layers, ...), not {type(data).__name__}")
    return data


def load_job_spec(path: str | Path) -> dict[str, Any]:
    """Read a job spec file into a dict; raise SpecError naming the file (and line) on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(p, "no such file") from None
    except IsADirectoryError:
        raise SpecError(p, "is a directory, not a job spec file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(p, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(p, exc.strerror or str(exc)) from None
    return parse_job_spec(text, p)


def command_job_spec(argv: list[str], *, name: str | None = None, project: str | None = None,
                     priority: int | None = None, frames: str = "1", chunk: int = 1, cores: int = 1,
                     memory: str | None = None, gpus: int = 0, tags: list[str] | None = None,
                     retries: int | None = None, timeout: float | None = None, shell: bool = False,
                     outputs: list[str] | None = None, cwd: str | None = None, folder: str | None = None,
                     pools: list[str] | None = None, limits: dict[str, int] | None = None,
                     service: str | None = None) -> dict[str, Any]:
    """A one-layer job running `argv` with the `command` template (what `thresher submit-cmd` sends).

    With `shell`, the words are joined into one command line for `/bin/sh -c`, the way `ssh host a b`
    does, so `submit-cmd --shell -- 'render {frame} | tee log'` means what it says.
    """
    if not argv:
        raise ValueError("no command given")
    command: list[str] | str = " ".join(argv) if shell else list(argv)
    args: dict[str, Any] = {"command": command}
    if shell:
        args["shell"] = True
    if outputs:
        args["outputs"] = list(outputs)
    resources: dict[str, Any] = {"cores": cores}
    if memory is not None:
        resources["memory"] = memory
    if gpus:
        resources["gpus"] = gpus
    layer: dict[str, Any] = {"name": "main", "template": "command", "args": args, "frames": frames,
                             "chunk": chunk, "resources": resources}
    if tags:
        layer["tags"] = list(tags)
    if retries is not None:
        layer["retries"] = retries
    if timeout is not None:
        layer["timeout"] = timeout
    if cwd is not None:
        layer["cwd"] = cwd
    if pools:
        layer["pools"] = list(pools)
    if limits:
        layer["limits"] = dict(limits)
    if service:
        layer["service"] = service
    spec: dict[str, Any] = {"name": name or _default_name(argv, frames), "layers": [layer]}
    if project:
        spec["project"] = project
    if folder:
        spec["folder"] = folder
    if priority is not None:
        spec["priority"] = priority
    return spec


def _default_name(argv: list[str], frames: str) -> str:
    """`render_frame.py 1-100`: the program's base name and the frames, within the name rules."""
    program = Path(argv[0].split()[0] if argv[0].strip() else "command").name or "command"
    cleaned = "".join(c if c.isalnum() or c in "_.- " else "_" for c in program).lstrip(".- ") or "command"
    return f"{cleaned} {frames}"[:200]


def parse_limit_uses(words: list[str]) -> dict[str, int]:
    """`--limit nuke=2 --limit houdini` as a layer's `limits` ({"nuke": 2, "houdini": 1}). A bad word is a
    ValueError that says which and why."""
    uses: dict[str, int] = {}
    for word in words:
        name, _, units = word.partition("=")
        name = name.strip()
        if not name:
            raise ValueError(f"{word!r}: give a limit's name, as nuke or nuke=2")
        try:
            uses[name] = int(units) if units.strip() else 1
        except ValueError:
            raise ValueError(f"{word!r}: the units after '=' must be a whole number") from None
    return uses
