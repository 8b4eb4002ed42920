"""One valid layer spec against its template: arguments, frames the application can take, tiles or wedge
values, and the first command built, so that a layer whose tasks could not start is refused at submit.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from thresher.model import auto_chunk, scouts
from thresher.model.checked import CheckedLayer, chunk_size
from thresher.model.frames import chunk_count, frame_count, is_arithmetic, parse_frames
from thresher.model.paths import PathRule
from thresher.model.problems import Problem, field_errors
from thresher.model.sizes import argv_problem, env_problem
from thresher.model.spec import LayerSpec
from thresher.templates import Template, UnknownTemplate, get_template
from thresher.templates.base import Target, TemplateArgs, TemplateError
from thresher.templates.placeholders import PendingArgs

#: The most frames one task of a `whole_range` template (an encode) covers: the largest chunk a layer may ask.
MAX_WHOLE_RANGE = 1_000_000


@dataclass
class LayerCheck:
    """What checking one layer found: the layer ready to run (None when refused), the stitch layer that
    assembles its tiles, warnings to show the submitter, and problems that refuse it."""

    layer: CheckedLayer | None = None
    stitch: CheckedLayer | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def refused(where: str, message: str) -> LayerCheck:
    return LayerCheck(problems=[{"field": where, "message": message}])


def check_layer(i: int, layer: LayerSpec, names: set[str], path_mapping: list[PathRule]) -> LayerCheck:
    """Layer `i` of a job against its template; `names` holds the job's layer names and gets the name of
    the stitch layer a tiled layer adds."""
    try:
        template = get_template(layer.template)
    except UnknownTemplate as exc:
        return refused(f"layers.{i}.template", str(exc))
    try:
        args = template.parse_args(layer.args)
    except ValidationError as exc:
        return LayerCheck(problems=field_errors(exc, prefix=f"layers.{i}.args"))
    mismatched = template.layer_problems(args, layer)
    if mismatched:
        return LayerCheck(problems=[{"field": f"layers.{i}.{where}", "message": message}
                                    for where, message in mismatched])
    auto: dict[str, Any] | None = None
    if template.whole_range:
        layer = layer.model_copy(update={"chunk": min(frame_count(layer.frames), MAX_WHOLE_RANGE)})
    elif layer.chunk == "auto":
        if layer.tiles is not None:
            return refused(f"layers.{i}.chunk", "chunk: auto measures frame times; it cannot size tiled layers "
                           "(give a chunk size)")
        auto = {"status": "measuring", "target_task_s": layer.target_task_s or auto_chunk.DEFAULT_TARGET_S,
                "max_chunk": layer.max_chunk or auto_chunk.DEFAULT_MAX_CHUNK, "probes": layer.scout is None}
        # written a frame per task, the first ones measure (its scouts, else the probes), the rest held
        layer = layer.model_copy(update={"chunk": 1, "scout": layer.scout or auto_chunk.PROBES})
    if template.ranges_only and not is_arithmetic(layer.frames):
        return refused(f"layers.{i}.frames", f"the {template.name} template renders frame ranges only: write the "
                       "frames as plain ranges (like 1-100 or 1-100x2, without overlaps, y or :)")
    parts: list[dict[str, Any] | None] = [None]
    stitch: CheckedLayer | None = None
    if layer.wedge is not None:
        parts = [{"wedge": value, "wedge_index": n} for n, value in enumerate(layer.wedge)]
    elif layer.tiles is not None:
        stitch_check = _stitch_layer(i, layer, template, args, names)
        if stitch_check.problems:
            return stitch_check
        stitch = stitch_check.layer
        nx, ny = layer.tiles
        parts = [{"tile": [col, row], "tiles": [nx, ny]} for row in range(ny) for col in range(nx)]
    assert isinstance(layer.chunk, int)
    if auto is not None:
        auto["parts"] = len(parts)  # wedge values: the rewrite chunks each on its own
    checked = CheckedLayer(layer, template, args, chunk_count(layer.frames, layer.chunk) * len(parts), parts,
                           auto_chunk=auto)
    if layer.scout is not None:
        try:
            checked.scout_frames = scouts.pick(layer.scout, [int(f) for f in parse_frames(layer.frames)])
        except scouts.ScoutSpecError as exc:
            return refused(f"layers.{i}.scout", str(exc))
        checked.scout_tasks = scout_task_indices(checked)
    try:
        # the first task; arguments with placeholders (`samples: "{wedge}"`) with every wedge value
        for chunk in itertools.islice(checked.chunks(), len(parts) if isinstance(args, PendingArgs) else 1):
            line = template.build(args, chunk, Target(), path_mapping)
            too_large = argv_problem(line.argv) or env_problem({**layer.env, **line.env})
            if too_large:  # sent in every assignment, and past what an OS starts (`model/sizes.py`)
                return refused(f"layers.{i}.args", too_large)
    except (TemplateError, ValidationError, ValueError) as exc:
        return refused(f"layers.{i}.args", str(exc))
    return LayerCheck(checked, stitch, [warning_line(i, found) for found in template.layer_warnings(args, layer)])


def warning_line(i: int, found: tuple[str, str] | str) -> str:
    """A template's warning for layer `i` as a submit and a dry run list it: `layers.0.args.command: ...`
    at its field, `layers.0: ...` for the layer (a plug-in template's plain text, as warnings once were)."""
    where, message = ("", found) if isinstance(found, str) else found
    return f"layers.{i}{'.' + where if where else ''}: {message}"


def scout_task_indices(checked: CheckedLayer) -> list[int]:
    """The indices of the tasks holding a scout frame: every part (tile, wedge value) of a chunk that
    holds one (`model.scouts`: chunks are not split for scouts)."""
    wanted = sorted(checked.scout_frames)
    if not wanted:
        return []
    out = []
    for index, (text, start, end, _step, _count), _part in checked.numbered(checked.parts):
        low, high = min(start, end), max(start, end)
        near = [f for f in wanted[bisect.bisect_left(wanted, low):bisect.bisect_right(wanted, high)]]
        if near and scouts.covers(near, (int(f) for f in parse_frames(text))):
            out.append(index)
    return out


def _stitch_layer(i: int, layer: LayerSpec, template: Template, args: TemplateArgs, names: set[str]) -> LayerCheck:
    """The assembly layer of a tiled layer: one stitch task per chunk, after all the tiles."""
    where = f"layers.{i}.tiles"
    if not template.tiles:
        return refused(where, f"the {template.name} template cannot render tiles")
    size = template.tile_size(args)
    if size is None:
        return refused(where, "tiles need the frame size: give width and height in args")
    output = template.tile_output(args)
    if not output:
        return refused(where, "tiles need an output pattern to stitch the frames into")
    problem = template.tile_problem(args)
    if problem:
        return refused(f"layers.{i}.{problem[0]}", problem[1])
    assert layer.tiles is not None
    name = f"{layer.name}-stitch"
    while name in names:
        name += "-"
    names.add(name)
    stitch_template = get_template("stitch")
    stitch_args = stitch_template.parse_args({"output": output, "tiles": list(layer.tiles), "size": list(size)})
    spec = LayerSpec(name=name, template="stitch", args=stitch_args.model_dump(mode="json"), frames=layer.frames,
                     chunk=layer.chunk, tags=layer.tags, retries=layer.retries, depends_on=[layer.name],
                     env=layer.env, cwd=layer.cwd)
    return LayerCheck(CheckedLayer(spec, stitch_template, stitch_args, chunk_count(layer.frames, chunk_size(layer))))
