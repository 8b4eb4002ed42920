"""Maya batch rendering: `Render -r arnold|vray|redshift|renderman|sw -s S -e E -b J -rd DIR -im NAME ... scene.mb`.

Maya takes a frame range (no frame list). The output pattern `/renders/sh010.####.exr` becomes the image
folder (-rd), name (-im), padding (-pad) and format (-of).
"""

from __future__ import annotations

import os

from pydantic import Field, field_validator

from thresher.model.frames import Chunk
from thresher.templates.base import CommandLine, Template, app, frame_args, frame_outputs, split_padding
from thresher.templates.common import NUMBER, SizedArgs, require_padding

RENDERERS = ("arnold", "vray", "redshift", "renderman", "sw", "hw2", "file")


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
        return require_padding(value)


class MayaTemplate(Template):
    name = "maya"
    description = ("Maya command-line render (Render -r arnold/vray/redshift/renderman/sw): scene, output (####), "
                   "renderer, camera, width/height, project, render_layer.")
    Args = MayaArgs
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
    error_patterns = [r"^\s*(// )?Error:", r"\bERROR\s+\|", r"^\[Redshift\] ERROR", r"Maya exited with status [1-9]"]

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
        if args.output:
            before, width, after = split_padding(args.output)
            folder, name = os.path.split(before)
            ext = os.path.splitext(after)[1].lstrip(".") or after.lstrip(".")
            argv += ["-rd", folder or ".", "-im", name.rstrip("._"), "-pad", str(width), "-fnc", "name.#.ext"]
            if ext:
                argv += ["-of", ext]
        argv += list(args.extra_args)
        argv.append(args.scene)
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
