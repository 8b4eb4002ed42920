"""Frame padding in output patterns: where a frame number goes in `/renders/shot.####.exr`.

Three spellings mean "the frame number here": `#` (one digit each: `####` is four), `@` (the same,
as Houdini and Katana write it) and printf's `%04d` (`%d` is unpadded). `PADDING` is the one
definition of them; expanding a pattern for a frame, splitting it around its padding and rewriting
it in another spelling (the one an application reads) all match with it, so they always agree on
what counts as padding. Pure: no I/O.
"""

from __future__ import annotations

import re

#: One run of padding: `#` signs, `@` signs, or a printf `%d` with an optional width (`%04d`, `%4d`).
PADDING = re.compile(r"#+|@+|%0?(\d*)d")


class NoPadding(ValueError):
    """An output pattern without frame padding where one is needed."""


def padding_width(match: re.Match[str]) -> int:
    """The number of digits a run of padding stands for: one per `#` or `@`, the width of `%0Nd`
    (at least one: `%d` is unpadded)."""
    text = match.group(0)
    return len(text) if text[0] in "#@" else max(int(match.group(1) or 1), 1)


def has_padding(pattern: str) -> bool:
    return PADDING.search(pattern) is not None


def pad_frame(frame: int, width: int) -> str:
    """A frame number with `width` digits; a negative frame keeps its sign in front (`-001`)."""
    return f"-{abs(frame):0{max(width - 1, 0)}d}" if frame < 0 else f"{frame:0{width}d}"


def expand_padding(pattern: str, frame: int) -> str:
    """Put a frame number into an output pattern: `####` (4 digits per #), `@` (1 per @), `%04d`."""
    return PADDING.sub(lambda match: pad_frame(frame, padding_width(match)), pattern)


def split_padding(pattern: str) -> tuple[str, int, str]:
    """`/r/shot.####.exr` -> (`/r/shot.`, 4, `.exr`): what comes before the frame number, its width, after."""
    match = PADDING.search(pattern)
    if not match:
        raise NoPadding(f"output {pattern!r} has no frame padding: write it like shot.####.exr")
    return pattern[:match.start()], padding_width(match), pattern[match.end():]


def to_hashes(pattern: str) -> str:
    """An output pattern with its padding written as `#` (what Blender, Houdini and Nuke read)."""
    return PADDING.sub(lambda match: "#" * padding_width(match), pattern)


def to_printf(pattern: str) -> str:
    """An output pattern with its padding written as `%04d` (what ffmpeg, Nuke and V-Ray read)."""
    return PADDING.sub(lambda match: match.group(0) if match.group(0)[0] == "%"
                       else f"%0{padding_width(match)}d", pattern)

