"""The template interface: how an application turns (arguments, chunk) into a command.

A template is data in, data out, with no I/O, so the server can build commands at dispatch time and
`submit --dry-run` can show them. Studios add their own through the `thresher.templates` entry point.

`Template.command(args, chunk)` is what a template writes. `Template.build(args, chunk, target, rules)` is
what the server calls: it maps paths for the node's OS, fills the task's wedge/tile values into the
arguments, calls `command`, then resolves `{app:NAME}` executables for the node (see `resolve_apps`).
"""

from __future__ import annotations

import re
import os
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic import BaseModel

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

    def parse_args(self, args: dict[str, Any]) -> BaseModel:
        """Validate a layer's `args`; raises pydantic.ValidationError naming the bad field."""
        return self.Args.model_validate(args)

    def command(self, args: Any, chunk: Chunk) -> CommandLine:
        raise NotImplementedError

    def warnings(self, args: Any) -> list[str]:
        """Things that are valid but probably not what the submitter meant."""
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
        if path_mapping or chunk.part:
            data = args.model_dump(mode="json")
            data = map_value(data, list(path_mapping or []), target.os)
            if chunk.part:
                data = _fill_part(data, chunk)
            args = self.Args.model_validate(data)
        line = self.command(args, chunk)
        executable = getattr(args, "executable", None)
        line.argv = resolve_apps(line.argv, self.apps, target, executable)
        return line


_PLACEHOLDER = re.compile(r"\{(frame|start|end|step|frames|count|wedge|wedge_index|tile|tile_x|tile_y)(:[^{}]*)?\}")
_PART_PLACEHOLDER = re.compile(r"\{(wedge|wedge_index|tile|tile_x|tile_y)(:[^{}]*)?\}")


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


def fill_placeholders(text: str, chunk: Chunk) -> str:
    """Replace {frame}, {start}, {end}, {step}, {frames}, {count} (with optional format spec, as in
    `{frame:04d}`), and {wedge}, {wedge_index}, {tile}, {tile_x}, {tile_y} for wedge and tile tasks; any
    other braces are left alone so shell and JSON text survives."""
    values: dict[str, Any] = {
        "frame": chunk.start, "start": chunk.start, "end": chunk.end,
        "step": abs(chunk.step) or 1, "frames": chunk.frames, "count": chunk.count,
        **_part_values(chunk),
    }

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
