"""The template interface: how an application turns (arguments, chunk) into a command.

A template is data in, data out, with no I/O, so the server can build commands at dispatch time and
`submit --dry-run` can show them. Studios add their own through the `thresher.templates` entry point.

`Template.command(args, chunk)` is what a template writes. `Template.build(args, chunk, target, rules)` is
what the server calls: it maps paths for the node's OS, fills the task's wedge/tile values into the
arguments, calls `command`, then resolves `{app:NAME}` executables for the node (see `resolve_apps`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from thresher.model.frames import Chunk, expand_padding, has_padding
from thresher.model.paths import PathRule, map_value, normalize_os


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
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Args: ClassVar[type[BaseModel]]
    apps: ClassVar[dict[str, dict[str, str]]] = {}
    tiles: ClassVar[bool] = False
    ranges_only: ClassVar[bool] = False
    whole_range: ClassVar[bool] = False
    writes_files: ClassVar[bool] = False

    def parse_args(self, args: dict[str, Any]) -> Any:
        """Validate a layer's `args`; raises pydantic.ValidationError naming the bad field.

        A number (or other typed) argument may hold a placeholder instead (`samples: "{wedge}"`,
        `width: "{frame}"`): it is left out of this check and kept as written in a `PendingArgs`, whose
        values `build` fills in and validates per task."""
        try:
            return self.Args.model_validate(args)
        except ValidationError as exc:
            pending = _pending_keys(args, exc)
            if not pending:
                raise
        model = self.Args.model_validate({k: v for k, v in args.items() if k not in pending})
        return PendingArgs(model, {k: args[k] for k in pending})

    def command(self, args: Any, chunk: Chunk) -> CommandLine:
        raise NotImplementedError

    def warnings(self, args: Any) -> list[str]:
        """Things that are valid but probably not what the submitter meant (the template's own)."""
        return []

    def output_patterns(self, args: Any) -> list[str]:
        """The output patterns a layer declares (checked after each task)."""
        output = getattr(args, "output", None)
        return [output] if isinstance(output, str) and output else []

    def layer_warnings(self, args: Any, layer: Any) -> list[str]:
        """Warnings for a layer as submitted (`submit` and `--dry-run` show them): the template's own and
        what every template shares: outputs that go unchecked, wedge tasks that overwrite each other."""
        found = list(self.warnings(args))
        outputs = self.output_patterns(args)
        if self.writes_files and not outputs:
            found.append(f"{self.name}: no output given: the files it writes are not checked after each task "
                         "(give output, like /renders/shot.####.exr, to have every frame verified)")
        if getattr(layer, "wedge", None):
            shared = [o for o in outputs if not _WEDGE_PLACEHOLDER.search(o)]
            if shared:
                found.append(f"{self.name}: wedge tasks all write {', '.join(shared)} and overwrite each other: put "
                             "{wedge} or {wedge_index} in the output, like /renders/shot.w{wedge_index}.####.exr")
        return found

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
        output = self.tile_output(args)
        ext = os.path.splitext(output or "")[1].lower()
        if output and ext not in STITCH_EXTENSIONS:
            return "args.output", (f"tiles are stitched with Pillow, which cannot read and write {ext or 'extensionless'} "
                                   f"files: render tiled layers to {', '.join(sorted(STITCH_EXTENSIONS))}, "
                                   "or leave tiles out")
        return None

    def build(self, args: BaseModel, chunk: Chunk, target: Target | None = None,
              path_mapping: list[PathRule] | None = None) -> CommandLine:
        """The command for one task on one node: paths mapped to the node's OS, the task's wedge or tile
        values filled into the arguments, executables resolved for the node."""
        target = target or Target()
        pending = args.pending if isinstance(args, PendingArgs) else {}
        if path_mapping or chunk.part or pending:
            data = args.model_dump(mode="json")
            data = map_value(data, list(path_mapping or []), target.os)
            for key in pending:
                data[key] = _fill_value(data[key], chunk)
            if chunk.part:
                data = _fill_part(data, chunk)
            try:
                args = self.Args.model_validate(data)
            except ValidationError as exc:
                if not pending:
                    raise
                problem = exc.errors()[0]
                key = problem["loc"][0] if problem["loc"] else ""
                where = ".".join(str(p) for p in problem["loc"])
                task = f"frames {chunk.frames}" + "".join(f", {k} {v!r}" for k, v in _part_values(chunk).items())
                raise TemplateError(f"{where}: {problem['msg']} (for {task}, {key} is {data.get(key)!r})") from None
        line = self.command(args, chunk)
        executable = getattr(args, "executable", None)
        line.argv = resolve_apps(line.argv, self.apps, target, executable)
        return line


_PLACEHOLDER = re.compile(r"\{(frame|start|end|step|frames|count|wedge|wedge_index|tile|tile_x|tile_y)(:[^{}]*)?\}")
_PART_PLACEHOLDER = re.compile(r"\{(wedge|wedge_index|tile|tile_x|tile_y)(:[^{}]*)?\}")
_WEDGE_PLACEHOLDER = re.compile(r"\{wedge(_index)?(:[^{}]*)?\}")
# validation errors that say "this is not a number (or bool, or list)": a placeholder may stand there
_TYPE_ERRORS = ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "bool_parsing",
                "bool_type", "decimal_parsing", "decimal_type", "list_type")


class PendingArgs:
    """A layer's validated arguments, some of which hold placeholders where a number goes
    (`samples: "{wedge}"`). Reads like the arguments model (placeholders read as their defaults);
    `Template.build` fills in each task's values and validates them; `model_dump` gives back the
    arguments as written, placeholders included, so they can be stored and parsed again."""

    def __init__(self, model: BaseModel, pending: dict[str, Any]) -> None:
        self.model = model
        self.pending = pending

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "pending"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return {**self.model.model_dump(**kwargs), **self.pending}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PendingArgs) and (self.model, self.pending) == (other.model, other.pending)

    def __repr__(self) -> str:
        return f"PendingArgs({self.model!r}, pending={self.pending!r})"


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_PLACEHOLDER.search(value))
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def _pending_keys(args: Any, exc: ValidationError) -> set[str]:
    """The top-level arguments whose only fault is a placeholder where a number (bool, list) goes."""
    if not isinstance(args, dict):
        return set()
    keys = set()
    for error in exc.errors():
        key = error["loc"][0] if error["loc"] else None
        if (isinstance(key, str) and key in args and _has_placeholder(args[key])
                and error["type"] in _TYPE_ERRORS):
            keys.add(key)
    return keys


def _fill_value(value: Any, chunk: Chunk) -> Any:
    """A pending argument with the task's values: a lone placeholder takes the value itself (a wedge
    value 0.5 stays a number); placeholders inside text are written into it."""
    if isinstance(value, list):
        return [_fill_value(v, chunk) for v in value]
    if not isinstance(value, str):
        return value
    match = _PLACEHOLDER.fullmatch(value.strip())
    if match and not match.group(2):
        values = _task_values(chunk)
        if match.group(1) in values:
            return values[match.group(1)]
    return fill_placeholders(value, chunk)


def _part_values(chunk: Chunk) -> dict[str, Any]:
    part = chunk.part or {}
    values: dict[str, Any] = {}
    if "wedge" in part:
        values["wedge"] = part["wedge"]
        values["wedge_index"] = part.get("wedge_index", 0)
    if "tile" in part:
        col, row = part["tile"]
        values.update(tile=f"{col}_{row}", tile_x=col, tile_y=row)
    return values


def _fill_part(value: Any, chunk: Chunk) -> Any:
    """Put the task's wedge / tile values into every string of the arguments (frames stay for `command`)."""
    values = _part_values(chunk)
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                return match.group(0)
            return format(values[match.group(1)], (match.group(2) or ":")[1:])
        return _PART_PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [_fill_part(v, chunk) for v in value]
    if isinstance(value, dict):
        return {k: _fill_part(v, chunk) for k, v in value.items()}
    return value


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


def _task_values(chunk: Chunk) -> dict[str, Any]:
    return {"frame": chunk.start, "start": chunk.start, "end": chunk.end, "step": abs(chunk.step) or 1,
            "frames": chunk.frames, "count": chunk.count, **_part_values(chunk)}


def fill_placeholders(text: str, chunk: Chunk) -> str:
    """Replace {frame}, {start}, {end}, {step}, {frames}, {count} (with optional format spec, as in
    `{frame:04d}`), and {wedge}, {wedge_index}, {tile}, {tile_x}, {tile_y} for wedge and tile tasks; any
    other braces are left alone so shell and JSON text survives."""
    values = _task_values(chunk)

    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)
        spec = (match.group(2) or ":")[1:]
        return format(values[match.group(1)], spec)

    return _PLACEHOLDER.sub(sub, text)


def expand_outputs(patterns: list[str], chunk: Chunk) -> list[str]:
    """The files a chunk must write: each padded pattern once per frame, others once."""
    files: list[str] = []
    for pattern in patterns:
        pattern = fill_placeholders(pattern, chunk)
        if has_padding(pattern):
            files.extend(expand_padding(pattern, frame) for frame in chunk.frame_list())
        else:
            files.append(pattern)
    return files


# --- helpers the application templates share --------------------------------------------------------

def frame_outputs(pattern: str | None, chunk: Chunk) -> list[str]:
    """The files a render chunk writes for an output pattern (none when there is no pattern)."""
    return expand_outputs([pattern], chunk) if pattern else []


def to_hashes(pattern: str) -> str:
    """An output pattern with its padding written as `#` (what Blender, Houdini and Nuke read)."""
    def printf(match: re.Match[str]) -> str:
        return "#" * max(int(match.group(1) or 1), 1)

    out = re.sub(r"%0?(\d*)d", printf, pattern)
    return re.sub(r"@+", lambda m: "#" * len(m.group(0)), out)


def to_printf(pattern: str) -> str:
    """An output pattern with its padding written as `%04d` (what ffmpeg, Nuke and V-Ray read)."""
    out = re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", pattern)
    return re.sub(r"@+", lambda m: f"%0{len(m.group(0))}d", out)


def split_padding(pattern: str) -> tuple[str, int, str]:
    """`/r/shot.####.exr` -> (`/r/shot.`, 4, `.exr`): what comes before the frame number, its width, after."""
    match = re.search(r"#+|@+|%0?(\d*)d", pattern)
    if not match:
        raise TemplateError(f"output {pattern!r} has no frame padding: write it like shot.####.exr")
    width = len(match.group(0)) if match.group(0)[0] in "#@" else max(int(match.group(1) or 1), 1)
    return pattern[:match.start()], width, pattern[match.end():]


def frame_args(chunk: Chunk, ranges_only_app: str) -> tuple[int, int, int]:
    """(start, end, step) of a chunk, for applications that take a range and no frame list."""
    if chunk.step == 0:
        raise TemplateError(f"{ranges_only_app} renders frame ranges only; frames {chunk.frames} are not one range")
    return chunk.start, chunk.end, abs(chunk.step) or 1


def tile_of(chunk: Chunk) -> tuple[int, int, int, int] | None:
    """(col, row, tiles_x, tiles_y) of a tile task, else None."""
    part = chunk.part or {}
    if "tile" not in part:
        return None
    (col, row), (nx, ny) = part["tile"], part["tiles"]
    return int(col), int(row), int(nx), int(ny)


def tile_region(width: int, height: int, col: int, row: int, nx: int, ny: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom; right and bottom exclusive) of tile (col, row) in a grid of
    nx by ny tiles, row 0 at the top. Templates and the stitch tool share this, so they always agree."""
    return (col * width // nx, row * height // ny, (col + 1) * width // nx, (row + 1) * height // ny)


# The image files the stitch tool (Pillow) can both read and write, so tiled layers can use them.
STITCH_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".tga", ".bmp", ".webp", ".ppm"})


def tile_path(pattern: str, col: int, row: int) -> str:
    """Where a tile of a frame goes: `/r/shot.####.png` -> `/r/shot.tile_1_0.####.png` (the frame number
    stays last before the extension, where every renderer can put it)."""
    match = re.search(r"#+|@+|%0?\d*d", pattern)
    if match:
        return f"{pattern[:match.start()]}tile_{col}_{row}.{pattern[match.start():]}"
    base, ext = os.path.splitext(pattern)
    return f"{base}.tile_{col}_{row}{ext}"


def output_for(chunk: Chunk, pattern: str | None) -> str | None:
    """The output pattern this task writes: the tile's own file for tile tasks, else the pattern."""
    tile = tile_of(chunk)
    if pattern and tile:
        return tile_path(pattern, tile[0], tile[1])
    return pattern


def with_part(chunk: Chunk, part: dict[str, Any] | None) -> Chunk:
    return replace(chunk, part=part)
