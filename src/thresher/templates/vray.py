"""V-Ray standalone: `vray -sceneFile=s.vrscene -imgFile=/r/shot.exr -frames=1-10 -display=0 -autoClose=1`.

V-Ray inserts the frame number (`.0001`) before the extension of -imgFile in animations, so the output
pattern is written `/r/shot.####.exr`.

V-Ray reads `-frames=b0[-e0[,s0]]{;bn[-en[,sn]]}`: a comma is a step and `;` separates items, so a stepped
chunk is `1-9,2` and a frame list is `1;4;7` (never the `1,3,5` of other applications).

`-numThreads=N` gives V-Ray the task's reserved cores.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import split_padding
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.common import NUMBER, SizedArgs
from thresher.templates.outputs import frame_outputs


class VrayArgs(SizedArgs):
    @field_validator("output")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            before, width, after = split_padding(value)
            if width != 4 or not before.endswith(".") or not re.fullmatch(r"\.[A-Za-z0-9]+", after):
                raise ValueError("V-Ray writes name.####.ext: write the output like /renders/shot.####.exr")
        return value


def vray_frames(chunk: Chunk) -> str:
    """A chunk's frames as V-Ray's -frames value: `5`, `1-10`, `1-9,2` or `1;4;7`."""
    if chunk.count == 1:
        return str(chunk.start)
    if chunk.step > 0 and chunk.start >= 0:
        return f"{chunk.start}-{chunk.end}" + (f",{chunk.step}" if chunk.step != 1 else "")
    return ";".join(str(frame) for frame in chunk.frame_list())


class VrayTemplate(Template):
    name = "vray"
    default_service = "vray"
    description = "V-Ray standalone: scene (.vrscene), output (name.####.ext), width/height, camera."
    Args = VrayArgs
    writes_files = True
    apps = {"vray": {"linux": "vray", "windows": "C:/Program Files/Chaos Group/V-Ray/V-Ray Standalone/bin/vray.exe",
                     "darwin": "vray"}}
    progress_patterns = [r"Starting frame (?P<frame>-?\d+)", rf"Rendering image\.*:\s*(?P<pct>{NUMBER})%"]
    error_patterns = [r"\berror:\s", r"\bERROR:\s", r"Cannot load scene"]

    def command(self, args: VrayArgs, chunk: Chunk) -> CommandLine:
        frames = vray_frames(chunk)
        argv = [app("vray"), f"-sceneFile={args.scene}"]
        if args.output:
            before, _, after = split_padding(args.output)
            argv.append(f"-imgFile={before.rstrip('.')}{after}")
        if args.width:
            argv.append(f"-imgWidth={args.width}")
        if args.height:
            argv.append(f"-imgHeight={args.height}")
        if args.camera:
            argv.append(f"-camera={args.camera}")
        if chunk.cores:
            argv.append(f"-numThreads={chunk.cores}")
        argv += [f"-frames={frames}", "-display=0", "-autoClose=1", *args.extra_args]
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
