"""The audit log's route (`server/audit.py`): a page of entries, the newest first, by filters.
Wranglers and admins read it (`audit.read`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request

from thresher.server import audit
from thresher.server.api.people import MAX_OFFSET, Offset, Text, _limit
from thresher.server.context import ctx
from thresher.server.permits import permit
from thresher.wire.audit import AuditEntry, AuditFilter
from thresher.wire.common import Page, error_responses

router = APIRouter(tags=["people"])


@router.get("/audit", summary="Read the audit log: every state-changing call and refusal, the newest first",
            operation_id="list_audit", response_model=Page[AuditEntry], responses=error_responses(401, 403, 422),
            dependencies=[permit("audit.read")])
def list_audit(request: Request, who: Text = None, operation: Text = None,
               job: int | None = Query(None, ge=1, le=MAX_OFFSET, description="entries about this job"),
               allowed: bool | None = Query(None, description="false: refusals only"),
               since: datetime | None = None, until: datetime | None = None,
               limit: int = _limit(100, 10_000), offset: Offset = 0) -> Page[AuditEntry]:
    chosen = AuditFilter(who=who, operation=operation, job=job, allowed=allowed, since=since, until=until)
    with ctx(request).db.read() as conn:
        items, total = audit.list_entries(conn, chosen, limit, offset)
    return Page[AuditEntry](items=items, total=total)
