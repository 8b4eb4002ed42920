"""`thresher log`: print or follow the log of a task's attempt; `thresher attempts`: list a task's attempts.

People think in tasks ("frame 12 failed, show me why"), so the argument is a task id and the latest
attempt is shown; earlier tries stay reachable with `--attempt N`, or by attempt id as `a<ID>`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from thresher.cli.common import JsonOpt, ServerOpt, TokenOpt, connect, console, emit_json, emit_listing, fail
from thresher.cli.targets import resolve_job
from thresher.cli.views import attempts_table
from thresher.client.api import Thresher
from thresher.wire.jobs import Attempt

FIRST_ATTEMPT_POLL_S = 0.3


def parse_log_target(value: str) -> tuple[str, int]:
    """`123` -> ("task", 123); `a123` or `attempt:123` -> ("attempt", 123)."""
    text = value.strip().lower()
    kind = "task"
    for prefix in ("attempt:", "a"):
        if text.startswith(prefix):
            kind, text = "attempt", text[len(prefix):]
            break
    else:
        if text.startswith("task:"):
            text = text[len("task:"):]
    if not text.isdigit():
        raise typer.BadParameter(f"{value!r} is not a task id (123) or an attempt id (a123)",
                                 param_hint="TASK_OR_ATTEMPT")
    return kind, int(text)


def pick_attempt(attempts: list[Attempt], number: int | None) -> Attempt | None:
    """The attempt with the given try `number`, or the latest one."""
    if not attempts:
        return None
    if number is None:
        return max(attempts, key=lambda a: (a.number, a.id))
    return next((att for att in attempts if att.number == number), None)


def _find_attempt_id(client: Thresher, task_id: int, number: int | None, follow: bool) -> int:
    """The attempt to show; when following a task that has not started yet, wait for its first run."""
    while True:
        attempts = client.all_attempts(task_id)
        chosen = pick_attempt(attempts, number)
        if chosen is not None:
            return chosen.id
        if number is not None and attempts:
            numbers = ", ".join(str(a.number) for a in attempts)
            fail(f"task {task_id} has no attempt {number} (it has {numbers})")
        if not follow:
            fail(f"task {task_id} has not run yet: no log")
        time.sleep(FIRST_ATTEMPT_POLL_S)


def attempts(task_id: Annotated[int, typer.Argument(metavar="TASK", help="Task id.", show_default=False)],
              json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List the attempts of a task: where each ran, how it ended, its peak memory (and out of memory)."""
    with connect(server, token) as client:
        found = client.all_attempts(task_id)
    if json_out:
        emit_listing(found)
    else:
        console.print(attempts_table(found))


def _log_json(client: Thresher, attempt_id: int, follow: bool) -> None:
    """The log as JSON: one document, or (following) one JSON line per piece as it arrives (NDJSON)."""
    if follow:
        for piece in client.follow_log(attempt_id):
            sys.stdout.write(json.dumps({"attempt_id": attempt_id, "data": piece}) + "\n")
            sys.stdout.flush()
        return
    text = "".join(client.log_from(attempt_id, 0))
    emit_json({"attempt_id": attempt_id, "log": text})


def task_of_frame(client: Thresher, job_id: int, frame: int, layer: str | None) -> int:
    """The task of job `job_id` that renders `frame` (of `layer`); a clear error when none or several do."""
    found = client.tasks(job_id, layer=layer, frame=frame, limit=50).items
    if not found:
        fail(f"job {job_id} has no task rendering frame {frame}" + (f" in layer {layer!r}" if layer else ""))
    if len(found) > 1:
        which = ", ".join(f"{t.id} (layer {t.layer}" + (f", {_part(t.part)}" if t.part else "") + ")" for t in found)
        fail(f"frame {frame} of job {job_id} is in {len(found)} tasks: {which}; "
             + ("give a task id" if len({t.layer for t in found}) == 1 else "pick one with --layer, or give a task id"))
    return found[0].id


def _part(part: dict[str, Any]) -> str:
    """A task's part as the job page's Go to frame says it: "tile 1,0" or "wedge 64"."""
    if "tile" in part:
        return "tile " + ",".join(str(n) for n in part["tile"])
    return f"wedge {json.dumps(part.get('wedge'))}"


def log(
    target: Annotated[str | None, typer.Argument(
        metavar="TASK_OR_ATTEMPT", show_default=False,
        help="Task id (its latest attempt), or attempt id written a123; or none with --job and --frame.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the attempt ends.")] = False,
    attempt: Annotated[int | None, typer.Option("--attempt", "-a", min=1,
                                                help="Which try of the task (1 = first).")] = None,
    job: Annotated[str | None, typer.Option("--job", "-j", metavar="JOB",
                                            help="With --frame: the job (id or exact name).")] = None,
    frame: Annotated[int | None, typer.Option("--frame", help="The task of --job that renders this frame.")] = None,
    layer: Annotated[str | None, typer.Option("--layer", "-l",
                                              help="With --frame: the layer, where several render it.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print {attempt_id, log} as one JSON document; with --follow one {attempt_id, data} "
                       "line per piece.")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print the log of a task's latest attempt (or of the given one); `--job 12 --frame 1042` finds the task."""
    by_frame = frame is not None or job is not None
    if by_frame and (target is not None or frame is None or job is None):
        raise typer.BadParameter("--job and --frame go together, instead of a task or attempt id",
                                 param_hint="--frame")
    if not by_frame and target is None:
        raise typer.BadParameter("give a task id, an attempt id (a123), or --job and --frame",
                                 param_hint="TASK_OR_ATTEMPT")
    if not by_frame and layer is not None:
        raise typer.BadParameter("--layer goes with --job and --frame", param_hint="--layer")
    kind, number = parse_log_target(target) if target is not None else ("task", 0)
    with connect(server, token) as client:
        if job is not None and frame is not None:
            number = task_of_frame(client, resolve_job(client, job), frame, layer)
        if kind == "attempt":
            if attempt is not None:
                raise typer.BadParameter("--attempt goes with a task id, not an attempt id")
            attempt_id = number
        else:
            attempt_id = _find_attempt_id(client, number, attempt, follow)
        out = sys.stdout
        if json_out:
            _log_json(client, attempt_id, follow)
        elif follow:
            for piece in client.follow_log(attempt_id):
                out.write(piece)
                out.flush()
        else:
            offset = 0
            while True:
                part = client.log(attempt_id, offset=offset)
                out.write(part.data)
                if not part.data or part.next_offset <= offset:
                    break
                offset = part.next_offset
            out.flush()
