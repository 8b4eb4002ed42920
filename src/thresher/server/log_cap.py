"""An attempt's log kept under `log_max_bytes` (ServerSettings): the first 40% and the newest 60%, the
middle dropped as it arrives. A task printing hundreds of megabytes must neither bloat the database nor
slow the server, and what a person reads of a huge log is how it started and how it ended.

The protocol does not change: the agent sends pieces at byte offsets and the server acknowledges every
byte (`attempts.log_size` counts all of them), storing only what it keeps. Pieces stay at their true
offsets in `log_chunks`, so a cut is a gap between two pieces; the reader (`views.read_log`) writes the
marker line there (`cut_marker`). Each piece past the cap costs one INSERT and one DELETE on the primary
key's range, whatever the log's size."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from thresher.server import log_text
from thresher.server.db.queries import reports as qr

HEAD_SHARE = 0.4  # of the cap, kept from the log's start; the rest is the rolling tail
ROW_BYTES = 256 * 1024  # a stored row holds at most this much (the agent's pieces are no larger by default)


def cut_marker(cut: int) -> bytes:
    """The line the reader shows where `cut` bytes were dropped."""
    return f"\n[... {cut} bytes cut by Thresher: the log passed log_max_bytes ...]\n".encode()


def _char_start(raw: bytes, at: int) -> int:
    """`at`, moved forward to the start of a UTF-8 character (a piece never begins mid-character; past
    three continuation bytes there is no character to keep whole)."""
    stop = min(len(raw), at + 3)
    while at < stop and (raw[at] & 0xC0) == 0x80:
        at += 1
    return at


def _pieces(offset: int, raw: bytes, cap: int) -> tuple[list[tuple[int, bytes]], int]:
    """What of `raw` (the new bytes at `offset`) is stored, as (offset, bytes) pieces, and where the kept
    tail starts (stored pieces from the head's end up to there are dropped). Split at the head's end so
    that no piece straddles it."""
    head = int(cap * HEAD_SHARE)
    end = offset + len(raw)
    pieces: list[tuple[int, bytes]] = []
    if offset < head:
        split = _char_start(raw, min(len(raw), head - offset))
        pieces.append((offset, raw[:split]))
        rest_at = offset + split
    else:
        rest_at = offset
    tail_from = end - (cap - head) if end > cap else 0
    start = max(rest_at, tail_from)
    if start < end:
        at = _char_start(raw, start - offset)
        if at < len(raw):
            pieces.append((offset + at, raw[at:]))
    return [(o, b) for o, b in pieces if b], max(head, tail_from)


def rows(offset: int, raw: bytes, most: int = ROW_BYTES) -> list[tuple[int, bytes]]:
    """`raw` at `offset` as stored rows of at most `most` bytes each (a little more only to end a
    character), so that a reader's page costs at most its limit and one row (`views.read_log`)."""
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(raw):
        end = min(len(raw), at + most)
        stop = min(len(raw), end + 3)  # a UTF-8 character has at most 3 continuation bytes
        while end < stop and (raw[end] & 0xC0) == 0x80:
            end += 1
        out.append((offset + at, raw[at:end]))
        at = end
    return out


def store(conn: Connection, attempt_id: int, offset: int, raw: bytes, cap: int,
          arrived_at: datetime | None = None) -> None:
    """Store the fresh bytes `raw` of an attempt's log at `offset`, keeping the log under `cap`. Every
    byte kept is stored exactly, escaped where the text column cannot hold it (`server/log_text.py`).
    Each row keeps when its piece arrived (`arrived_at`): one time per agent chunk, not per line, which
    the reader turns into the lines' times (`views.read_log`)."""
    pieces, tail_from = _pieces(offset, raw, cap)
    stored = [row for o, b in pieces for row in rows(o, b)]
    if stored:
        conn.execute(qr.INSERT_LOG_CHUNK, [{"attempt_id": attempt_id, "offset": o, "data": log_text.to_stored(b),
                                            "arrived_at": arrived_at} for o, b in stored])
    if offset + len(raw) > cap:  # the middle: from the head's end to where the kept tail starts
        conn.execute(qr.DROP_LOG_MIDDLE, {"attempt_id": attempt_id, "head": int(cap * HEAD_SHARE),
                                          "tail_from": tail_from})
