"""Time in one place: the server stores and compares UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were written as UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def run_start(assigned_at: datetime | None, waited_s: float | None, now: datetime) -> datetime | None:
    """When an attempt's process really started, for a report that says it waited `waited_s` on its node
    after the assignment (`tasks_ahead`: for room): `assigned_at` moved that much later, never past `now`
    (the agent's clock counts the wait, the server's the rest). None when there is nothing to move."""
    assigned_at = as_utc(assigned_at)
    if assigned_at is None or not waited_s or waited_s <= 0:
        return None
    return min(assigned_at + timedelta(seconds=waited_s), now)


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None
