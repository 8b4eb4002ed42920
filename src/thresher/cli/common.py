"""What every `thresher` command shares: connection options, JSON output and error reporting.

Errors are turned into one readable message and an exit code in one place (`ThresherGroup`), so no
command can leak a traceback and every command reports a server error the same way.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from typer.core import TyperGroup

from thresher.client.api import Thresher
from thresher.client.config import CLIENT_CONFIG_NAME, ENV_SERVER, ENV_TOKEN, resolve
from thresher.client.http import ApiError, ServerUnreachable
from thresher.client.spec import SpecError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
"""`thresher wait` on a job that does not exist: not 1, which says a job failed, nor 2, its timeout."""

console = Console(highlight=False, markup=False,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
"""Human output (tables, progress); never used when `--json` is given. Piped output is not cut at
80 columns: people grep it. No markup: what it prints holds names, reasons and output lines people and
tasks wrote (`[kick] error: cannot open [/tex/a.exr]` broke a table with a traceback); a message of
our own that wants style says `markup=True` and escapes what it quotes."""

ServerOpt = Annotated[str | None, typer.Option(
    "--server", "-s", help=f"Server URL or host:port (default: ${ENV_SERVER}, then the saved {CLIENT_CONFIG_NAME})",
    show_default=False)]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", "-t", help=f"Your token (from `thresher login`) or the admin token (default: ${ENV_TOKEN}, then "
                          f"the saved {CLIENT_CONFIG_NAME})",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


_last_settings: dict[str, str] = {}
"""Where the last `connect` got its token, for the hint shown when the server says 401."""


def connect(server: str | None, token: str | None) -> Thresher:
    """A client for the resolved server and token (argument, environment, saved config)."""
    settings = resolve(server, token)
    client = Thresher(settings.server, settings.token)
    # Remembered for the error hint when the server refuses the call for want of a token.
    _last_settings.clear()
    _last_settings.update(server=settings.server, token_source=settings.token_source)
    return client


def _plain(data: Any) -> Any:
    """Wire models as the JSON the server sent them in; lists of them alike."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_plain(item) for item in data]
    return data


def emit_json(data: Any) -> None:
    """Print JSON alone on stdout: no colours, no markup, one document."""
    sys.stdout.write(json.dumps(_plain(data), indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def emit_listing(items: list[Any], total: int | None = None) -> None:
    """A listing's `--json`: the page shape the API answers, `{"items": [...], "total": N}`, for every
    listing alike (`jobs`, `tasks` and `audit` print the server's page; the others, read whole, are one
    page of all), so a script reads `.items` whatever it listed. `total` defaults to the items' count."""
    emit_json({"items": _plain(items), "total": len(items) if total is None else total})


def err(message: str) -> None:
    """One line on stderr, without Rich markup interpretation (server text may hold brackets)."""
    typer.echo(message, err=True)


def refusal_line(kind: str, ident: int, exc: ApiError) -> str:
    """One refusal of a command acting on several things, one line each: "error: job 12 already failed:
    nothing to kill" (the server's reason names the thing already; else it is put in front), with the
    fields it names, as the dashboard's message does: "error: job 6: invalid request (priority: Input
    should be less than or equal to 1000)"."""
    detail = exc.detail
    fields = "; ".join(f"{e.get('field') or '-'}: {e.get('message', '')}" for e in exc.errors)
    if fields:
        detail = f"{detail} ({fields})"
    named = re.search(rf"\b{kind} {ident}\b", exc.detail)
    return f"error: {detail}" if named else f"error: {kind} {ident}: {detail}"


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Report an error and leave with `code`."""
    err(f"error: {message}")
    raise typer.Exit(code)


def _report_api_error(exc: ApiError) -> None:
    err(f"error: {exc.detail}")
    for item in exc.errors:
        field = item.get("field") or "-"
        err(f"  {field}: {item.get('message', '')}")
    if exc.status == 401 and _last_settings.get("token_source") == "none":
        err(f"hint: no token was given; log in with `thresher login -s SERVER`, pass --token or set "
            f"${ENV_TOKEN} (`thresher up` on this machine saves the admin token).")


class ThresherGroup(TyperGroup):
    """The command group: turns client errors into a message on stderr and an exit code.

    Usage errors stay click's (exit 2); server errors, unreachable servers and broken spec files
    exit 1 with one line each, never a traceback.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        """A group with a `list` command lists when named alone or with options only: `thresher limit`
        and `thresher project --json` are `thresher limit list` and `thresher project list --json`, as
        `thresher nodes` lists nodes. One with a `show` command shows what it is given instead of a
        command: `thresher node vm-1` is `thresher node show vm-1` (a word close to a command's name is
        left to click, which says which command was meant). `-h` still shows the group's help."""
        first = args[0] if args else None
        if "list" in self.commands and (first is None or (first.startswith("-") and first not in ("-h", "--help"))):
            args = ["list", *args]
        elif ("show" in self.commands and first is not None and not first.startswith("-")
              and first not in self.commands and not difflib.get_close_matches(first, list(self.commands))):
            args = ["show", *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            plain_value_names(command, ctx)
        return command

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        plain_value_names(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            _report_api_error(exc)
            raise typer.Exit(EXIT_ERROR) from None
        except ServerUnreachable as exc:
            err(f"error: {exc}")
            raise typer.Exit(EXIT_ERROR) from None
        except SpecError as exc:
            err(f"error: {exc}")
            raise typer.Exit(EXIT_ERROR) from None
        except BrokenPipeError:
            # `thresher jobs | head` closed the pipe: not an error worth a message.
            sys.stderr.close()
            raise typer.Exit(EXIT_ERROR) from None


def plain_value_names(command: Any, ctx: typer.Context) -> None:
    """What `-h` shows as an option's value: typer names it by its Python type, flags included, so
    `--json <bool>` read as if the flag took a value (`--json true` is then refused) and a repeatable
    `--output <list[str]>` as if it took a list. A flag shows no value; a repeatable option shows one
    (its help says it repeats). An option that names its own value keeps it. A positional argument that
    takes several (`JOB`, shown `{JOB}...` in the usage line) shows its one value's type and `...`, not
    `<list[str]>`."""
    for param in command.get_params(ctx):  # `--help` too
        if param.param_type_name == "argument" and param.nargs != 1:
            named = "..." in (param.metavar or "")  # `-- COMMAND [ARG...]` says it all
            one = "" if named else re.sub(r"^<list\[(.*)\]>$", r"<\1>...", param.display_type(ctx))
            param.display_type_rich = lambda ctx, one=one: one  # typer offers no setting for it
            continue
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(param, "multiple", False):
            param.metavar = re.sub(r"^<list\[(.*)\]>$", r"<\1>", param.display_type(ctx))
