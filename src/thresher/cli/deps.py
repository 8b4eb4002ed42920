"""`thresher deps JOB` (what a job waits for and what waits for it) and `thresher undepend JOB ...`
(drop dependencies, which releases what only they held): thin over the client."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from thresher.cli.common import JsonOpt, ServerOpt, TokenOpt, connect, console, emit_json, fail
from thresher.cli.targets import JobArg, resolve_job
from thresher.cli.views import listing_table
from thresher.model.failure_summary import plural
from thresher.wire.dependencies import DependencyEdge, JobDependencies


def _end(job: int, layer: str | None, task: int | None, edges: int = 1) -> str:
    where = f"job {job}" + (f" layer {layer}" if layer else "")
    return where + (f" task {task}" if task else (f" ({edges} task edges)" if edges > 1 else ""))


def _row(table: Table, edge: DependencyEdge, direction: str) -> None:
    table.add_row(direction, _end(edge.waiter_job, edge.waiter_layer, edge.waiter_task, edge.edges),
                  f"{edge.kind} ({edge.mode})",
                  _end(edge.target_job, edge.target_layer, edge.target_task) + f" [{edge.target_state}]")


def deps_table(answer: JobDependencies) -> Table:
    table = listing_table("", "WAITER", "KIND", "WAITS FOR", title=f"job {answer.job_id}: "
                          + (answer.pending or "dependencies"), title_justify="left")
    for edge in answer.waits_for:
        _row(table, edge, "waits for")
    for edge in answer.waited_by:
        _row(table, edge, "waited by")
    return table


def deps(job_id: JobArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Show what a job waits for and what waits for it (and what blocks it)."""
    with connect(server, token) as client:
        answer = client.dependencies(resolve_job(client, job_id))
    if json_out:
        emit_json(answer)
    elif not (answer.waits_for or answer.waited_by):
        console.print(f"job {answer.job_id} waits for nothing, and nothing waits for it")
    else:
        console.print(deps_table(answer))


def undepend(
    job_id: JobArg,
    layer: Annotated[str | None, typer.Option("--layer", help="Only this layer's dependencies.")] = None,
    task: Annotated[int | None, typer.Option("--task", help="Only this task's dependencies.")] = None,
    on: Annotated[str | None, typer.Option("--on", metavar="JOB", help="Only the dependencies on this job "
                                                                       "(id or exact name).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dependency of the job.")] = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Drop dependencies of a job (what only they held is released)."""
    if not (all_ or layer or task or on):
        fail("say which: --layer L, --task T, --on JOB, or --all")
    with connect(server, token) as client:
        answer = client.drop_dependencies(resolve_job(client, job_id), layer=layer, task=task, all=all_,
                                          on_job=None if on is None else resolve_job(client, on))
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"job {answer.job_id}: {plural(answer.dropped, 'dependency', 'dependencies')} dropped")
