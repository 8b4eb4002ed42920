"""Keeping jobs and data in check (`server/retention.py`): `thresher archive`, `thresher delete` and
`thresher node remove`. Only finished jobs are archived or deleted; a filter (`--state`, `--older-than`,
`--project`) may match thousands of jobs, so `delete` asks for `--yes` with one."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from thresher.cli.common import JsonOpt, ServerOpt, TokenOpt, connect, emit_json, fail
from thresher.cli.nodes import NodeArg, node_app
from thresher.cli.targets import resolve_jobs
from thresher.model.failure_summary import plural
from thresher.wire.retention import JobsChanged

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` in seconds."""
    found = _AGE.match(text.lower())
    if not found:
        raise typer.BadParameter("use a number and a unit: 30d, 12h, 90m, 45s, 2w", param_hint="--older-than")
    return float(found.group(1)) * _UNITS[found.group(2)]


JobsOpt = Annotated[list[str] | None, typer.Argument(
    metavar="JOB", show_default=False, help="Job ids, names or globs; or none, with a filter.")]
StateOpt = Annotated[list[str] | None, typer.Option(
    "--state", help="Finished jobs in this state: succeeded, failed, killed (repeat for several).")]
OlderOpt = Annotated[str | None, typer.Option("--older-than", help="Finished at least this long ago: 30d, 12h.")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Jobs of this project.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act on every job a filter, name or glob matches.")]


def _run(action: str, words: list[str] | None, state: list[str] | None, older: str | None, project: str | None,
         yes: bool, json_out: bool, server: str | None, token: str | None, **extra: Any) -> None:
    where: dict[str, Any] = {"state": state, "project": project,
                             "older_than_s": parse_age(older) if older else None, **extra}
    filtered = any(v is not None for k, v in where.items() if k != "archived")
    if words and filtered:
        fail("give jobs or a filter (--state, --older-than, --project), not both")
    if not words and not filtered:
        fail("give jobs, or a filter: --state, --older-than, --project")
    if filtered and action == "delete" and not yes:
        fail("a filter may match many jobs: add --yes to delete every finished job it matches")
    with connect(server, token) as client:
        method = client.archive_jobs if action == "archive" else client.delete_jobs
        answer: JobsChanged
        if words:
            answer = method(resolve_jobs(client, words, yes))
        else:
            answer = _every(method, where)
    if json_out:
        emit_json(answer)
        return
    done = "archived" if action == "archive" else "deleted"
    for job_id in answer.already:  # archiving again does nothing (exit 0: the job is as asked, archived)
        typer.echo(f"job {job_id} was already archived")
    if answer.waited_for:
        typer.echo(f"left as they are, as unfinished jobs wait for them to succeed (thresher deps JOB): "
                   f"{', '.join(map(str, answer.waited_for))}", err=True)
    if answer.count or not answer.already:
        listed = ", ".join(map(str, answer.jobs[:20])) + (" ..." if answer.count > 20 else "")
        typer.echo(f"{plural(answer.count, 'job')} {done}" + (f": {listed}" if answer.count else ""))


def _every(method: Any, where: dict[str, Any]) -> JobsChanged:
    """A filter's jobs, over as many calls as the server needs (each acts on at most 5,000)."""
    ids: list[int] = []
    waited_for: list[int] = []
    while True:
        answer: JobsChanged = method(**where)
        ids.extend(answer.jobs)
        waited_for = waited_for or answer.waited_for
        if not answer.more or not answer.jobs:
            return JobsChanged(jobs=sorted(ids), count=len(ids), waited_for=waited_for)


def archive(jobs: JobsOpt = None, state: StateOpt = None, older_than: OlderOpt = None, project: ProjectOpt = None,
            yes: YesOpt = False, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Archive finished jobs: out of the listings, statistics kept, tasks, attempts and logs deleted.

    `thresher jobs --archived` shows them."""
    _run("archive", jobs, state, older_than, project, yes, json_out, server, token)


def delete(jobs: JobsOpt = None, state: StateOpt = None, older_than: OlderOpt = None, project: ProjectOpt = None,
           archived: Annotated[bool | None, typer.Option("--archived/--not-archived",
                                                         help="Only archived jobs, or only those not.")] = None,
           yes: YesOpt = False, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Delete finished jobs with their tasks, attempts, logs and dependencies (a filter needs --yes)."""
    _run("delete", jobs, state, older_than, project, yes, json_out, server, token, archived=archived)


@node_app.command("remove")
def remove(name: NodeArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Remove a node that is down from the farm; its attempts keep its name."""
    with connect(server, token) as client:
        answer = client.remove_node(name)
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"node {answer.name} removed from the farm")
