"""Maya batch rendering: `Render -r arnold|vray|redshift|renderman|sw -s S -e E -b J -rd DIR -im NAME ... scene.mb`.

Maya takes a frame range (no frame list). The output pattern becomes the image folder (-rd), name (-im),
padding (-pad), format (-of) and Maya's file name convention (-fnc), which decides where the frame number
goes; the patterns Maya can produce are:

| output                | -im     | -fnc       | Maya writes      |
| --------------------- | ------- | ---------- | ---------------- |
| `/r/sh010.####.exr`   | `sh010` | name.#.ext | `sh010.0001.exr` |
| `/r/sh010_####.exr`   | `sh010` | name_#.ext | `sh010_0001.exr` |
| `/r/sh010####.exr`    | `sh010` | name#.ext  | `sh0100001.exr`  |
| `/r/sh010.exr.####`   | `sh010` | name.ext.# | `sh010.exr.0001` |
| `/r/sh010.####`       | `sh010` | name.#     | `sh010.0001`     |

Anything else (text after the frame number, like `sh010.####_beauty.exr`) Maya cannot write, so it is
refused at submit rather than checked for files that never appear.

Threads: with Maya Software (`renderer: sw`) `-n N` gives the render the task's reserved cores; the other
renderers take their thread count from their own render settings, so they get the cores through the
thread environment the agent sets (OMP_NUM_THREADS and friends, `agent/child.py`) only.
"""

from __future__ import annotations

import os
import re

from pydantic import Field, field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import split_padding
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.common import NUMBER, SizedArgs, frame_args, require_padding
from thresher.templates.outputs import frame_outputs

RENDERERS = ("arnold", "vray", "redshift", "renderman", "sw", "hw2", "file")
MAYA_PATTERNS = ("/r/sh010.####.exr, /r/sh010_####.exr, /r/sh010####.exr, /r/sh010.exr.#### or /r/sh010.####")


def maya_naming(pattern: str) -> tuple[str, str, int, str, str | None]:
    """(folder, -im name, -pad width, -fnc convention, -of format or None) that make Maya write exactly
    the files of `pattern`; ValueError when no Maya file name convention produces them."""
    before, width, after = split_padding(pattern)
    folder, name = os.path.split(before)
    ext = re.fullmatch(r"\.([A-Za-z0-9]+)", after)
    if ext:
        if name.endswith("."):
            im, fnc = name[:-1], "name.#.ext"
        elif name.endswith("_"):
            im, fnc = name[:-1], "name_#.ext"
        else:
            im, fnc = name, "name#.ext"
        of: str | None = ext.group(1)
    elif not after:
        name_ext = re.fullmatch(r"(.+)\.([A-Za-z0-9]+)\.", name)
        if name_ext:
            im, fnc, of = name_ext.group(1), "name.ext.#", name_ext.group(2)
        elif name.endswith("."):
            im, fnc, of = name[:-1], "name.#", None
        else:
            im, fnc, of = "", "", None
    else:
        raise ValueError(f"Maya cannot write {pattern!r}: it puts the frame number last, before the extension "
                         f"only; write the output like {MAYA_PATTERNS}")
    if not im or not fnc:
        raise ValueError(f"Maya cannot write {pattern!r}: give a file name before the frame number, like "
                         f"{MAYA_PATTERNS}")
    return folder or ".", im, width, fnc, of


class MayaArgs(SizedArgs):
    renderer: str = Field("arnold", description="arnold, vray, redshift, renderman, sw (Maya Software) or file")
    project: str | None = Field(None, description="Maya project folder (-proj)")
    render_layer: str | None = Field(None, min_length=1, description="render layer (-rl)")

    @field_validator("renderer", mode="before")
    @classmethod
    def _renderer(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value == "software":
                value = "sw"
            if value not in RENDERERS:
                raise ValueError(f"unknown renderer {value!r}: use one of {', '.join(RENDERERS)}")
        return value

    @field_validator("output")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            require_padding(value)
            maya_naming(value)
        return value


class MayaTemplate(Template):
    name = "maya"
    default_service = "maya"
    description = ("Maya command-line render (Render -r arnold/vray/redshift/renderman/sw): scene, output (####), "
                   "renderer, camera, width/height, project, render_layer.")
    Args = MayaArgs
    writes_files = True
    apps = {"Render": {"linux": "/usr/autodesk/maya/bin/Render",
                       "windows": "C:/Program Files/Autodesk/Maya2024/bin/Render.exe",
                       "darwin": "/Applications/Autodesk/maya2024/Maya.app/Contents/bin/Render"}}
    ranges_only = True
    progress_patterns = [
        r"[Rr]endering frame (?P<frame>-?\d+)",
        rf"\|\s*(?P<pct>{NUMBER})% done",                       # Arnold
        rf"Percentage of rendering done: (?P<pct>{NUMBER})",    # Maya Software
        r"Block (?P<done>\d+)/(?P<total>\d+)",                  # Redshift
        rf"Rendering image\.*:\s*(?P<pct>{NUMBER})%",           # V-Ray
        rf"R90000\s+(?P<pct>{NUMBER})%",                        # RenderMan
    ]
    error_patterns = [
        r"^\s*(// )?Error:",
        r"\bERROR\s+\|",                                  # Arnold
        r"^\[Redshift\] ERROR",                            # Redshift
        r"\bV-Ray: error:|^\[\d{4}/\w+/\d+\|[\d:]+\] error:",   # V-Ray
        r"^[A-Z]\d{5}\s+\{(?:ERROR|SEVERE)\}",            # RenderMan
        r"Maya exited with status [1-9]",
    ]

    def command(self, args: MayaArgs, chunk: Chunk) -> CommandLine:
        start, end, step = frame_args(chunk, "Maya")
        argv = [app("Render"), "-r", args.renderer, "-s", str(start), "-e", str(end), "-b", str(step)]
        if args.project:
            argv += ["-proj", args.project]
        if args.camera:
            argv += ["-cam", args.camera]
        if args.width:
            argv += ["-x", str(args.width)]
        if args.height:
            argv += ["-y", str(args.height)]
        if args.render_layer:
            argv += ["-rl", args.render_layer]
        if args.renderer == "sw" and chunk.cores:
            argv += ["-n", str(chunk.cores)]
        if args.output:
            folder, name, width, fnc, of = maya_naming(args.output)
            argv += ["-rd", folder, "-im", name, "-pad", str(width), "-fnc", fnc]
            if of:
                argv += ["-of", of]
        argv += list(args.extra_args)
        argv.append(args.scene)
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
