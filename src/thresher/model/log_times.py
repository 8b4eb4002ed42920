"""**The** rule for when each line of a log arrived, from one arrival time per stored piece.

Agents send an attempt's log in chunks, and the server keeps one arrival time per stored piece
(`log_chunks.arrived_at`), not one per line: a chunk of a thousand lines costs one timestamp. A page
of the log (`views.read_log`) is the pieces' bytes in order; a line's time is the arrival of the piece
holding its first byte. So a page's times are a short list of `(line, at)`: line `line` of the page's
text (0-based) and the lines after it, up to the next entry, arrived at `at`. An entry is made only where a
line starts inside the piece (a piece that starts mid-line leaves that line the earlier piece's time),
and only when the time changes. Line 0 of a page that does not start the log may continue the previous
page's last line: the reader that joins pages keeps the earlier time then (the dashboard does).
"""

from __future__ import annotations

from datetime import datetime


class LineTimes:
    """The `(line, at)` entries of one page, fed its pieces in order (`add`)."""

    def __init__(self) -> None:
        self.lines = 0            # newlines in the page so far
        self.at_line_start = True  # the next byte starts a line (so does a page's first byte)
        self.entries: list[tuple[int, datetime]] = []

    def add(self, part: bytes, at: datetime | None) -> None:
        """`part`, a piece's bytes as they join the page, arrived at `at` (None: not known, stored before
        times were; a cut marker)."""
        if not part:
            return
        if at is not None:
            first: int | None = self.lines
            if not self.at_line_start:
                newline = part.find(b"\n")
                first = self.lines + 1 if 0 <= newline < len(part) - 1 else None
            last = self.entries[-1] if self.entries else None
            if first is not None and (last is None or (last[1] != at and first > last[0])):
                self.entries.append((first, at))
        self.lines += part.count(b"\n")
        self.at_line_start = part.endswith(b"\n")
