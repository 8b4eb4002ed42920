"""A task's output: copied to its log file as valid UTF-8, and cut into lines for the scanners.

Output (stdout and stderr merged) is decoded with `errors="replace"` and written as UTF-8 to a local
log file. That file is the source of truth for log streaming (the reporter reads it by byte offset),
so a server outage loses nothing. Lines go to a callback that looks for progress and error lines.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import selectors
import threading
from pathlib import Path
from typing import BinaryIO, Callable

from thresher.model.text import output_line

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # a "line" without newline longer than this is scanned and dropped
NOTE_PREFIX = "[thresher] "  # how the agent's own lines in a task log start
LAST_LINE_CHARS = 200  # of the last line a failed attempt's reason quotes
_TAIL_BYTES = 4096  # read from a log's end to find its last line
_READ_BYTES = 65536
_POLL_S = 0.2  # how often a reader with nothing to read checks whether it was told to stop


def compile_patterns(patterns: list[str], what: str) -> list[re.Pattern[str]]:
    """The valid patterns of a layer, compiled; an invalid one is logged and left out."""
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            log.warning("ignoring invalid %s pattern %r: %s", what, p, exc)
    return compiled


class TaskLog:
    """The attempt's log file. Other threads may write agent notes while the reader writes output."""

    def __init__(self, path: Path, on_output: Callable[[int], None] | None = None) -> None:
        self.path = Path(path)
        self._on_output = on_output
        self._file: BinaryIO | None = None
        self._lock = threading.Lock()
        self.size = 0  # UTF-8 bytes written

    def open(self) -> None:
        try:
            self._file = open(self.path, "wb", buffering=0)
        except FileNotFoundError:  # the folder is made once, not checked for every task
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb", buffering=0)

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            if self._file is None:
                return
            self._file.write(data)
            self.size += len(data)
        if self._on_output is not None:
            self._on_output(len(data))

    def note(self, message: str) -> None:
        """An agent line in the task log, so whoever reads the log sees why the attempt ended."""
        self.write(f"{NOTE_PREFIX}{message}\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    pass
                self._file = None


class LineSplitter:
    """Cuts decoded text into lines (`\\r` ends one too: progress bars redraw with it)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._pending = ""

    def feed(self, text: str) -> None:
        parts = re.split(r"[\r\n]", self._pending + text)
        rest = parts.pop()
        for line in parts:
            if line:
                self._on_line(line)
        if len(rest) > MAX_LINE:
            self._on_line(rest)
            rest = ""
        self._pending = rest

    def flush(self) -> None:
        """The last line, which has no newline."""
        if self._pending:
            self._on_line(self._pending)
            self._pending = ""


def read_output(fd: int, stop: threading.Event, task_log: TaskLog, on_line: Callable[[str], None] | None,
                attempt_id: object) -> None:
    """Copy output from `fd` to the log (valid UTF-8) and hand its lines to `on_line`, until end of file
    or, once nothing more comes, until `stop` is set (leftovers may hold the pipe open)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines = LineSplitter(on_line) if on_line is not None else None
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            if not sel.select(_POLL_S):
                if stop.is_set():
                    break
                continue
            try:
                data = os.read(fd, _READ_BYTES)
            except OSError:
                break
            if not data:
                break
            text = decoder.decode(data)
            if text:
                task_log.write(text)
                if lines is not None:
                    lines.feed(text)
        text = decoder.decode(b"", final=True)
        if text:
            task_log.write(text)
            if lines is not None:
                lines.feed(text)
        if lines is not None:
            lines.flush()
    except Exception:
        log.exception("attempt %s: output reader failed", attempt_id)
    finally:
        sel.close()


def last_output_line(path: Path) -> str | None:
    """The last line the task itself printed (not an agent note), as a reason quotes it; None when it
    printed nothing. Read from the log file's end once the attempt failed, so an attempt that succeeds
    pays nothing: what a wrangler reads first is what the application said just before it gave up."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first may be cut
    for line in reversed(lines):
        if line.startswith(NOTE_PREFIX):
            continue
        shown = output_line(line, LAST_LINE_CHARS)
        if shown:
            return shown
    return None
