"""A task's percent done, read from its output lines with the layer's progress patterns.

Renderers print progress in many ways (percent of a frame, samples of a frame, frames of a chunk), so
the templates write patterns with named groups and this module turns one matched line into the
percent of the whole task: a chunk of 4 frames at frame 3, 50 % of it, reads 62.5 %.
"""

from __future__ import annotations

import re

from thresher.agent.output import compile_patterns


class ProgressParser:
    """Follows one attempt's progress lines; `percent` is the latest figure (None before the first)."""

    def __init__(self, patterns: list[str], frames: str) -> None:
        self._patterns = compile_patterns(patterns, "progress")
        self._frames_spec = frames
        self._frames: list[int] | None = None  # the chunk's frames, for frame-aware progress
        self._frame_share: tuple[float, float] | None = None  # (done share before this frame, its share)
        self.percent: float | None = None

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def feed(self, line: str) -> None:
        """Read one line; the first pattern that matches it decides."""
        for rx in self._patterns:
            m = rx.search(line)
            if m:
                try:
                    value = self._percent_from(m)
                except (IndexError, TypeError, ValueError, ZeroDivisionError):
                    value = None
                if value is not None:
                    self.percent = max(0.0, min(100.0, value))
                break

    def _percent_from(self, m: re.Match[str]) -> float | None:
        """A task's percent from one matched line. Named groups (templates combine them):

        - `pct`: percent (of the frame being rendered, once a frame is known; else of the task);
        - `done` and `total`: the same as a fraction (`Sample 64/128`, `Rendered 10 of 40 pixels`);
        - `frame` (a frame number) or `nth` and `of` (`Rendering frame 2 of 5`): which frame of the
          chunk renders now, so a chunk of 4 frames at frame 3, 50% reads 62.5%;
        - `frames_done`: frames of the chunk finished (`frame=  12` of ffmpeg);
        - `frame_done`: the number of the frame just finished (`Writing /r/a.0003.exr took 2 s`).
        A pattern without named groups gives the task percent in its first group.
        """
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        if not groups:
            return float(m.group(1))
        count = max(len(self._chunk_frames()), 1)
        if "frames_done" in groups:
            return 100.0 * float(groups["frames_done"]) / count
        if "frame_done" in groups:
            frames = self._chunk_frames()
            frame = int(groups["frame_done"])
            return 100.0 * (frames.index(frame) + 1) / count if frame in frames else None
        if "frame" in groups:
            frames = self._chunk_frames()
            frame = int(groups["frame"])
            if frame in frames:
                self._frame_share = (frames.index(frame) / count, 1.0 / count)
        elif "nth" in groups and "of" in groups:
            of = max(int(groups["of"]), 1)
            self._frame_share = ((int(groups["nth"]) - 1) / of, 1.0 / of)
        unit: float | None = None
        if "pct" in groups:
            unit = float(groups["pct"])
        elif "done" in groups and "total" in groups:
            unit = 100.0 * float(groups["done"]) / float(groups["total"])
        if self._frame_share is None:
            return unit
        base, share = self._frame_share
        return 100.0 * base + share * (unit or 0.0)

    def _chunk_frames(self) -> list[int]:
        if self._frames is None:
            try:
                import fileseq

                self._frames = [int(f) for f in fileseq.FrameSet(self._frames_spec)] if self._frames_spec else []
            except Exception:
                self._frames = []
        return self._frames
