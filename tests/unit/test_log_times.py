"""**The** rule for a log's per-line arrival times (`model/log_times.py`): one time per stored piece,
given to the lines that start in it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from thresher.model.log_times import LineTimes

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
T1, T2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)


def _entries(*pieces: tuple[bytes, datetime | None]) -> list[tuple[int, datetime]]:
    times = LineTimes()
    for part, at in pieces:
        times.add(part, at)
    return times.entries


def test_a_piece_of_whole_lines_marks_its_first_line() -> None:
    assert _entries((b"a\nb\n", T0), (b"c\nd\n", T1)) == [(0, T0), (2, T1)]


def test_a_piece_that_starts_mid_line_marks_the_next_line_it_starts() -> None:
    # "b" began in the first piece: it keeps T0; "c" starts in the second piece
    assert _entries((b"a\nb", T0), (b"b\nc\n", T1)) == [(0, T0), (2, T1)]
    # no line starts in the second piece (its only newline ends it): nothing to mark
    assert _entries((b"a\nb", T0), (b"bb\n", T1), (b"c\n", T2)) == [(0, T0), (2, T2)]


def test_the_same_time_twice_is_one_entry_and_unknown_times_mark_nothing() -> None:
    assert _entries((b"a\n", T0), (b"b\n", T0), (b"c\n", T1)) == [(0, T0), (2, T1)]
    assert _entries((b"old\n", None), (b"new\n", T1)) == [(1, T1)]
    assert _entries((b"", T0), (b"x\n", T1)) == [(0, T1)]
