"""POV-Ray 3.7: `povray +Iscene.pov +O/r/shot..png +W +H -D +FN +KFI +KFF +KI +KF +SF +EF Frame_Step=J`.

POV-Ray names animation frames itself: the output name without its extension, the frame number padded
to the digits of the final frame (+KFF), then the extension. So the output pattern must end with the
padding and an extension (`/r/shot.####.png`); +KFF is chosen with as many digits as the padding.
The clock follows POV-Ray's own convention: it runs from 0.0 at the layer's first frame to 1.0 at its
last, whatever frames a task renders (+KI/+KF are the clock values at the +KFI/+KFF frames, set so that
the layer's first and last frames get 0 and 1; +SF/+EF pick the task's frames), so a chunk renders the
same image as the whole animation would. `clock: frame` makes the clock the frame number instead. A tile
renders its region natively (+SC +EC +SR +ER) into a full-size image. `+WTn` (Work_Threads) gives the
render the task's reserved cores.

Errors: POV-Ray's real parse errors read `Parse Error: ...`; its warnings read `Possible Parse Error: ...`
(`assumed_gamma not specified`), so the pattern leaves out lines where `Possible` comes first.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import split_padding
from thresher.model.paths import PathRule
from thresher.templates.base import CommandLine, Target, Template, TemplateArgs, TemplateError, app
from thresher.templates.common import AppArgs, frame_args, require_padding
from thresher.templates.outputs import frame_outputs
from thresher.templates.tiles import output_for, tile_of, tile_region

FORMATS = {".png": "N", ".tga": "T", ".exr": "E", ".hdr": "H", ".jpg": "J", ".jpeg": "J", ".bmp": "B", ".ppm": "P"}


class PovrayArgs(AppArgs):
    output: str = Field(..., description="output pattern ending with padding and extension: /r/shot.####.png")
    width: int = Field(320, ge=1, le=65536)
    height: int = Field(240, ge=1, le=65536)
    antialias: float | None = Field(None, ge=0, le=3, description="antialiasing threshold (+A)")
    quality: int | None = Field(None, ge=0, le=11, description="render quality (+Q)")
    library_paths: list[str] = Field(default_factory=list, description="include folders (+L)")
    clock: Literal["animation", "frame"] = Field(
        "animation", description="animation (default, POV-Ray's convention): clock runs from 0.0 at the layer's "
                                 "first frame to 1.0 at its last; frame: clock is the frame number")

    @field_validator("output")
    @classmethod
    def _pattern(cls, value: str) -> str:
        require_padding(value)
        _, _, after = split_padding(value)
        if not re.fullmatch(r"\.[A-Za-z0-9]+", after):
            raise ValueError(f"POV-Ray puts the frame number just before the extension: end {value!r} with the "
                             "padding and an extension, like /renders/shot.####.png")
        if after.lower() not in FORMATS:
            raise ValueError(f"POV-Ray writes {', '.join(FORMATS)} files")
        return value


class PovrayTemplate(Template):
    name = "povray"
    description = ("POV-Ray 3.7 animations and stills: scene, output (.####.png), width, height, antialias, "
                   "quality, clock (0 to 1 over the layer's frames, or clock: frame for the frame number); "
                   "renders tiles natively.")
    Args = PovrayArgs
    writes_files = True
    apps = {"povray": {"linux": "povray", "windows": "C:/Program Files/POV-Ray/v3.7/bin/pvengine64.exe",
                       "darwin": "povray"}}
    tiles = True
    ranges_only = True
    progress_patterns = [
        r"Rendering frame (?P<nth>\d+) of (?P<of>\d+)",
        r"Rendered (?P<done>\d+) of (?P<total>\d+) pixels",
    ]
    # `File 'a.pov' line 1: Parse Error: ...` is an error; `Possible Parse Error: assumed_gamma not specified`
    # is a warning of scenes that render fine
    error_patterns = [r"(?<!Possible )\bParse Error:", r"^Fatal error\b", r"^Render failed", r"^Render aborted"]

    def build(self, args: TemplateArgs, chunk: Chunk, target: Target | None = None,
              path_mapping: list[PathRule] | None = None) -> CommandLine:
        """POV-Ray for Windows (`pvengine64.exe`, the Windows default) is a GUI program: `/EXIT /RENDER` make it
        render the options it is given and close, instead of waiting on screen."""
        line = super().build(args, chunk, target, path_mapping)
        if re.match(r"pvengine", re.split(r"[\\/]", line.argv[0])[-1], re.I):
            line.argv[1:1] = ["/EXIT", "/RENDER"]
        return line

    def command(self, args: PovrayArgs, chunk: Chunk) -> CommandLine:
        start, end, step = frame_args(chunk, "POV-Ray")
        output = output_for(chunk, args.output)
        assert output is not None
        before, width, after = split_padding(output)
        if start < 0:
            raise TemplateError("POV-Ray cannot render negative frame numbers")
        final = max(10 ** width - 1, end)  # POV-Ray pads frame numbers to the digits of +KFF
        first = min(1, start)
        clock_first, clock_final = _clock(args.clock, first, final, chunk.layer_frames or (start, end))
        argv = [app("povray"), f"+I{args.scene}", f"+O{before}{after}", f"+W{args.width}", f"+H{args.height}",
                "-D", "-P", f"+F{FORMATS[after.lower()]}",
                f"+KFI{first}", f"+KFF{final}", f"+KI{clock_first}", f"+KF{clock_final}",
                f"+SF{start}", f"+EF{end}"]
        if chunk.cores:
            argv.append(f"+WT{chunk.cores}")
        if step != 1:
            argv.append(f"Frame_Step={step}")
        if args.antialias is not None:
            argv.append(f"+A{args.antialias:g}")
        if args.quality is not None:
            argv.append(f"+Q{args.quality}")
        argv += [f"+L{path}" for path in args.library_paths]
        tile = tile_of(chunk)
        if tile:
            left, top, right, bottom = tile_region(args.width, args.height, *tile)
            # 1-based, inclusive pixel numbers; POV-Ray reads values from 0.0 to 1.0 as fractions, so a
            # first column or row of 1 is written as the fraction 0.0
            argv += [f"+SC{left + 1 if left else 0.0}", f"+EC{right}", f"+SR{top + 1 if top else 0.0}", f"+ER{bottom}"]
        argv += list(args.extra_args)
        return CommandLine(argv=argv, outputs=frame_outputs(output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))


def _clock(mode: str, first: int, final: int, layer: tuple[int, int]) -> tuple[str, str]:
    """The clock values (+KI, +KF) at frames `first` (+KFI) and `final` (+KFF). POV-Ray's clock is linear in
    the frame number between them; `animation` puts 0.0 at the layer's first frame and 1.0 at its last (a
    one-frame layer: 0.0 throughout), `frame` makes it the frame number."""
    if mode == "frame":
        return str(first), str(final)
    low, high = layer
    if high <= low:
        return "0.0", "0.0"
    return _number((first - low) / (high - low)), _number((final - low) / (high - low))


def _number(value: float) -> str:
    """A clock value as POV-Ray reads it: decimals, never an exponent."""
    text = f"{value:.12f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
