"""Job commands that read: `job`, `why` and `wait`, each over the same targets as the steering commands
(`thresher wait 3 4 'shot010*'`: ids, names, globs; `cli/targets.py`).

Reading never changes the farm, so a name or glob that matches several jobs shows (or waits for) them
all without `--yes`. A job the server does not know (or a name or glob that matches none) is reported on
stderr and the others still shown. `--json`'s shape follows the words, never what they matched: one id or
exact name prints one object (nothing, if there is no such job), a glob or several words a list of the
jobs found, so `thresher job 'h*' --json` stays a list when a second job matches.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.text import Text

from thresher.cli.common import EXIT_NOT_FOUND, JsonOpt, ServerOpt, TokenOpt, connect, console, err
from thresher.cli.targets import JobsArg, emit_for_words, resolve_jobs
from thresher.cli.views import failures_view, job_view
from thresher.client.api import Thresher
from thresher.client.http import ApiError
from thresher.model.failure_summary import OWN_FAILURES
from thresher.model.states import JobState
from thresher.wire.jobs import FailureSummary, Job

EXIT_WAIT_TIMEOUT = 2


def failure_summary(client: Thresher, job: Job) -> FailureSummary | None:
    """Why a job that failed (or is blocked, or stopped at its failure limit) failed; None for a job that did
    not fail, or from a server without `/jobs/{id}/failures` (the plain state is said then)."""
    if job.state not in (JobState.FAILED, JobState.BLOCKED) and not job.stop_reason and not job.counts.failed:
        return None
    try:
        return client.failures(job.id)
    except ApiError:
        return None


def _jobs(client: Thresher, words: list[str]) -> tuple[list[Job], bool]:
    """The jobs the words name, read once each; and whether one of them could not be read."""
    found: list[Job] = []
    unmatched: list[str] = []
    missing = False
    for job_id in resolve_jobs(client, words, yes=True, unmatched=unmatched):
        try:
            found.append(client.job(job_id))
        except ApiError as exc:
            missing = True
            err(f"error: job {job_id}: {exc.detail}")
    return found, missing or bool(unmatched)


def job(
    job_ids: JobsArg,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show jobs and the progress of their layers (a failed one ends with why it failed)."""
    with connect(server, token) as client:
        answers, missing = _jobs(client, job_ids)
        summaries = [None if json_out else failure_summary(client, answer) for answer in answers]
    if json_out:
        emit_for_words(job_ids, answers)
    for n, (answer, summary) in enumerate(zip(answers, summaries, strict=True) if not json_out else []):
        if n:
            console.print(Text(""))
        console.print(job_view(answer))
        if summary is not None:
            console.print(Text(""))
            console.print(failures_view(summary))
    if missing:
        raise typer.Exit(1)


def _why_lines(answer: Job) -> list[str]:
    reasons = {layer.name: layer.pending for layer in answer.layers if layer.pending}
    if not answer.pending and not reasons:
        return [f"job {answer.id} ({answer.state}): nothing waits"]
    head = (f"job {answer.id} ({answer.state}): {answer.pending}" if answer.pending
            else f"job {answer.id} ({answer.state}), layers still waiting:")
    return [head, *(f"  {name}: {reason}" for name, reason in reasons.items())]


def why(
    job_ids: JobsArg,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Say why jobs (and each of their layers) are not running now."""
    with connect(server, token) as client:
        answers, missing = _jobs(client, job_ids)
    if json_out:
        emit_for_words(job_ids, [{"job_id": a.id, "state": a.state, "pending": a.pending,
                         "layers": {layer.name: layer.pending for layer in a.layers if layer.pending}}
                        for a in answers])
    else:
        for answer in answers:
            for line in _why_lines(answer):
                console.print(line)
    if missing:
        raise typer.Exit(1)


def _say_final(client: Thresher, final: Job) -> None:
    """The line(s) `wait` ends a job with: its state, why it failed, or what failed upstream of it."""
    summary = failure_summary(client, final)
    if final.state == JobState.BLOCKED:
        typer.echo(f"job {final.id} {final.pending or final.state}")
        for dep in summary.upstream if summary is not None else []:  # job, layer and task edges alike
            typer.echo(f"  job {dep.job_id} {dep.state}: {dep.summary}")
        if summary is not None and summary.failed_attempts:
            own = summary.summary.partition(OWN_FAILURES)[2] or summary.summary
            typer.echo(f"  {OWN_FAILURES}{own}")
    elif summary is not None:
        typer.echo(f"job {final.id} {final.state}: {summary.summary}")
    else:
        typer.echo(f"job {final.id} {final.state}")


def wait(
    job_ids: JobsArg,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up after this many seconds "
                                                                     "(for all the jobs together).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; use the exit code.")] = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Wait for jobs to finish: exit 0 if all succeeded, 1 if one failed, 2 on timeout, 3 if one is unknown.

    Exit 1 when a job failed or was killed, and when it is blocked by a dependency that failed (the reason
    is printed). Each job's end is printed in the order the jobs were named. A job that does not exist (an
    id the server does not know, a name or glob that matches none) is said on stderr and the others are
    still waited for; the exit code is then 3 whatever they ended as, so a script tells a typo from a
    failed render."""
    deadline = None if timeout is None else time.monotonic() + timeout
    finals: list[Job] = []
    unmatched: list[str] = []
    with connect(server, token) as client:
        ids = resolve_jobs(client, job_ids, yes=True, unmatched=unmatched)
        for job_id in ids:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                final = client.wait(job_id, timeout=left)
            except TimeoutError as exc:
                if not quiet:  # the client counts from its own start; say the whole wait
                    err(f"timeout: {str(exc).split(' after ')[0]} after {timeout:g} s")
                raise typer.Exit(EXIT_WAIT_TIMEOUT) from None
            except ApiError as exc:
                if exc.status != 404:
                    raise
                err(f"error: {exc.detail}")  # as a name that matches none is said, --quiet or not
                unmatched.append(str(job_id))
                continue
            finals.append(final)
            if not quiet and not json_out:
                _say_final(client, final)
    if json_out:
        emit_for_words(job_ids, finals)
    if unmatched:
        raise typer.Exit(EXIT_NOT_FOUND)
    raise typer.Exit(0 if all(f.state == JobState.SUCCEEDED for f in finals) else 1)
