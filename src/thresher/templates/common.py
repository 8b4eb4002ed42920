"""What the application templates share: the argument names every renderer agrees on.

`scene` (the input file), `output` (the output pattern with `####`), `width` / `height` / `camera` where
the application takes them, `extra_args` for anything else, and `executable` to point one layer at
another build of the application than the node's default.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from thresher.model.frames import Chunk
from thresher.model.padding import has_padding
from thresher.templates.base import TemplateError

NUMBER = r"-?\d+(?:\.\d+)?"


class AppArgs(BaseModel):
    """Arguments common to the application templates."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    scene: str = Field(..., min_length=1, description="the input file (scene, project, script)")
    output: str | None = Field(None, description="output pattern with frame padding, e.g. /renders/sh010.####.exr; "
                                                 "every frame of a task must exist and be non-empty afterwards")
    extra_args: list[str] = Field(default_factory=list, description="more arguments, passed as they are")
    executable: str | None = Field(None, description="this layer's executable instead of the node's default")

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("output is empty: leave it out or give a pattern like /renders/shot.####.exr")
        return value


class SizedArgs(AppArgs):
    width: int | None = Field(None, ge=1, le=65536, description="image width in pixels")
    height: int | None = Field(None, ge=1, le=65536, description="image height in pixels")
    camera: str | None = Field(None, min_length=1, description="render through this camera")


def require_padding(value: str | None, what: str = "output") -> str | None:
    if value is not None and not has_padding(value):
        raise ValueError(f"{what} {value!r} has no frame padding: write it like shot.####.exr")
    return value


def frames_list(frames: list[int]) -> str:
    return ",".join(str(f) for f in frames)


def frame_args(chunk: Chunk, ranges_only_app: str) -> tuple[int, int, int]:
    """(start, end, step) of a chunk, for applications that take a range and no frame list."""
    if chunk.step == 0:
        raise TemplateError(f"{ranges_only_app} renders frame ranges only; frames {chunk.frames} are not one range")
    return chunk.start, chunk.end, abs(chunk.step) or 1


def ranges_text(start: int, end: int, step: int) -> str:
    return str(start) if start == end else f"{start}-{end}" + (f"x{step}" if step != 1 else "")


def valid_name(value: str, what: str) -> str:
    if not re.match(r"^[A-Za-z0-9_:/.\-|]+$", value):
        raise ValueError(f"{what} {value!r}: use letters, digits and _ : / . - |")
    return value
