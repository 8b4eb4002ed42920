"""The tile assembly: `python -m thresher.tools.stitch` puts a tiled layer's tiles back into frames.

The server adds a layer with this template after every layer that has `tiles`; it depends on the tile
layer, and layers that depended on the tile layer depend on it instead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from thresher.model.frames import Chunk
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.outputs import frame_outputs


class StitchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: str = Field(..., description="the frame pattern the tiles were rendered for (####)")
    tiles: tuple[int, int] = Field(..., description="[x, y] tiles per frame")
    size: tuple[int, int] = Field(..., description="[width, height] of the whole frame in pixels")
    keep_tiles: bool = Field(False, description="keep the tile files after stitching")
    executable: str | None = None


class StitchTemplate(Template):
    name = "stitch"
    description = "Stitch the tiles of a tiled layer into whole frames (added by the server for tiled layers)."
    Args = StitchArgs
    apps = {"python": {"linux": "python3", "windows": "python", "darwin": "python3"}}
    progress_patterns = [r"^stitched frame \S+ \((?P<done>\d+)/(?P<total>\d+)\)"]
    error_patterns = [r"^stitch: error"]

    def command(self, args: StitchArgs, chunk: Chunk) -> CommandLine:
        argv = [app("python"), "-m", "thresher.tools.stitch", "--output", args.output,
                "--tiles", f"{args.tiles[0]}x{args.tiles[1]}", "--size", f"{args.size[0]}x{args.size[1]}",
                "--frames", chunk.frames]
        if not args.keep_tiles:
            argv.append("--remove-tiles")
        return CommandLine(argv=argv, outputs=frame_outputs(args.output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))
