"""The template interface: how an application turns (arguments, chunk) into a command.

A template is data in, data out, with no I/O, so the server can build commands at dispatch time and
`submit --dry-run` can show them. Studios add their own through the `thresher.templates` entry point.

`Template.command(args, chunk)` is what a template writes. `Template.build(args, chunk, target, rules)` is
what the server calls: it maps paths for the node's OS, fills the task's wedge/tile values into the
arguments, calls `command`, then resolves `{app:NAME}` executables for the node (see `resolve_apps`).

What the application templates share sits beside this module, one job each: `placeholders` ({frame},
{wedge}... in arguments), `outputs` (the files a task must write), `tiles` (tile tasks and their
files), `common` (the arguments renderers agree on); the padding of output patterns (`####`, `%04d`)
is `thresher.model.padding`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel, ValidationError

from thresher.model.frames import Chunk
from thresher.model.paths import PathRule, map_value, normalize_os
from thresher.templates.placeholders import (
    PendingArgs,
    fill_part,
    fill_value,
    has_wedge_placeholder,
    part_values,
    pending_keys,
)
from thresher.templates.tiles import stitch_problem

#: A layer's arguments as `Template.parse_args` gives them back.
TemplateArgs: TypeAlias = BaseModel | PendingArgs


@dataclass
class CommandLine:
    """Everything an agent needs to run one task and judge its result."""

    argv: list[str]
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    progress_patterns: list[str] = field(default_factory=list)
    error_patterns: list[str] = field(default_factory=list)


class TemplateError(ValueError):
    """The arguments cannot make a command for this chunk (said in plain words)."""


@dataclass(frozen=True)
class Target:
    """The node a command is built for: its OS and the executables it declared (`--app NAME=PATH`)."""

    os: str = "linux"
    apps: dict[str, str] = field(default_factory=dict)


def app(name: str) -> str:
    """The argv token for an application's executable, resolved per node by `resolve_apps`."""
    return "{app:" + name + "}"


_APP = re.compile(r"^\{app:([A-Za-z0-9_.\-]+)\}$")


class Template:
    """Base class: subclasses set `name`, `description`, `Args` and implement `command`.

    Class settings a template may change:
    - `apps`: application name -> {os: default executable}. A template writes `app("blender")` as argv[0];
      a node's own setting (`thresher agent --app blender=/opt/blender/blender`, or the environment
      variable `THRESHER_APP_BLENDER`) wins over these defaults; an `executable` argument wins over both.
    - `tiles`: the template can render a region of a frame (layers may then set `tiles`).
    - `ranges_only`: the application takes a frame range (start, end, step), never a frame list.
    - `whole_range`: one task covers all the layer's frames (an encode), whatever the chunk.
    - `progress_patterns` / `error_patterns`: regular expressions over the application's output lines
      (a progress figure; a line that fails the task although the exit status says success), which its
      `command` puts in the command line it builds; the command-line template takes them as arguments.
    - `default_service`: the service (`thresher service add NAME`) whose defaults its layers take when
      they name none and an admin made a service of that name; none is needed (`model/services.py`).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Args: ClassVar[type[BaseModel]]
    apps: ClassVar[dict[str, dict[str, str]]] = {}
    tiles: ClassVar[bool] = False
    ranges_only: ClassVar[bool] = False
    whole_range: ClassVar[bool] = False
    default_service: ClassVar[str | None] = None
    writes_files: ClassVar[bool] = False
    progress_patterns: ClassVar[list[str]] = []
    error_patterns: ClassVar[list[str]] = []

    def parse_args(self, args: dict[str, Any]) -> TemplateArgs:
        """Validate a layer's `args`; raises pydantic.ValidationError naming the bad field.

        A number (or other typed) argument may hold a placeholder instead (`samples: "{wedge}"`,
        `width: "{frame}"`): it is left out of this check and kept as written in a `PendingArgs`, whose
        values `build` fills in and validates per task."""
        try:
            return self.Args.model_validate(args)
        except ValidationError as exc:
            pending = pending_keys(args, exc)
            if not pending:
                raise
        model = self.Args.model_validate({k: v for k, v in args.items() if k not in pending})
        return PendingArgs(model, {k: args[k] for k in pending})

    def command(self, args: Any, chunk: Chunk) -> CommandLine:
        raise NotImplementedError

    def warnings(self, args: Any) -> list[tuple[str, str]]:
        """Things that are valid but probably not what the submitter meant (the template's own), as (its
        field under the layer, like `args.command`, or "" for the layer as a whole; message) pairs."""
        return []

    def output_patterns(self, args: Any) -> list[str]:
        """The output patterns a layer declares (checked after each task)."""
        output = getattr(args, "output", None)
        return [output] if isinstance(output, str) and output else []

    def layer_warnings(self, args: Any, layer: Any) -> list[tuple[str, str]]:
        """Warnings for a layer as submitted (`submit` and `--dry-run` show them), as `warnings` gives
        them: the template's own and what every template shares: outputs that go unchecked, wedge tasks
        that overwrite each other."""
        found = list(self.warnings(args))
        outputs = self.output_patterns(args)
        if self.writes_files and not outputs:
            found.append(("", f"{self.name}: no output given: the files it writes are not checked after each "
                          "task (give output, like /renders/shot.####.exr, to have every frame verified)"))
        if getattr(layer, "wedge", None):
            shared = [o for o in outputs if not has_wedge_placeholder(o)]
            if shared:
                found.append(("", f"{self.name}: wedge tasks all write {', '.join(shared)} and overwrite each "
                              "other: put {wedge} or {wedge_index} in the output, like "
                              "/renders/shot.w{wedge_index}.####.exr"))
        return found

    def layer_problems(self, args: Any, layer: Any) -> list[tuple[str, str]]:
        """Why a layer as submitted cannot run as meant, as (its field under the layer, message) pairs: the
        arguments against the rest of the layer (a GPU device on a layer that reserves no GPU, whose tasks
        see none). Asked at submit, so such a layer is refused there (422 naming the field)."""
        return []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "args": self.Args.model_json_schema(),
                "apps": self.apps, "tiles": self.tiles}

    def tile_size(self, args: Any) -> tuple[int, int] | None:
        """The full frame size in pixels (width, height) of a tiled layer, needed to stitch its tiles."""
        width, height = getattr(args, "width", None), getattr(args, "height", None)
        return (width, height) if width and height else None

    def tile_output(self, args: Any) -> str | None:
        """The frame output pattern a tiled layer's stitched frames go to."""
        return getattr(args, "output", None)

    def tile_problem(self, args: Any) -> tuple[str, str] | None:
        """Why a tiled layer's frames could not be stitched, as (its field under the layer, message), else
        None; asked at submit so a layer is refused then, not when its stitch task runs."""
        problem = stitch_problem(self.tile_output(args))
        return ("args.output", problem) if problem else None

    def build(self, args: TemplateArgs, chunk: Chunk, target: Target | None = None,
              path_mapping: list[PathRule] | None = None) -> CommandLine:
        """The command for one task on one node: paths mapped to the node's OS, the task's wedge or tile
        values filled into the arguments, executables resolved for the node."""
        target = target or Target()
        pending = args.pending if isinstance(args, PendingArgs) else {}
        if path_mapping or chunk.part or pending:
            data = args.model_dump(mode="json")
            data = map_value(data, list(path_mapping or []), target.os)
            for key in pending:
                data[key] = fill_value(data[key], chunk)
            if chunk.part:
                data = fill_part(data, chunk)
            try:
                args = self.Args.model_validate(data)
            except ValidationError as exc:
                if not pending:
                    raise
                problem = exc.errors()[0]
                key = str(problem["loc"][0]) if problem["loc"] else ""
                where = ".".join(str(p) for p in problem["loc"])
                task = f"frames {chunk.frames}" + "".join(f", {k} {v!r}" for k, v in part_values(chunk).items())
                raise TemplateError(f"{where}: {problem['msg']} (for {task}, {key} is {data.get(key)!r})") from None
        line = self.command(args, chunk)
        executable = getattr(args, "executable", None)
        line.argv = resolve_apps(line.argv, self.apps, target, executable)
        return line


def resolve_apps(argv: list[str], defaults: dict[str, dict[str, str]], target: Target,
                 executable: str | None = None) -> list[str]:
    """Replace `{app:NAME}` tokens: the layer's `executable` argument (for argv[0]), else the node's
    declared path for NAME, else the template's default for the node's OS, else NAME itself (on PATH)."""
    out = []
    os_name = normalize_os(target.os)
    declared = {key.lower(): value for key, value in target.apps.items() if value}
    for position, arg in enumerate(argv):
        match = _APP.match(arg)
        if not match:
            out.append(arg)
            continue
        name = match.group(1)
        if executable and position == 0:
            out.append(executable)
        elif declared.get(name.lower()):
            out.append(declared[name.lower()])
        else:
            out.append(defaults.get(name, {}).get(os_name) or defaults.get(name, {}).get("linux") or name)
    return out
