"""Frame sets in VFX notation and their chunking into tasks.

Parsing and validation go through `fileseq`, the library the field uses, so `1-100x5`, `1,5,10-20`,
`-10--1`, `1-100y5` and `1-100:5` mean here what they mean in every pipeline tool. Chunking walks the
ranges instead of expanding every frame, so a million-frame layer costs one chunk object per task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Iterable, Iterator, Sequence

import fileseq

#: The largest frame count a layer may hold (fileseq refuses more than this anyway).
MAX_FRAMES = 10_000_000
#: Frame numbers are stored in 64-bit columns (tasks.frame_start/frame_end), steps in 32-bit ones.
MAX_FRAME_NUMBER = 2**63 - 1
MAX_STEP = 2**31 - 1

_SIMPLE_RANGE = re.compile(r"^\s*(-?\d+)(?:\s*-\s*(-?\d+)(?:x(\d+))?)?\s*$")
_STEPPED_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*([xy:])\s*(-?\d+)\s*$")


def holds(frames: str, frame: int) -> bool:
    """Whether a task's frame string (a chunk's `frames`) includes `frame`; false for one that cannot be read."""
    try:
        return frame in fileseq.FrameSet(frames)
    except (fileseq.ParseException, ValueError):
        return False


class FrameSpecError(ValueError):
    """A frame spec that cannot be read; the message says what is wrong in plain words."""


@dataclass(frozen=True)
class Chunk:
    """The frames of one task.

    `step` is the distance between frames when they form one arithmetic run (start..end by step),
    else 0, in which case only `frames` (a fileseq string) describes them exactly.

    `part` says which variant of the frames the task renders, when a layer has several per chunk: a tile
    (`{"tile": [col, row], "tiles": [x, y]}`) or a wedge value (`{"wedge": value, "wedge_index": i}`).

    `cores` is what the task reserved (`resources.cores`), so a template can tell its application to use
    that many threads and no more; 0 when not known (the application then picks). `layer_frames` is the
    (first, last) frame of the whole layer, for applications whose time runs over the animation (POV-Ray's
    clock from 0 to 1); None when not known.
    """

    index: int
    frames: str
    start: int
    end: int
    step: int
    count: int
    part: dict[str, Any] | None = None
    cores: int = 0
    layer_frames: tuple[int, int] | None = None

    def frame_list(self) -> list[int]:
        if self.step:
            return list(range(self.start, self.end + (1 if self.step > 0 else -1), self.step))
        return [int(f) for f in fileseq.FrameSet(self.frames)]


def parse_frames(spec: str) -> fileseq.FrameSet:
    """Read a frame spec or raise FrameSpecError with a short, human message."""
    if not isinstance(spec, str) or not spec.strip():
        raise FrameSpecError("frame spec is empty")
    text = spec.strip()
    if "." in text or "#" in text or "@" in text:
        raise FrameSpecError(f"{spec!r} is not a frame spec: use whole frames like 1-100, 1-100x5 or 1,5,10-20")
    _check_numbers(text)
    for part in text.split(","):
        match = _SIMPLE_RANGE.match(part)
        if match and match.group(3) is not None and int(match.group(3)) == 0:
            raise FrameSpecError(f"{part.strip()!r}: the step after 'x' must be at least 1")
        if match and match.group(2) is not None:
            count = abs(int(match.group(2)) - int(match.group(1))) // int(match.group(3) or 1) + 1
            if count > MAX_FRAMES:
                raise FrameSpecError(f"{part.strip()!r} holds {count:,} frames; the limit is {MAX_FRAMES:,}")
    try:
        frame_set = fileseq.FrameSet(text)
    except fileseq.MaxSizeException:
        raise FrameSpecError(f"{spec!r} holds more than {MAX_FRAMES:,} frames") from None
    except (fileseq.ParseException, ValueError) as exc:
        first_line = str(exc).split(":", 1)[-1].strip().splitlines()[0] if str(exc) else ""
        hint = "expected forms like 1-100, 1-100x5, 1,5,10-20, -10--1, 1-100y5 or 1-100:5"
        reason = first_line if first_line and "did not match" not in first_line else hint
        raise FrameSpecError(f"cannot read frame spec {spec!r}: {reason.replace('chunk', 'step')}") from None
    if len(frame_set) == 0:
        raise FrameSpecError(f"frame spec {spec!r} holds no frames")
    if len(frame_set) > MAX_FRAMES:
        raise FrameSpecError(f"{spec!r} holds {len(frame_set):,} frames; the limit is {MAX_FRAMES:,}")
    return frame_set


def _check_numbers(text: str) -> None:
    """Refuse numbers the database cannot hold, and steps that would make fileseq loop for long
    (`1-100:1000000` walks every step from a million down to one)."""
    for number in re.findall(r"\d+", text):
        if int(number) > MAX_FRAME_NUMBER:
            raise FrameSpecError(f"frame {number} is out of range: frame numbers go up to {MAX_FRAME_NUMBER:,}")
    for part in text.split(","):
        match = _STEPPED_RANGE.match(part)
        if not match:
            continue
        start, end, kind, step = int(match.group(1)), int(match.group(2)), match.group(3), int(match.group(4))
        if step > MAX_STEP:
            raise FrameSpecError(f"{part.strip()!r}: the step after {kind!r} is out of range "
                                 f"(at most {MAX_STEP:,})")
        if kind == ":" and step > abs(end - start) + 1:
            raise FrameSpecError(f"{part.strip()!r}: the step after ':' cannot be larger than the range "
                                 f"({abs(end - start) + 1} frames)")


def frame_count(spec: str) -> int:
    return len(parse_frames(spec))


def _arithmetic_parts(text: str) -> list[tuple[int, int, int]] | None:
    """The spec as (start, end, step) runs when every part is a plain range, else None."""
    parts = []
    _check_numbers(text)
    for part in text.split(","):
        match = _SIMPLE_RANGE.match(part)
        if not match:
            return None
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3) or 1)
        if step <= 0:
            return None
        if end < start:
            step = -step
        last = start + ((end - start) // step) * step
        parts.append((start, last, step))
    spans = sorted((min(s, e), max(s, e)) for s, e, _ in parts)
    if any(spans[i][1] >= spans[i + 1][0] for i in range(len(spans) - 1)):
        return None  # overlapping parts: fileseq drops the repeats, so let it order the frames
    return parts


def _compact(frames: list[int]) -> tuple[str, int]:
    """A fileseq string for a frame list and its step when it is one arithmetic run (else 0)."""
    if len(frames) == 1:
        return str(frames[0]), 1
    step = frames[1] - frames[0]
    if step != 0 and abs(step) <= MAX_STEP and all(b - a == step for a, b in pairwise(frames)):
        return (f"{frames[0]}-{frames[-1]}" + (f"x{abs(step)}" if abs(step) != 1 else "")), step
    return fileseq.FrameSet.framesToFrameRange(frames, sort=False, compress=False), 0


def joined_frames(specs: Iterable[str]) -> str:
    """Every frame of these specs as one fileseq string, in order and compressed (`1`, `2` and `5-6` are
    `1-2,5-6`): a wrangler reads which frames, not how they were chunked or tiled."""
    frames: set[int] = set()
    for spec in specs:
        frames.update(int(f) for f in fileseq.FrameSet(spec))
    return fileseq.FrameSet.framesToFrameRange(sorted(frames)) if frames else ""


def frame_bounds(spec: str) -> tuple[int, int]:
    """The lowest and the highest frame of a spec, whatever order its parts list them in (`20-30,1-10` is 1
    to 30, not its first and last listed frame): plain ranges from their runs, others over their frames."""
    frames = parse_frames(spec)
    runs = _arithmetic_parts(spec.strip())
    if runs is None:
        return int(min(frames)), int(max(frames))
    return min(min(start, last) for start, last, _ in runs), max(max(start, last) for start, last, _ in runs)


def chunk_fields(frames: Sequence[int]) -> tuple[str, int, int, int, int]:
    """A task's frame columns (frames, start, end, step, count) for a list of frames in order: what a
    rewritten chunk (`model/auto_chunk.py`) stores, as `iter_chunk_fields` writes them."""
    text, step = _compact(list(frames))
    return text, frames[0], frames[-1], step, len(frames)


def iter_chunks(spec: str, chunk_size: int) -> Iterator[Chunk]:
    """Split a frame spec into consecutive chunks of at most `chunk_size` frames, in frame order.

    Plain ranges are walked arithmetically; inverted (`y`) and staggered (`:`) specs, and specs whose
    parts overlap, follow fileseq's own frame order.
    """
    for index, fields in enumerate(iter_chunk_fields(spec, chunk_size)):
        yield Chunk(index, *fields)


def iter_chunk_fields(spec: str, chunk_size: int) -> Iterator[tuple[str, int, int, int, int]]:
    """`iter_chunks` as plain tuples (frames, start, end, step, count): what a submit of a million
    tasks writes, without building a million objects it would take apart again."""
    if chunk_size < 1:
        raise FrameSpecError("chunk size must be at least 1")
    frame_set = parse_frames(spec)
    runs = _arithmetic_parts(spec.strip())
    if runs is not None:
        for start, last, step in runs:
            n = (last - start) // step + 1
            suffix = f"x{abs(step)}" if abs(step) != 1 else ""
            for offset in range(0, n, chunk_size):
                first = start + offset * step
                count = min(chunk_size, n - offset)
                if count == 1:
                    yield str(first), first, first, 1, 1
                else:
                    end = first + (count - 1) * step
                    yield f"{first}-{end}{suffix}", first, end, step, count
        return
    frames = [int(f) for f in frame_set]
    for offset in range(0, len(frames), chunk_size):
        part = frames[offset:offset + chunk_size]
        text, step = _compact(part)
        yield text, part[0], part[-1], step, len(part)


def is_arithmetic(spec: str) -> bool:
    """True when every chunk of `spec` is one arithmetic run (start, end, step), whatever the chunk size:
    what applications that only take a range (no frame list) need."""
    return _arithmetic_parts(spec.strip()) is not None


def chunk_count(spec: str, chunk_size: int) -> int:
    runs = _arithmetic_parts(spec.strip())
    if runs is None:
        return -(-frame_count(spec) // chunk_size)
    return sum(-(-((last - start) // step + 1) // chunk_size) for start, last, step in runs)

