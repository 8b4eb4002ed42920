"""ffmpeg: encode a rendered image sequence into a movie, as one task over the layer's whole range.

`ffmpeg -y -framerate 24 -start_number S -i /r/shot.%04d.png -frames:v N -c:v libx264 -pix_fmt yuv420p
/r/shot.mp4`. Put it in a layer that depends on the render layer. `-threads N` (an output option, so the
encoder's) gives it the task's reserved cores.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import to_printf
from thresher.templates.base import CommandLine, Template, TemplateError, app
from thresher.templates.common import require_padding


class FfmpegArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    input: str = Field(..., description="the rendered sequence, e.g. /renders/sh010.####.png")
    output: str = Field(..., min_length=1, description="the movie file, e.g. /renders/sh010.mp4")
    fps: float = Field(24, gt=0, le=1000)
    codec: str = Field("libx264", min_length=1, description="video codec (-c:v)")
    pix_fmt: str | None = Field("yuv420p", description="pixel format (-pix_fmt)")
    crf: int | None = Field(None, ge=0, le=63, description="quality for x264/x265 (-crf)")
    extra_args: list[str] = Field(default_factory=list, description="more output options")
    executable: str | None = None

    @field_validator("input")
    @classmethod
    def _input(cls, value: str) -> str:
        return require_padding(value, "input") or value


class FfmpegTemplate(Template):
    name = "ffmpeg"
    description = "Encode a rendered sequence into a movie (one task over all frames): input (####), output, fps, codec."
    Args = FfmpegArgs
    apps = {"ffmpeg": {"linux": "ffmpeg", "windows": "ffmpeg.exe", "darwin": "ffmpeg"}}
    whole_range = True
    ranges_only = True
    progress_patterns = [r"^frame=\s*(?P<frames_done>\d+)"]
    error_patterns = [r"Conversion failed!", r"^Error (?:opening|while)", r"Invalid data found when processing input"]

    def layer_warnings(self, args: FfmpegArgs, layer: Any) -> list[tuple[str, str]]:
        found = super().layer_warnings(args, layer)
        if "frames" not in getattr(layer, "model_fields_set", {"frames"}):
            found.append(("", "ffmpeg: the layer gives no frames, so the movie is frame 1 alone: give the "
                          "rendered frames, like frames: 1-240"))
        return found

    def command(self, args: FfmpegArgs, chunk: Chunk) -> CommandLine:
        if chunk.step not in (1, -1) and chunk.count > 1:
            raise TemplateError("ffmpeg encodes consecutive frames: give the layer a plain range like 1-100")
        argv = [app("ffmpeg"), "-y", "-hide_banner", "-nostdin", "-framerate", f"{args.fps:g}",
                "-start_number", str(chunk.start), "-i", to_printf(args.input), "-frames:v", str(chunk.count),
                "-c:v", args.codec]
        if args.pix_fmt:
            argv += ["-pix_fmt", args.pix_fmt]
        if args.crf is not None:
            argv += ["-crf", str(args.crf)]
        if chunk.cores:
            argv += ["-threads", str(chunk.cores)]
        argv += [*args.extra_args, args.output]
        return CommandLine(argv=argv, outputs=[args.output], progress_patterns=list(self.progress_patterns),
                           error_patterns=list(self.error_patterns))
