"""`thresher task ID`: one task, every attempt it had, and the last lines of its latest log.

The first place to look when a frame failed: where each try ran, how it ended (exit status, CPU, peak
memory, out of memory, reason) and what the renderer last printed, in one call. It reuses the calls of
`thresher attempts` (the task with its attempts) and `thresher log` (a tail read from the log's end).
"""

from __future__ import annotations

from typing import Annotated

import typer

from thresher.cli.common import JsonOpt, ServerOpt, TokenOpt, connect, console, emit_json
from thresher.cli.logs import pick_attempt
from thresher.cli.views import task_view

DEFAULT_LINES = 20


def task(
    task_id: Annotated[int, typer.Argument(metavar="TASK", help="Task id.", show_default=False)],
    lines: Annotated[int, typer.Option("--lines", "-n", min=0,
                                       help="Lines of the latest log to show.")] = DEFAULT_LINES,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show a task: its layer, frames, state and tries, every attempt, and the tail of its latest log."""
    with connect(server, token) as client:
        detail = client.task(task_id)
        last = pick_attempt(detail.attempts, None)
        tail = client.log_tail(last.id, lines, log_size=last.log_size) if last is not None else []
    if json_out:
        emit_json({**detail.model_dump(mode="json"), "log_tail": tail,
                   "log_tail_attempt_id": last.id if last is not None else None})
    else:
        console.print(task_view(detail, tail, last))
