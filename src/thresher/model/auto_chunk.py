"""Chunks sized from measured frame times (`chunk: auto`): pure, no I/O.

A layer with `chunk: auto` is written one frame per task. Its first tasks measure seconds per frame
on this farm: its scout tasks when it has scout frames, else `PROBES` (first, middle and last frame,
as `fml:3`) made its scouts for the purpose. The rest is held (`model/scouts.py`). Once every one of
them succeeded, `decide` takes the median seconds per frame and picks the chunk that makes a task
last about `target_task_s` (at least 1 frame, never over `max_chunk`), and `regroup` rewrites the
held tasks into chunks of that size: per part (each wedge value chunked on its own), only frames
next to each other in the layer's order (a started task between two frames splits the run), every
frame exactly once, none split. Tiles are refused with `chunk: auto` (a tile is not a frame time).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

#: The probe frames of a `chunk: auto` layer without scout frames.
PROBES = "fml:3"
#: The target task time when a layer leaves it out, in seconds.
DEFAULT_TARGET_S = 600.0
#: The largest chunk an automatic decision makes when the layer gives no `max_chunk`.
DEFAULT_MAX_CHUNK = 100


@dataclass(frozen=True)
class Sample:
    """One measuring task that succeeded: its id, frames, and how long it ran."""

    task_id: int
    frames: str
    frame_count: int
    seconds: float


def decide(target_s: float, max_chunk: int | None, samples: Sequence[Sample]) -> dict[str, Any]:
    """The chunk size for `target_s` seconds per task from the samples' median seconds per frame, and
    what it was decided from (the record `layers.chunk_decision` keeps and the layer shows)."""
    most = max_chunk or DEFAULT_MAX_CHUNK
    per_frame = [s.seconds / max(1, s.frame_count) for s in samples]
    record: dict[str, Any] = {"target_task_s": target_s, "max_chunk": most,
                              "samples": [{"task_id": s.task_id, "frames": s.frames, "seconds": round(s.seconds, 3)}
                                          for s in samples]}
    if not per_frame:
        return {**record, "status": "kept", "chunk": 1, "seconds_per_frame": None,
                "why": "no frame was measured: kept one frame per task"}
    spf = statistics.median(per_frame)
    chunk = most if spf <= 0 else max(1, min(most, int(target_s // spf)))
    why = f"median {spf:.3g} s per frame over {len(per_frame)} task(s): {chunk} frame(s) per task" + \
        (f" (capped at max_chunk {most})" if spf <= 0 or target_s / spf > most else "")
    return {**record, "status": "decided", "chunk": chunk, "seconds_per_frame": round(spf, 4), "why": why}


@dataclass(frozen=True)
class Held:
    """A task not started, as the rewrite sees it: its id, its index in the layer (its place in frame
    order is `index // parts`), its frames in order, and its part (tile or wedge value) as stored."""

    task_id: int
    index: int
    frames: tuple[int, ...]
    part: Any = None


@dataclass(frozen=True)
class Group:
    """One new task: the index it takes (its first old task's), its frames in order, its part, and
    the old tasks it replaces."""

    index: int
    frames: tuple[int, ...]
    part: Any
    replaces: tuple[int, ...]


def regroup(held: Sequence[Held], chunk: int, parts: int) -> list[Group]:
    """The held tasks of a layer regrouped into chunks of at most `chunk` frames: per part, runs of
    tasks next to each other in the layer's frame order (a started task between them ends a run)."""
    by_part: dict[str, list[Held]] = defaultdict(list)
    for task in held:
        by_part[repr(task.part)].append(task)
    out: list[Group] = []
    for tasks in by_part.values():
        tasks.sort(key=lambda t: t.index)
        group: list[Held] = []
        frames: list[int] = []
        for task in tasks:
            adjacent = bool(group) and task.index // parts == group[-1].index // parts + 1
            if group and (not adjacent or len(frames) + len(task.frames) > chunk):
                out.append(Group(group[0].index, tuple(frames), group[0].part, tuple(t.task_id for t in group)))
                group, frames = [], []
            group.append(task)
            frames.extend(task.frames)
        if group:
            out.append(Group(group[0].index, tuple(frames), group[0].part, tuple(t.task_id for t in group)))
    return sorted(out, key=lambda g: g.index)
