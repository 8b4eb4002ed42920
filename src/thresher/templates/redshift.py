"""Redshift command line: `redshiftCmdLine scene.0001.rs -oip /renders -gpu 0`.

Redshift renders exported .rs proxy files, usually one per frame (`scene.####.rs`), one file per run.
`output` is the pattern the scene writes (checked afterwards); `output_dir` overrides the image path.

Threads: Redshift renders on GPUs; no CPU thread option of redshiftCmdLine could be confirmed, so the
task's reserved cores reach it through the thread environment the agent sets (`agent/child.py`) only.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from thresher.model.frames import Chunk
from thresher.model.padding import expand_padding, has_padding
from thresher.templates.base import CommandLine, Template, TemplateError, app
from thresher.templates.common import AppArgs
from thresher.templates.outputs import frame_outputs


class RedshiftArgs(AppArgs):
    output_dir: str | None = Field(None, description="image folder override (-oip)")
    gpus: list[int] = Field(default_factory=list, description="GPU devices to use (-gpu N each)")


class RedshiftTemplate(Template):
    name = "redshift"
    default_service = "redshift"
    description = "Redshift command line (redshiftCmdLine): scene (.rs, #### per frame), output, output_dir, gpus."
    Args = RedshiftArgs
    writes_files = True
    apps = {"redshiftCmdLine": {"linux": "/usr/redshift/bin/redshiftCmdLine",
                                "windows": "C:/ProgramData/Redshift/bin/redshiftCmdLine.exe",
                                "darwin": "/Applications/redshift/bin/redshiftCmdLine"}}
    progress_patterns = [r"Block (?P<done>\d+)/(?P<total>\d+)"]
    error_patterns = [r"^\s*ERROR\b", r"\[Redshift\] ERROR", r"License (?:error|acquisition failed)"]

    def layer_problems(self, args: RedshiftArgs, layer: Any) -> list[tuple[str, str]]:
        """GPUs named in `gpus` on a layer that reserves none: the agent hides the node's GPUs from the task."""
        if args.gpus and not layer.resources.gpus:
            return [("args.gpus", "gpus names GPU devices but the layer reserves none, so its tasks see no GPU: "
                                  "set resources.gpus (like resources: {gpus: 1})")]
        return []

    def command(self, args: RedshiftArgs, chunk: Chunk) -> CommandLine:
        if chunk.count != 1:
            raise TemplateError("redshiftCmdLine renders one .rs file per run: use chunk 1 with the redshift template")
        scene = expand_padding(args.scene, chunk.start) if has_padding(args.scene) else args.scene
        argv = [app("redshiftCmdLine"), scene]
        if args.output_dir:
            argv += ["-oip", args.output_dir]
        for gpu in args.gpus:
            argv += ["-gpu", str(gpu)]
        argv += list(args.extra_args)
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
