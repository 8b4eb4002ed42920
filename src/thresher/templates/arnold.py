"""Arnold's `kick`: `kick -i scene.0001.ass -o /r/shot.0001.exr -r W H -c camera -dw -dp -v 2`.

Scenes are usually exported one .ass file per frame (`scene.####.ass`); kick renders one file per run,
so a padded scene needs chunks of one frame. A scene without padding is rendered once per frame with
`-set options.frame N`.

`-t N` gives kick the task's reserved cores, unless the layer sets `threads` itself.
"""

from __future__ import annotations

from pydantic import Field

from thresher.model.frames import Chunk
from thresher.model.padding import expand_padding, has_padding
from thresher.templates.base import CommandLine, Template, TemplateError, app
from thresher.templates.common import NUMBER, SizedArgs
from thresher.templates.outputs import frame_outputs


class ArnoldArgs(SizedArgs):
    threads: int | None = Field(None, ge=0, le=4096, description="render threads (-t; 0 = all); default: the "
                                                                "cores the layer reserves")
    verbosity: int = Field(2, ge=0, le=6, description="log verbosity (-v)")


class ArnoldTemplate(Template):
    name = "arnold"
    default_service = "arnold"
    description = "Arnold standalone (kick): scene (.ass, #### per frame), output (####), width/height, camera."
    Args = ArnoldArgs
    writes_files = True
    apps = {"kick": {"linux": "kick", "windows": "C:/solidangle/Arnold/bin/kick.exe", "darwin": "kick"}}
    progress_patterns = [rf"\|\s*(?P<pct>{NUMBER})% done"]
    error_patterns = [r"\bERROR\s+\|", r"^\[kick\] (?:error|ERROR)", r"\bcan't open\b"]

    def command(self, args: ArnoldArgs, chunk: Chunk) -> CommandLine:
        if chunk.count != 1:
            raise TemplateError("kick renders one frame per run: use chunk 1 with the arnold template")
        frame = chunk.start
        scene = expand_padding(args.scene, frame) if has_padding(args.scene) else args.scene
        argv = [app("kick"), "-i", scene]
        if not has_padding(args.scene):
            argv += ["-set", "options.frame", str(frame)]
        if args.output:
            argv += ["-o", expand_padding(args.output, frame)]
        if args.width and args.height:
            argv += ["-r", str(args.width), str(args.height)]
        if args.camera:
            argv += ["-c", args.camera]
        threads = args.threads if args.threads is not None else chunk.cores or None
        if threads is not None:
            argv += ["-t", str(threads)]
        argv += ["-dw", "-dp", "-v", str(args.verbosity), *args.extra_args]
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
