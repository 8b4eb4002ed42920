"""Katana batch: `katana --batch --katana-file scene.katana --render-node Render -t 1,3,5`.

Katana's `-t` reads ranges (`1-10`) and lists, but not `x` steps: a stepped chunk is written as a list.

Threads: Katana's batch mode documents no thread option (and its `-t` is the frames), so the task's
reserved cores reach it and its renderer through the thread environment the agent sets (OMP_NUM_THREADS
and friends, `agent/child.py`) only; a renderer's own setting goes in extra_args or the scene.
"""

from __future__ import annotations

from pydantic import Field

from thresher.model.frames import Chunk
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.common import NUMBER, AppArgs, frames_list
from thresher.templates.outputs import frame_outputs


class KatanaArgs(AppArgs):
    render_node: str = Field("Render", min_length=1, description="the Render node to render (--render-node)")


def katana_frames(chunk: Chunk) -> str:
    if chunk.step in (1, -1) and chunk.count > 1:
        return f"{chunk.start}-{chunk.end}"
    return frames_list(chunk.frame_list())


class KatanaTemplate(Template):
    name = "katana"
    default_service = "katana"
    description = "Katana batch render: scene (.katana), render_node, output (what the Render node writes)."
    Args = KatanaArgs
    writes_files = True
    apps = {"katana": {"linux": "katana", "windows": "C:/Program Files/Katana6.0v1/bin/katanaBin.exe",
                       "darwin": "katana"}}
    progress_patterns = [r"[Rr]endering frame (?P<frame>-?\d+)", rf"(?P<pct>{NUMBER})% done"]
    error_patterns = [r"\[ERROR", r"^ERROR\b", r"Render failed", r"^Traceback \(most recent call last\)"]

    def command(self, args: KatanaArgs, chunk: Chunk) -> CommandLine:
        argv = [app("katana"), "--batch", "--katana-file", args.scene, "--render-node", args.render_node,
                "-t", katana_frames(chunk), *args.extra_args]
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
