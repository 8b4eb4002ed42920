"""Exit status 0 is not enough: the checks that make a task that "succeeded" fail all the same.

An error line in the output (the layer's error patterns) or an expected output file that is missing,
empty or stale (not written since the attempt started) fails the attempt. A renderer that exits 0
without writing its frame is the classic farm lie; last week's frame still on disk must not hide it.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from thresher.agent.output import compile_patterns
from thresher.agent.wire import MAX_REASON
from thresher.model.text import output_line


class ErrorLineWatch:
    """Remembers the first output line that matches one of the layer's error patterns."""

    def __init__(self, patterns: list[str]) -> None:
        self._patterns = compile_patterns(patterns, "error")
        self.first: str | None = None

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def feed(self, line: str) -> None:
        if self.first is not None:
            return
        for rx in self._patterns:
            if rx.search(line):
                self.first = output_line(line, MAX_REASON - len("error line: "))
                return


def _absolute(raw: str, cwd: str | None) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else (Path(cwd) if cwd else Path.cwd()) / path


def make_output_folders(outputs: list[str], cwd: str | None) -> None:
    """Create the folders the outputs go to: some renderers (POV-Ray, kick) do not, and fail."""
    for folder in {_absolute(raw, cwd).parent for raw in outputs}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the application says what is wrong, and the output check fails clearly


def check_outputs(outputs: list[str], cwd: str | None, started_wall: float | None, mtime_slack_s: float) -> str | None:
    """Why the outputs do not pass, or None. Each expected output must exist, be non-empty and have been
    written by this attempt: modified at or after `started_wall` less `mtime_slack_s` (file servers and
    filesystems keep coarse or slightly skewed timestamps; FAT and some SMB shares count in 2 s steps)."""
    for raw in outputs:
        path = _absolute(raw, cwd)
        try:
            st = path.stat()
        except OSError:
            return f"missing output: {raw}"
        if st.st_size == 0:
            return f"empty output: {raw}"
        if started_wall is not None and st.st_mtime < started_wall - mtime_slack_s:
            return (f"stale output: {raw} was not written by this attempt (modified {_iso(st.st_mtime)}, "
                    f"attempt started {_iso(started_wall)})")
    return None


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).isoformat(timespec="seconds")
