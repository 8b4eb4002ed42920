"""**The** rule for failed logins: from the failures counted against one user name (or one address),
is a login allowed now, or locked until when?

`max_failures` failures within `window_s` of each other lock for `lock_s` from the last of them. A
login refused while locked is not a failure (the server records none), so a lock ends `lock_s` after
the failure that set it, however often someone keeps trying; an admin lifts it sooner by deleting the
user's failures (`thresher user unlock`). The same rule counts a user name and an address, each with
its own `max_failures`; the name need not be a user's, so a locked answer says nothing about which
names exist. Pure: the caller reads the failures of the last `window_s + lock_s` (`horizon`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable


@dataclass(frozen=True)
class Limits:
    max_failures: int   # 0: never locked
    window_s: float
    lock_s: float

    def horizon(self, now: datetime) -> datetime:
        """The oldest failure that can still matter now."""
        return now - timedelta(seconds=self.window_s + self.lock_s)


def locked_until(failures: Iterable[datetime], now: datetime, limits: Limits) -> datetime | None:
    """When the lock the failures set ends, if it has not ended by `now`; None: a login is allowed."""
    n = limits.max_failures
    if n <= 0:
        return None
    times = sorted(failures)
    window, lock = timedelta(seconds=limits.window_s), timedelta(seconds=limits.lock_s)
    until: datetime | None = None
    for last in range(n - 1, len(times)):
        if times[last] - times[last - n + 1] <= window and times[last] <= now < times[last] + lock:
            until = max(until or times[last] + lock, times[last] + lock)
    return until
