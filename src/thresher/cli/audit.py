"""`thresher audit`: the audit log (wranglers and admins), the newest first, by filters. Thin over
`client/people.People.audit`; `--json` prints the entries as the API gives them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import typer

from thresher.cli.common import JsonOpt, ServerOpt, TokenOpt, connect, console, emit_json, fail
from thresher.cli.views import listing_table
from thresher.client.people import People
from thresher.wire.audit import AuditEntry

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def moment(text: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 moment (UTC when it names no zone), or a time ago: `90m`, `2h`, `7d`."""
    if not text:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[ago.group(2)]: float(ago.group(1))})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since/--until: {text!r} is neither an ISO 8601 moment nor a time ago like 2h or 7d")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def audit_table(entries: list[AuditEntry]) -> Any:
    table = listing_table("AT", "WHO", "ROLE", "OPERATION", "TARGET", "STATUS", "REASON")
    for e in entries:
        target = " ".join(f"{k}={v}" for k, v in e.target.items()) or "-"
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "-", e.who or f"({e.kind})",
                      e.role or e.kind, e.operation, target, str(e.status), e.reason or "")
    return table


def audit(who: Annotated[str | None, typer.Option(help="Only this user's (or node's) calls.", show_default=False)] = None,
          operation: Annotated[str | None, typer.Option(help="Only this operation (kill_job, submit_job, ...).",
                                                        show_default=False)] = None,
          job: Annotated[int | None, typer.Option(help="Only calls about this job.", show_default=False)] = None,
          refused: Annotated[bool, typer.Option("--refused", help="Only refusals (401, 403).")] = False,
          since: Annotated[str | None, typer.Option(help="From this moment (ISO 8601) or time ago (2h, 7d).",
                                                    show_default=False)] = None,
          until: Annotated[str | None, typer.Option(help="Before this moment (ISO 8601) or time ago.",
                                                    show_default=False)] = None,
          limit: Annotated[int, typer.Option(help="Entries at most.")] = 100,
          json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """The audit log: every state-changing call and refusal, the newest first (wranglers and admins)."""
    with connect(server, token) as client:
        page = People(client.http).audit(who=who, operation=operation, job=job, allowed=False if refused else None,
                                         since=moment(since), until=moment(until), limit=limit)
    if json_out:
        emit_json(page)
    else:
        console.print(audit_table(page.items))
        if page.total > len(page.items):
            console.print(f"{len(page.items)} of {page.total} entries: narrow with the filters or raise --limit")
