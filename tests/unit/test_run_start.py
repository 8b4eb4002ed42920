"""`clock.run_start`: when an attempt's process really started, from the wait its agent reported."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from thresher.server.clock import run_start

ASSIGNED = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
NOW = ASSIGNED + timedelta(seconds=10)


def test_the_start_moves_by_the_wait() -> None:
    assert run_start(ASSIGNED, 2.5, NOW) == ASSIGNED + timedelta(seconds=2.5)


def test_sqlites_zoneless_datetimes_are_utc() -> None:
    assert run_start(ASSIGNED.replace(tzinfo=None), 1.0, NOW) == ASSIGNED + timedelta(seconds=1)


def test_never_past_the_end() -> None:
    assert run_start(ASSIGNED, 3600.0, NOW) == NOW


def test_no_wait_moves_nothing() -> None:
    assert run_start(ASSIGNED, None, NOW) is None
    assert run_start(ASSIGNED, 0.0, NOW) is None
    assert run_start(None, 2.0, NOW) is None
