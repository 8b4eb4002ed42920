"""People commands: users (`thresher user add|list|set|disable|unlock|sessions`, admins; `passwd` and
`logout-everywhere` also for yourself), personal tokens
(`thresher token create|list|revoke`), `thresher login` / `logout` (a token saved for the CLI where
it looks for one: the client config, mode 0600) and projects' members (`thresher project member
add|remove`). Thin over `client/people.py`; `--json` on every listing and change."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from thresher.cli.common import (
    JsonOpt,
    ServerOpt,
    ThresherGroup,
    TokenOpt,
    connect,
    console,
    emit_json,
    emit_listing,
    fail,
)
from thresher.cli.views import counted, listing_table
from thresher.client.config import resolve, save_client_config
from thresher.client.people import People
from thresher.wire.users import SessionInfo, TokenInfo, User

user_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True, help="Users and their roles (admins).")
token_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True, help="Your personal API tokens.")
member_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                         help="A project's members: once it has any, only they (and wranglers, admins) submit to it.")

UserArg = Annotated[str, typer.Argument(metavar="USER", help="User name.", show_default=False)]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.", show_default=False)]
RoleOpt = Annotated[str | None, typer.Option(help="admin, wrangler, artist or viewer.", show_default=False)]


def _out(answer: Any, json_out: bool, text: str) -> None:
    if json_out:
        emit_json(answer)
    else:
        console.print(text)


def _ask_password(confirm: bool = True) -> str:
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm, err=True))


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def users_table(users: list[User]) -> Any:
    table = listing_table("NAME", "ROLE", "SOURCE", "PASSWORD", "STATE", "SESSIONS", **counted(len(users), "user"))
    for u in users:
        state = "disabled" if u.disabled else f"locked until {_when(u.locked_until)}" if u.locked_until else "active"
        table.add_row(u.name, u.role, u.source, "yes" if u.has_password else "-", state, str(u.sessions))
    return table


def sessions_table(sessions: list[SessionInfo]) -> Any:
    table = listing_table("ID", "SINCE", "LAST SEEN", "ADDRESS", "WITH", "STATE", "USER AGENT",
                          **counted(len(sessions), "session"))
    for s in sessions:
        table.add_row(str(s.id), _when(s.created_at), _when(s.last_seen), s.address or "-",
                      "token" if s.with_token else "password",
                      f"ended ({s.end_reason})" if s.ended_at else "open", (s.user_agent or "-")[:60])
    return table


def tokens_table(tokens: list[TokenInfo]) -> Any:
    table = listing_table("ID", "NAME", "USER", "ACCESS", "EXPIRES", "STATE", **counted(
        len(tokens), "token", "no tokens yet: `thresher token create NAME` makes one"))
    for t in tokens:
        table.add_row(str(t.id), t.name, t.user, "read-only" if t.read_only else "full",
                      t.expires_at.strftime("%Y-%m-%d %H:%M") if t.expires_at else "never",
                      "revoked" if t.revoked_at else "active")
    return table


# ---------------------------------------------------------------- users

@user_app.command("add")
def user_add(name: UserArg, role: Annotated[str, typer.Option(help="admin, wrangler, artist or viewer.")] = "artist",
             password: Annotated[bool, typer.Option("--password", help="Ask for a password to set.")] = False,
             json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Add a user (without --password they log in with tokens an admin or they themselves make)."""
    secret = _ask_password() if password else None
    with connect(server, token) as client:
        answer = People(client.http).add_user(name, role, secret)
    _out(answer, json_out, f"user {answer.name} added ({answer.role})")


@user_app.command("list")
def user_list(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List users with their roles."""
    with connect(server, token) as client:
        answer = People(client.http).users()
    if json_out:
        emit_listing(answer)
    else:
        console.print(users_table(answer))


@user_app.command("set")
def user_set(name: UserArg, role: RoleOpt = None,
             enable: Annotated[bool, typer.Option("--enable", help="Let a disabled user in again.")] = False,
             json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Change a user's role (at once), or enable them again."""
    if role is None and not enable:
        fail("give --role or --enable")
    with connect(server, token) as client:
        answer = People(client.http).set_user(name, role=role, disabled=False if enable else None)
    _out(answer, json_out, f"user {answer.name}: {answer.role}{', disabled' if answer.disabled else ''}")


@user_app.command("disable")
def user_disable(name: UserArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    with connect(server, token) as client:
        answer = People(client.http).set_user(name, disabled=True)
    _out(answer, json_out, f"user {answer.name} disabled")


@user_app.command("passwd")
def user_passwd(name: Annotated[str | None, typer.Argument(metavar="[USER]", help="An admin: whose password to set "
                                                           "(none: your own).", show_default=False)] = None,
                json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Change your own password (the old one is asked), or an admin sets USER's.

    The user's other dashboard sessions end."""
    old = None if name else str(typer.prompt("Old password", hide_input=True, err=True))
    secret = str(typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True))
    with connect(server, token) as client:
        people = People(client.http)
        answer = people.set_password(name, secret) if name else people.change_own_password(old or "", secret)
    _out(answer, json_out, f"password of {answer.name} set")


@user_app.command("unlock")
def user_unlock(name: UserArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Lift the lockout of a user name that failed to log in too often."""
    with connect(server, token) as client:
        answer = People(client.http).unlock(name)
    _out(answer, json_out, f"user {answer.name} unlocked")


@user_app.command("sessions")
def user_sessions(name: UserArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """A user's dashboard sessions, the newest first (ended ones too, with why)."""
    with connect(server, token) as client:
        answer = People(client.http).sessions(name)
    if json_out:
        emit_listing(answer)
    else:
        console.print(sessions_table(answer))


@user_app.command("logout-everywhere")
def user_logout_everywhere(name: Annotated[str | None, typer.Argument(metavar="[USER]", help="An admin: whose "
                                                                      "sessions (none: yours).",
                                                                      show_default=False)] = None,
                           json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """End every dashboard session of yours (an admin: of USER), at once; tokens stay."""
    with connect(server, token) as client:
        answer = People(client.http).end_sessions(name or client.whoami().name)
    _out(answer, json_out, f"{answer.ended} dashboard session(s) of {answer.user} ended")


# ---------------------------------------------------------------- tokens

@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(metavar="NAME", help="What the token is for.")],
                 days: Annotated[float | None, typer.Option("--days", help="Expires after this many days.")] = None,
                 read_only: Annotated[bool, typer.Option("--read-only", help="It may only read.")] = False,
                 json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Make a personal token; its secret is printed this once."""
    with connect(server, token) as client:
        answer = People(client.http).create_token(name, days, read_only)
    _out(answer, json_out, f"token {answer.id} ({answer.name}):\n{answer.secret}")


@token_app.command("list")
def token_list(everyone: Annotated[bool, typer.Option("--all", help="An admin: every person's tokens.")] = False,
               json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List your tokens (never their secrets)."""
    with connect(server, token) as client:
        answer = People(client.http).tokens(everyone)
    if json_out:
        emit_listing(answer)
    else:
        console.print(tokens_table(answer))


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID", help="Token id (`thresher token list`).")],
                 json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Revoke a token: it stops working at once."""
    with connect(server, token) as client:
        answer = People(client.http).revoke_token(token_id)
    _out(answer, json_out, f"token {answer.id} ({answer.name}) revoked")


# ---------------------------------------------------------------- login, logout

def login(server: ServerOpt = None,
          user: Annotated[str | None, typer.Option("--user", "-u", help="User name (asked for when not given).",
                                                   show_default=False)] = None,
          token: Annotated[str | None, typer.Option("--token", "-t", help="Save this token instead of logging in "
                                                    "with a password.", show_default=False)] = None,
          json_out: JsonOpt = False) -> None:
    """Log in to a server: a token for this CLI, saved (mode 0600) where every later command finds it."""
    url = resolve(server, None).server
    if token:
        secret = token
    else:
        name = user or typer.prompt("User", default=getpass.getuser(), err=True)
        password = _ask_password(confirm=False)
        with connect(url, "") as anonymous:  # the login call needs no token
            secret = People(anonymous.http).login(name, password, token_name=f"cli {getpass.getuser()}").secret
    with connect(url, secret) as client:
        me = client.whoami()  # the token works
    path = save_client_config(url, secret)
    _out(me, json_out, f"logged in to {url} as {me.name} ({me.role or me.kind}); token saved in {path}")


def logout(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Revoke the token this CLI uses (the saved one, unless --token is given)."""
    with connect(server, token) as client:
        answer = People(client.http).logout()
    _out(answer, json_out, f"logged out: token {answer.id} ({answer.name}) revoked")


# ---------------------------------------------------------------- members

@member_app.command("add")
def member_add(project: ProjectArg, user: UserArg, json_out: JsonOpt = False, server: ServerOpt = None,
               token: TokenOpt = None) -> None:
    """Add a member to a project."""
    with connect(server, token) as client:
        answer = People(client.http).add_member(project, user)
    _out(answer, json_out, f"project {answer.project}: members {', '.join(answer.members) or '-'}")


@member_app.command("remove")
def member_remove(project: ProjectArg, user: UserArg, json_out: JsonOpt = False, server: ServerOpt = None,
                  token: TokenOpt = None) -> None:
    """Remove a member from a project."""
    with connect(server, token) as client:
        answer = People(client.http).remove_member(project, user)
    _out(answer, json_out, f"project {answer.project}: members {', '.join(answer.members) or '-'}")
