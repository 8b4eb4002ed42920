"""The audit log's statements (`server/audit.py`): the recorder's one INSERT per batch, the filtered
page the API lists, and the bounded prune by age."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Select, delete, func, insert, select

from thresher.server.db.tables import audit

INSERT_AUDIT = insert(audit)  # executed with a list of rows: one statement for a whole batch


def _filters(who: str | None, operation: str | None, job: int | None, allowed: bool | None,
             since: datetime | None, until: datetime | None) -> list[Any]:
    conditions: list[Any] = []
    if who:
        conditions.append(audit.c.who == who)
    if operation:
        conditions.append(audit.c.operation == operation)
    if job is not None:  # path parameters are kept as the text they came as
        conditions.append(audit.c.target["job_id"].as_string() == str(job))
    if allowed is not None:
        conditions.append(audit.c.allowed.is_(allowed))
    if since is not None:
        conditions.append(audit.c.at >= since)
    if until is not None:
        conditions.append(audit.c.at < until)
    return conditions


def list_audit(who: str | None, operation: str | None, job: int | None, allowed: bool | None,
               since: datetime | None, until: datetime | None, limit: int, offset: int) -> Select[Any]:
    """One page of entries matching the filters, the newest first."""
    return (select(audit).where(*_filters(who, operation, job, allowed, since, until))
            .order_by(audit.c.id.desc()).limit(limit).offset(offset))


def count_audit(who: str | None, operation: str | None, job: int | None, allowed: bool | None,
                since: datetime | None, until: datetime | None) -> Select[Any]:
    return select(func.count()).select_from(audit).where(*_filters(who, operation, job, allowed, since, until))


def prune_before(cutoff: datetime, most: int) -> Delete:
    """At most `most` entries older than `cutoff` (the oldest first): one bounded DELETE."""
    oldest = select(audit.c.id).where(audit.c.at < cutoff).order_by(audit.c.id).limit(most)
    return delete(audit).where(audit.c.id.in_(oldest.scalar_subquery()))
