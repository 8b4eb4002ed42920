"""POV-Ray 3.7: `povray +Iscene.pov +O/r/shot..png +W +H -D +FN +KFI +KFF +KI +KF +SF +EF Frame_Step=J`.

POV-Ray names animation frames itself: the output name without its extension, the frame number padded
to the digits of the final frame (+KFF), then the extension. So the output pattern must end with the
padding and an extension (`/r/shot.####.png`); +KFF is chosen with as many digits as the padding.
The clock runs with the frame number (`clock` = `frame_number`), so a chunk renders the same image as
the whole animation would. A tile renders its region natively (+SC +EC +SR +ER) into a full-size image.
"""

from __future__ import annotations

import re

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
                   "quality; renders tiles natively.")
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
    error_patterns = [r"Parse Error", r"Fatal error", r"Render failed", r"Render aborted"]

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
        final = max(10 ** width - 1, end)
        first = min(1, start)
        argv = [app("povray"), f"+I{args.scene}", f"+O{before}{after}", f"+W{args.width}", f"+H{args.height}",
                "-D", "-P", f"+F{FORMATS[after.lower()]}",
                f"+KFI{first}", f"+KFF{final}", f"+KI{first}", f"+KF{final}",
                f"+SF{start}", f"+EF{end}"]
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
