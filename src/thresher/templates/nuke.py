"""Nuke: `nuke -x -X Write1 -F 1-10x2 script.nk` (a frame list as one -F per frame).

The output pattern is the one the Write node writes; Thresher does not change it, it checks it.
`-m N` gives Nuke the task's reserved cores, unless the layer sets `threads` itself.
"""

from __future__ import annotations

from pydantic import Field

from thresher.model.frames import Chunk
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.common import AppArgs, ranges_text
from thresher.templates.outputs import frame_outputs


class NukeArgs(AppArgs):
    write: list[str] = Field(default_factory=list, description="Write nodes to execute (-X); default: all")
    interactive_license: bool = Field(False, description="use an interactive licence (-i)")
    threads: int | None = Field(None, ge=1, le=4096, description="render threads (-m); default: the "
                                                                "cores the layer reserves")


class NukeTemplate(Template):
    name = "nuke"
    default_service = "nuke"
    description = "Nuke script render (nuke -x -F): scene (.nk), output (what the Write node writes), write nodes."
    Args = NukeArgs
    writes_files = True
    apps = {"nuke": {"linux": "nuke", "windows": "C:/Program Files/Nuke15.0v1/Nuke15.0.exe",
                     "darwin": "/Applications/Nuke15.0v1/Nuke15.0v1.app/Contents/MacOS/Nuke15.0"}}
    progress_patterns = [r"^Frame (?P<frame>-?\d+) \(\d+ of \d+\)",
                         r"^Writing \S*?(?P<frame_done>-?\d+)\.[A-Za-z0-9]+ took"]
    error_patterns = [r"^(?:ERROR|Error):", r": Error writing", r"^Traceback \(most recent call last\)",
                      r"^Nuke exited with error"]

    def command(self, args: NukeArgs, chunk: Chunk) -> CommandLine:
        argv = [app("nuke"), "-x"]
        if args.interactive_license:
            argv.append("-i")
        threads = args.threads or chunk.cores
        if threads:
            argv += ["-m", str(threads)]
        for node in args.write:
            argv += ["-X", node]
        if chunk.step:
            argv += ["-F", ranges_text(chunk.start, chunk.end, abs(chunk.step))]
        else:
            for frame in chunk.frame_list():
                argv += ["-F", str(frame)]
        argv += [*args.extra_args, args.scene]
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
