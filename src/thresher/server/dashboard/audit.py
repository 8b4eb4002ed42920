"""The dashboard's audit page (`/audit`, wranglers and admins): the newest entries of the audit log
(`server/audit.py`), with the API's filters as query parameters. Others get a 403 page; the nav links
it only for those who may read it (`may("audit.read")` in base.html)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from thresher.model.permissions import decide
from thresher.server import audit
from thresher.server.context import ctx
from thresher.server.dashboard.access import DashboardRoute, PageSession
from thresher.server.dashboard.render import render
from thresher.wire.audit import AuditFilter

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)

PAGE = 100


def _filters(request: Request) -> tuple[AuditFilter, dict[str, str]]:
    """The filters the page's query names (a value that does not parse is left out)."""
    params = request.query_params
    shown = {k: params[k] for k in ("who", "operation", "job", "refused", "since") if params.get(k)}
    job = params.get("job", "")
    since: datetime | None = None
    try:
        since = datetime.fromisoformat(params["since"]) if params.get("since") else None
    except ValueError:
        shown.pop("since", None)
    chosen = AuditFilter(who=params.get("who") or None, operation=params.get("operation") or None,
                         job=int(job) if job.isdigit() and len(job) < 12 else None,
                         allowed=False if params.get("refused") else None, since=since)
    return chosen, shown


@router.get("/audit")
def audit_page(request: Request, session: PageSession) -> Response:
    refusal = decide(session.caller.who, "audit.read", read_only=session.caller.read_only)
    if refusal is not None:
        return render(request, "missing.html", session, status=403, message=refusal.reason, title="Not allowed")
    chosen, shown = _filters(request)
    offset = max(0, int(request.query_params.get("offset", "0"))) if request.query_params.get(
        "offset", "0").isdigit() else 0
    with ctx(request).db.read() as conn:
        entries, total = audit.list_entries(conn, chosen, PAGE, offset)

    def link(**change: Any) -> str:
        return "/audit?" + urlencode({**shown, **{k: v for k, v in change.items() if v is not None}})

    return render(request, "audit.html", session, title="Audit log", entries=entries, total=total,
                  offset=offset, page=PAGE, shown=shown, link=link)
