"""The files a task must write: its output patterns expanded for its frames.

The agent checks each of them after the task (present and not empty), so a render that exits 0 without
writing its frames still fails.
"""

from __future__ import annotations

from thresher.model.frames import Chunk
from thresher.model.padding import expand_padding, has_padding
from thresher.templates.placeholders import fill_placeholders


def expand_outputs(patterns: list[str], chunk: Chunk) -> list[str]:
    """The files a chunk must write: each padded pattern once per frame, others once."""
    files: list[str] = []
    for pattern in patterns:
        pattern = fill_placeholders(pattern, chunk)
        if has_padding(pattern):
            files.extend(expand_padding(pattern, frame) for frame in chunk.frame_list())
        else:
            files.append(pattern)
    return files


def frame_outputs(pattern: str | None, chunk: Chunk) -> list[str]:
    """The files a render chunk writes for an output pattern (none when there is no pattern)."""
    return expand_outputs([pattern], chunk) if pattern else []
