"""The lockout rule (`model/lockout.py`) without HTTP: N failures within the window lock for a while
from the last of them; fewer, or spread wider, never lock; the lock ends on its own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from thresher.model.lockout import Limits, locked_until

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LIMITS = Limits(max_failures=3, window_s=60, lock_s=300)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_fewer_failures_than_the_limit_never_lock() -> None:
    assert locked_until([], T0, LIMITS) is None
    assert locked_until(at(0, 10), T0 + timedelta(seconds=11), LIMITS) is None


def test_the_limit_within_the_window_locks_from_the_last_failure() -> None:
    failures = at(0, 20, 40)
    assert locked_until(failures, T0 + timedelta(seconds=41), LIMITS) == T0 + timedelta(seconds=340)
    assert locked_until(failures, T0 + timedelta(seconds=339), LIMITS) == T0 + timedelta(seconds=340)
    assert locked_until(failures, T0 + timedelta(seconds=340), LIMITS) is None  # over on its own


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    assert locked_until(at(0, 40, 80, 120), T0 + timedelta(seconds=121), LIMITS) is None


def test_a_later_run_of_failures_locks_again_and_the_latest_lock_counts() -> None:
    failures = at(0, 1, 2, 400, 401, 402)  # locked 2..302, then again 402..702
    assert locked_until(failures, T0 + timedelta(seconds=350), LIMITS) is None
    assert locked_until(failures, T0 + timedelta(seconds=403), LIMITS) == T0 + timedelta(seconds=702)
    assert locked_until(at(0, 1, 2, 3), T0 + timedelta(seconds=4), LIMITS) == T0 + timedelta(seconds=303)


def test_order_does_not_matter_and_zero_means_never() -> None:
    assert locked_until(at(40, 0, 20), T0 + timedelta(seconds=41), LIMITS) == T0 + timedelta(seconds=340)
    assert locked_until(at(0, 1, 2, 3), T0 + timedelta(seconds=4), Limits(0, 60, 300)) is None


def test_the_horizon_reaches_the_oldest_failure_that_can_matter() -> None:
    assert LIMITS.horizon(T0) == T0 - timedelta(seconds=360)
