"""`thresher enroll-token create|list|revoke` (admins): the tokens agents enrol with (one-time or
reusable, an expiry, the pool their nodes join; `model/enrollment.py`). Thin over
`client/enrollment.py`; `--json` on each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from thresher.cli.common import JsonOpt, ServerOpt, ThresherGroup, TokenOpt, connect, console, emit_json, emit_listing
from thresher.cli.views import listing_table
from thresher.client.enrollment import EnrollTokens
from thresher.wire.enrollment import EnrollToken

enroll_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                         help="Enrollment tokens agents join the farm with (admins).")


def _when(value: datetime | None, none: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else none


def enroll_tokens_table(tokens: list[EnrollToken]) -> Any:
    table = listing_table("ID", "NAME", "USES", "POOL", "EXPIRES", "LAST USED", "STATE")
    for t in tokens:
        table.add_row(str(t.id), t.name, f"{t.used_count}/1" if t.one_time else f"{t.used_count}", t.pool or "-",
                      _when(t.expires_at, "never"), _when(t.last_used_at, "-"), t.state)
    return table


@enroll_app.command("create")
def create(name: Annotated[str, typer.Argument(metavar="NAME", help="What it is for (shown in listings and "
                                                                      "refusals).")],
           one_time: Annotated[bool, typer.Option("--one-time", help="It enrols one node, then is used up.")] = False,
           days: Annotated[float | None, typer.Option("--days", help="Expires after this many days (default: "
                                                                     "never, until revoked).")] = None,
           pool: Annotated[str | None, typer.Option("--pool", help="The pool its nodes join (wins over the agent's "
                                                                   "--pool).")] = None,
           json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Make an enrollment token; its secret is printed this once (give it to the agent: --token)."""
    with connect(server, token) as client:
        answer = EnrollTokens(client.http).create(name, one_time=one_time, expires_in_days=days, pool=pool)
    if json_out:
        emit_json(answer)
        return
    kind = "one-time" if answer.one_time else "reusable"
    where = f", pool {answer.pool}" if answer.pool else ""
    console.print(f"enrollment token {answer.id} ({answer.name}, {kind}{where}):")
    console.print(answer.secret, soft_wrap=True)


@enroll_app.command("list")
def list_tokens(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List enrollment tokens: uses, last use, state (never their secrets)."""
    with connect(server, token) as client:
        answer = EnrollTokens(client.http).list()
    if json_out:
        emit_listing(answer)
    else:
        console.print(enroll_tokens_table(answer))


@enroll_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(metavar="ID", help="Token id (`thresher enroll-token list`).")],
           json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Revoke an enrollment token: it enrols nothing more, at once; its nodes keep their own credentials."""
    with connect(server, token) as client:
        answer = EnrollTokens(client.http).revoke(token_id)
    if json_out:
        emit_json(answer)
    else:
        console.print(f"enrollment token {answer.id} ({answer.name}) revoked")
