"""Houdini: ROPs in a .hip file through `hython`, USD stages through `husk` (Solaris/Karma).

- hython: loads the .hip and renders the ROP (`driver`) for the chunk's range with progress on
  (`ALF_PROGRESS n%` lines), the output overridden when `output` is given.
- husk: `husk --frame S --frame-count N --frame-inc J -o out.$F4.exr --renderer R --camera C --res W H
  --verbose a2 scene.usd`.

Threads: husk gets `--threads N` (its `-j/--threads`, the size of its TBB scheduler) for the task's
reserved cores; hython gets them through HOUDINI_MAXTHREADS, which the agent sets for every task
(`agent/child.py`; SideFX's docs prefer it or `-j` to hou.setMaxThreads), leaving hython's own argv alone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from thresher.model.frames import Chunk
from thresher.model.padding import split_padding
from thresher.templates.base import CommandLine, Template, TemplateError, app
from thresher.templates.common import NUMBER, SizedArgs, frame_args
from thresher.templates.outputs import frame_outputs

USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")


class HoudiniArgs(SizedArgs):
    driver: str | None = Field(None, description="the ROP to render with hython, e.g. /out/karma1")
    mode: Literal["auto", "hython", "husk"] = Field("auto", description="auto: husk for USD files, else hython")
    renderer: str | None = Field(None, description="husk render delegate, e.g. BRAY_HdKarma, BRAY_HdKarmaXPU")

    @model_validator(mode="after")
    def _driver(self) -> "HoudiniArgs":
        if self.resolved_mode() == "hython" and not self.driver:
            raise ValueError("driver: name the ROP to render, e.g. /out/mantra1 (or give a USD scene for husk)")
        return self

    def resolved_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "husk" if self.scene.lower().endswith(USD_SUFFIXES) else "hython"


def houdini_pattern(pattern: str) -> str:
    """An output pattern with Houdini's frame variable: `####` / `@@@@` / `%04d` -> `$F4`, `###` -> `$F3`,
    `#` -> `$F` (hython and husk expand it; they would write a `#` literally)."""
    before, width, after = split_padding(pattern)
    return f"{before}$F{width if width > 1 else ''}{after}"


class HoudiniTemplate(Template):
    name = "houdini"
    default_service = "houdini"
    description = ("Houdini: a ROP of a .hip through hython (driver), or a USD stage through husk; scene, output "
                   "(####), driver, renderer, camera, width/height.")
    Args = HoudiniArgs
    writes_files = True
    apps = {"hython": {"linux": "hython", "windows": "C:/Program Files/Side Effects Software/Houdini/bin/hython.exe",
                       "darwin": "/Applications/Houdini/Current/Frameworks/Houdini.framework/Resources/bin/hython"},
            "husk": {"linux": "husk", "windows": "C:/Program Files/Side Effects Software/Houdini/bin/husk.exe",
                     "darwin": "/Applications/Houdini/Current/Frameworks/Houdini.framework/Resources/bin/husk"}}
    ranges_only = True
    progress_patterns = [
        r"^(?:Rendering|Render) frame (?P<frame>-?\d+)",
        rf"ALF_PROGRESS (?P<pct>{NUMBER})%",
    ]
    error_patterns = [r"^Error:", r"^\[?ERROR\]?\b", r"^Traceback \(most recent call last\)", r"hou\.OperationFailed"]

    def command(self, args: HoudiniArgs, chunk: Chunk) -> CommandLine:
        start, end, step = frame_args(chunk, "Houdini")
        if args.resolved_mode() == "husk":
            argv = [app("husk"), "--frame", str(start), "--frame-count", str(chunk.count), "--frame-inc", str(step)]
            if chunk.cores:
                argv += ["--threads", str(chunk.cores)]
            if args.output:
                argv += ["-o", houdini_pattern(args.output)]
            if args.renderer:
                argv += ["--renderer", args.renderer]
            if args.camera:
                argv += ["--camera", args.camera]
            if args.width and args.height:
                argv += ["--res", str(args.width), str(args.height)]
            argv += ["--verbose", "a2", *args.extra_args, args.scene]
        else:
            if not args.driver:
                raise TemplateError("houdini: no driver (ROP) to render")
            output = houdini_pattern(args.output) if args.output else None
            code = _HYTHON.format(scene=args.scene, driver=args.driver, start=start, end=end, step=step,
                                  output=output, camera=args.camera, width=args.width, height=args.height)
            argv = [app("hython"), "-c", code, *args.extra_args]
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))


_HYTHON = """\
import hou
hou.hipFile.load({scene!r}, suppress_save_prompt=True, ignore_load_warnings=True)
rop = hou.node({driver!r})
if rop is None:
    raise SystemExit('Error: no ROP ' + {driver!r})
kwargs = dict(frame_range=({start}, {end}, {step}), verbose=True, output_progress=True)
output = {output!r}
if output:
    kwargs['output_file'] = output
if {width!r} and {height!r}:
    kwargs['res'] = ({width!r}, {height!r})
camera = {camera!r}
if camera and rop.parm('camera') is not None:
    rop.parm('camera').set(camera)
rop.render(**kwargs)
"""
