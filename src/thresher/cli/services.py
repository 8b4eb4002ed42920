"""Service commands: named layer defaults (`thresher service add maya --cores 8 --memory 16G --tag maya`).
Thin over the client; every listing and change prints the server's answer with `--json`.

The server checks the values (as a layer's) and that pools and limits exist; a layer naming the service
takes each default it does not set itself, at submit.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
from thresher.wire.services import Service, ServiceDefaults

service_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                          help="Services: named layer defaults (resources, tags, pools, limits, timeout, retries).")

ServiceArg = Annotated[str, typer.Argument(metavar="SERVICE", help="Service name.", show_default=False)]
CoresOpt = Annotated[int | None, typer.Option(help="Cores per task.", show_default=False)]
MemoryOpt = Annotated[str | None, typer.Option(help="Memory per task: megabytes or a size like 8G.",
                                               show_default=False)]
GpusOpt = Annotated[int | None, typer.Option(help="GPUs per task.", show_default=False)]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag nodes must have (repeat).", show_default=False)]
PoolOpt = Annotated[list[str] | None, typer.Option("--pool", help="A pool its tasks may run in (repeat).",
                                                   show_default=False)]
LimitOpt = Annotated[list[str] | None, typer.Option("--limit", metavar="NAME=UNITS",
                                                    help="A licence limit each task consumes (repeat).",
                                                    show_default=False)]
TimeoutOpt = Annotated[float | None, typer.Option(help="Seconds a task may run.", show_default=False)]
RetriesOpt = Annotated[int | None, typer.Option(help="Retries of a failed task.", show_default=False)]
ClearOpt = Annotated[list[str] | None, typer.Option(
    "--clear", metavar="FIELD", show_default=False,
    help="A default to remove: resources, resources.cores, resources.memory_mb, resources.gpus, tags, pools, "
         "limits, timeout, retries (repeat).")]


def _limits(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, sep, units = item.partition("=")
        if not sep or not name.strip():
            fail(f"--limit: give NAME=UNITS, like nuke=1, not {item!r}", 2)
        try:
            out[name.strip()] = int(units)
        except ValueError:
            fail(f"--limit {name.strip()}: units must be a whole number, not {units!r}", 2)
    return out


def _defaults(cores: int | None, memory: str | None, gpus: int | None, tags: list[str] | None,
              pools: list[str] | None, limits: list[str] | None, timeout: float | None,
              retries: int | None) -> dict[str, Any]:
    """The defaults body from the options given (the server checks every value)."""
    resources = {k: v for k, v in (("cores", cores), ("memory", memory), ("gpus", gpus)) if v is not None}
    given: dict[str, Any] = {"resources": resources or None, "tags": tags or None, "pools": pools or None,
                             "limits": _limits(limits) if limits else None, "timeout": timeout, "retries": retries}
    return {k: v for k, v in given.items() if v is not None}


def describe(defaults: ServiceDefaults) -> str:
    """A service's defaults on one line: `cores=8 memory_mb=16384 tags=maya limits=maya:1 retries=3`."""
    parts: list[str] = []
    for name, value in defaults.stored().items():
        if isinstance(value, dict) and name == "resources":
            parts += [f"{k}={v}" for k, v in value.items()]
        elif isinstance(value, dict):
            parts.append(f"{name}=" + ",".join(f"{k}:{v}" for k, v in value.items()))
        elif isinstance(value, list):
            parts.append(f"{name}=" + ",".join(value))
        else:
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts) or "(no defaults)"


def services_table(services: list[Service]) -> Table:
    table = listing_table("SERVICE", "DEFAULTS", **counted(
        len(services), "service", "no services yet: `thresher service add NAME --cores N ...` adds one"))
    for service in services:
        table.add_row(service.name, describe(service.defaults))
    return table


def _out(answer: Service, json_out: bool, text: str) -> None:
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"{text}: {describe(answer.defaults)}")


@service_app.command("add")
def service_add(name: ServiceArg, cores: CoresOpt = None, memory: MemoryOpt = None, gpus: GpusOpt = None,
                tag: TagOpt = None, pool: PoolOpt = None, limit: LimitOpt = None, timeout: TimeoutOpt = None,
                retries: RetriesOpt = None, json_out: JsonOpt = False, server: ServerOpt = None,
                token: TokenOpt = None) -> None:
    """Add a service: the defaults layers naming it take (their own values win)."""
    body = _defaults(cores, memory, gpus, tag, pool, limit, timeout, retries)
    with connect(server, token) as client:
        answer = client.add_service(name, body)
    _out(answer, json_out, f"service {answer.name} added")


@service_app.command("list")
def service_list(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List services and their defaults."""
    with connect(server, token) as client:
        answer = client.services()
    if json_out:
        emit_listing(answer)
    else:
        console.print(services_table(answer))


@service_app.command("show")
def service_show(name: ServiceArg, json_out: JsonOpt = False, server: ServerOpt = None,
                 token: TokenOpt = None) -> None:
    """One service and its defaults."""
    with connect(server, token) as client:
        answer = client.service(name)
    _out(answer, json_out, f"service {answer.name}")


@service_app.command("set")
def service_set(name: ServiceArg, cores: CoresOpt = None, memory: MemoryOpt = None, gpus: GpusOpt = None,
                tag: TagOpt = None, pool: PoolOpt = None, limit: LimitOpt = None, timeout: TimeoutOpt = None,
                retries: RetriesOpt = None, clear: ClearOpt = None, json_out: JsonOpt = False,
                server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Change a service's defaults: the options given replace its values; `--clear` removes one.

    Jobs already submitted keep what they took."""
    body = _defaults(cores, memory, gpus, tag, pool, limit, timeout, retries)
    with connect(server, token) as client:
        answer = client.set_service(name, body, clear=tuple(clear or ()))
    _out(answer, json_out, f"service {answer.name}")


def service_remove(name: ServiceArg, json_out: JsonOpt = False, server: ServerOpt = None,
                   token: TokenOpt = None) -> None:
    """Remove a service. Jobs that took its defaults keep them; a new layer naming it is refused."""
    with connect(server, token) as client:
        answer = client.remove_service(name)
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"service {answer.name} removed")


service_app.command("remove")(service_remove)
service_app.command("rm", hidden=True)(service_remove)
