"""Blender: `blender -b scene.blend [-S scene] [-E engine] [--python-expr setup] -o out.#### -F PNG -x 0
[extra_args] -s S -e E -j J -a [-- script args] [--cycles-device CUDA]`.

Overrides that have no command-line flag (resolution, camera, samples, a tile's border) go through one
short `--python-expr` that runs after the file is loaded and before the frames render.

`-t N` gives Cycles the task's reserved cores (Blender reads its options in order, so it comes before `-a`;
a `-t` in extra_args comes later and wins). `denoise: false` turns denoising off in the scene and its view
layers, for Blender builds without OpenImageDenoise (Debian's); the default leaves the file's setting.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import to_hashes
from thresher.templates.base import CommandLine, Template, app
from thresher.templates.common import SizedArgs, frames_list
from thresher.templates.outputs import frame_outputs
from thresher.templates.tiles import output_for, tile_of, tile_region

# `eevee` is chosen on the node when the frames render: Blender up to 4.1 calls it BLENDER_EEVEE, 4.2 renamed
# it BLENDER_EEVEE_NEXT, and `-E` with a name the node's Blender lacks stops the render ("Error: engine not
# found"). So `eevee` tries BLENDER_EEVEE and falls back to BLENDER_EEVEE_NEXT; explicit names pass as they are.
EEVEE_AUTO = "EEVEE"
ENGINES = {"cycles": "CYCLES", "eevee": EEVEE_AUTO, "blender_eevee": "BLENDER_EEVEE",
           "eevee_next": "BLENDER_EEVEE_NEXT", "blender_eevee_next": "BLENDER_EEVEE_NEXT",
           "workbench": "BLENDER_WORKBENCH",
           "blender_workbench": "BLENDER_WORKBENCH"}
STITCH_FORMATS = {"PNG", "JPEG", "TIFF", "TARGA", "TARGA_RAW", "BMP", "WEBP"}  # what Pillow reads
FORMATS = {".png": "PNG", ".exr": "OPEN_EXR", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
           ".tga": "TARGA", ".bmp": "BMP", ".hdr": "HDR", ".webp": "WEBP"}


class BlenderArgs(SizedArgs):
    engine: str | None = Field(None, description="cycles, eevee (BLENDER_EEVEE or BLENDER_EEVEE_NEXT, whichever the "
                                                 "node's Blender has), workbench, or an exact name like "
                                                 "blender_eevee_next (default: as saved in the file)")
    device: Literal["CPU", "GPU"] = Field("CPU", description="Cycles device")
    gpu_backend: Literal["CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"] = Field("CUDA", description="Cycles GPU API")
    samples: int | None = Field(None, ge=1, le=1_000_000, description="render samples (Cycles or EEVEE)")
    scene_name: str | None = Field(None, min_length=1, description="the Blender scene to render (-S)")
    denoise: bool | None = Field(None, description="Cycles denoising: false turns it off (for Blender builds "
                                                   "without OpenImageDenoise, like Debian's), true on; default: "
                                                   "as saved in the file")
    format: str | None = Field(None, description="Blender file format (PNG, OPEN_EXR...); default from the "
                                                 "output's extension")

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.strip().lower()
        if key not in ENGINES:
            raise ValueError(f"unknown engine {value!r}: use cycles, eevee or workbench")
        return ENGINES[key]

    @field_validator("device", "format", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def _setup_code(args: BlenderArgs, chunk: Chunk) -> str | None:
    lines: list[str] = []
    if args.engine == EEVEE_AUTO:
        lines += ["try:", "    r.engine = 'BLENDER_EEVEE'", "except TypeError:  # Blender 4.2's name",
                  "    r.engine = 'BLENDER_EEVEE_NEXT'"]
    if args.width or args.height:
        if args.width:
            lines.append(f"r.resolution_x = {args.width}")
        if args.height:
            lines.append(f"r.resolution_y = {args.height}")
        lines.append("r.resolution_percentage = 100")
    if args.camera:
        lines.append(f"s.camera = bpy.data.objects[{args.camera!r}]")
    if args.samples:
        lines.append(f"s.cycles.samples = {args.samples}")
        lines.append(f"s.eevee.taa_render_samples = {args.samples}")
    if args.device == "GPU":
        lines.append("s.cycles.device = 'GPU'")
    if args.denoise is not None:
        # the scene's switch decides; each view layer has its own, which Blender ANDs with it
        lines += [f"s.cycles.use_denoising = {args.denoise}", "for layer in s.view_layers:",
                  f"    layer.cycles.use_denoising = {args.denoise}"]
    tile = tile_of(chunk)
    if tile and args.width and args.height:
        left, top, right, bottom = tile_region(args.width, args.height, *tile)
        w, h = args.width, args.height
        # Blender's border counts y from the bottom; keep the full frame size so tiles stitch by position
        lines += ["r.use_border = True", "r.use_crop_to_border = False",
                  f"r.border_min_x = {left / w!r}", f"r.border_max_x = {right / w!r}",
                  f"r.border_min_y = {(h - bottom) / h!r}", f"r.border_max_y = {(h - top) / h!r}"]
    if not lines:
        return None
    return "\n".join(["import bpy", "s = bpy.context.scene", "r = s.render", *lines])


def _split_at_double_dash(extra: list[str]) -> tuple[list[str], list[str] | None]:
    """extra_args -> (Blender's options, what follows `--` for Python scripts, or None without `--`)."""
    if "--" not in extra:
        return list(extra), None
    at = extra.index("--")
    return list(extra[:at]), list(extra[at + 1:])


class BlenderTemplate(Template):
    name = "blender"
    default_service = "blender"
    description = ("Blender (Cycles, EEVEE, Workbench) in background mode: scene, output (####), engine, "
                   "device CPU/GPU (GPU needs resources.gpus), samples, denoise, width/height, camera, scene_name; "
                   "renders tiles through a border.")
    Args = BlenderArgs
    writes_files = True
    apps = {"blender": {"linux": "blender", "windows": "C:/Program Files/Blender Foundation/Blender/blender.exe",
                        "darwin": "/Applications/Blender.app/Contents/MacOS/Blender"}}
    tiles = True
    progress_patterns = [
        r"^Fra:(?P<frame>-?\d+) .*\| Sample (?P<done>\d+)/(?P<total>\d+)",
        r"^Fra:(?P<frame>-?\d+) .*Rendering (?P<done>\d+) / (?P<total>\d+) samples",
        r"^Fra:(?P<frame>-?\d+) ",
    ]
    # `Error: engine not found 'BLENDER_EEVEE_NEXT'` (an engine the node's Blender lacks) is an `Error: ` line;
    # `Error: Not freed memory blocks: ...`, a leak report some builds print on exit, is not a failed render
    error_patterns = [r"^Error: (?!Not freed memory blocks)", r"^Traceback \(most recent call last\)", r"cannot save:", r"^Unable to open"]

    def command(self, args: BlenderArgs, chunk: Chunk) -> CommandLine:
        argv = [app("blender"), "-b", args.scene]
        if chunk.cores:
            argv += ["-t", str(chunk.cores)]
        if args.scene_name:
            argv += ["-S", args.scene_name]
        if args.engine and args.engine != EEVEE_AUTO:
            argv += ["-E", args.engine]
        setup = _setup_code(args, chunk)
        if setup:
            argv += ["--python-expr", setup]
        output = output_for(chunk, args.output)
        if output:
            fmt = args.format or FORMATS.get(os.path.splitext(output)[1].lower())
            argv += ["-o", to_hashes(output)]
            if fmt:
                argv += ["-F", fmt]
            argv += ["-x", "0"]
        # Blender reads its own options up to `--` and leaves the rest to Python scripts: extra_args before
        # the frame arguments (-a renders on the spot), their `--` part after them.
        blender_args, script_args = _split_at_double_dash(args.extra_args)
        argv += blender_args
        if chunk.step:
            argv += ["-s", str(chunk.start), "-e", str(chunk.end), "-j", str(abs(chunk.step)), "-a"]
        else:
            argv += ["-f", frames_list(chunk.frame_list())]
        if script_args is not None or args.device == "GPU":
            argv += ["--", *(script_args or [])]
        if args.device == "GPU":
            argv += ["--cycles-device", args.gpu_backend]
        return CommandLine(argv=argv, outputs=frame_outputs(output, chunk),
                           progress_patterns=list(self.progress_patterns), error_patterns=list(self.error_patterns))

    def layer_problems(self, args: BlenderArgs, layer: Any) -> list[tuple[str, str]]:
        """`device: GPU` on a layer that reserves no GPU: the agent hides the node's GPUs from such a task
        (CUDA_VISIBLE_DEVICES=""), so it would fail or crawl on the CPU."""
        if args.device == "GPU" and not layer.resources.gpus:
            return [("args.device", "device GPU needs a GPU reserved for each task: set resources.gpus (like "
                                    "resources: {gpus: 1}), or use device CPU")]
        return []

    def tile_problem(self, args: BlenderArgs) -> tuple[str, str] | None:
        if args.format and args.format not in STITCH_FORMATS:
            return "args.format", (f"tiles are stitched with Pillow, which cannot read {args.format} images: render "
                                   f"tiled layers as {', '.join(sorted(STITCH_FORMATS))}, or leave tiles out")
        return super().tile_problem(args)
