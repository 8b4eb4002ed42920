"""Which jobs a steering command acts on: ids, names or globs (`thresher kill 3 4 'shot010*'`); which one
a command on one job means (`resolve_job`: an id or an exact name).

A number is a job id. Anything else is a job name, or a glob of names (`*`, `?`, `[...]`), looked up in
the job listing (the server's `name` filter narrows it to names holding the glob's longest literal part,
then `fnmatch` decides). A word that matches no job is refused; a name or glob that matches several jobs
acts on them only with `--yes` (a glob typed a little too wide must not kill a show's work), and the
refusal lists what it matched.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Annotated, Any

import typer

from thresher.cli.common import emit_json, err, fail
from thresher.client.api import Thresher
from thresher.model.failure_summary import plural
from thresher.wire.jobs import JobSummary

JobsArg = Annotated[list[str], typer.Argument(
    metavar="JOB", show_default=False,
    help="Job ids, names or globs of names (quote them: 'shot010*'); several act on each in turn.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act on every job a name or glob matches.")]

_GLOB = re.compile(r"[*?\[\]]")
_GLOB_CHAR = re.compile(r"([*?\[])")  # escaped as [*], [?], [[] to match itself
LISTED = 10
PAGE = 1000


def _literal(pattern: str) -> str:
    """The longest part of a glob without wildcards: what the server's `name contains` filter can use."""
    return max(_GLOB.split(pattern), key=len)


def _named(client: Thresher, pattern: str) -> list[JobSummary]:
    found: list[JobSummary] = []
    needle = _literal(pattern) or None
    while True:
        answer = client.jobs(name=needle, limit=PAGE, offset=len(found), sort="id")
        found.extend(answer.items)
        if not answer.items or len(found) >= answer.total:
            break
    return [job for job in found if fnmatchcase(job.name, pattern)]


def is_glob(word: str) -> bool:
    """Whether a word is a glob of names (may match any number of jobs), not an id or an exact name."""
    return bool(_GLOB.search(word.strip()))


def emit_for_words(words: list[str], items: list[Any]) -> None:
    """`--json` of a command on jobs: its shape follows the words, never what they matched. One object for
    one id or exact name, nothing when it named no job; else a list of those found (an exact name two jobs
    share gives both), so `thresher kill 'h*' --json` stays a list when a second job matches."""
    if len(words) != 1 or is_glob(words[0]) or len(items) > 1:
        emit_json(items)
    elif items:
        emit_json(items[0])


def resolve_jobs(client: Thresher, words: list[str], yes: bool = False,
                 unmatched: list[str] | None = None) -> list[int]:
    """The ids the words name, in the order given, each once. A word that matches no job is refused, or,
    given `unmatched` (the reading commands, which show the jobs found), said on stderr and added to it."""
    ids: list[int] = []
    for word in words:
        text = word.strip()
        if text.isdigit():
            matched = [int(text)]
        else:
            jobs = _named(client, text)
            if not jobs:
                kind = "glob" if _GLOB.search(text) else "name"
                if unmatched is None:
                    fail(f"no job matches the {kind} {text!r}")
                err(f"error: no job matches the {kind} {text!r}")
                unmatched.append(text)
                continue
            if len(jobs) > 1 and not yes:
                listed = ", ".join(f"{j.id} {j.name}" for j in jobs[:LISTED])
                more = f" and {len(jobs) - LISTED} more" if len(jobs) > LISTED else ""
                fail(f"{text!r} matches {plural(len(jobs), 'job')} ({listed}{more}): give ids, or --yes for all")
            matched = [j.id for j in jobs]
        ids.extend(i for i in matched if i not in ids)
    return ids


JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Job id or exact name.", show_default=False)]
"""What every command on one job takes (`tasks`, `deps`, `urgent`...; `log --job`, `undepend --on`)."""


def resolve_job(client: Thresher, word: str) -> int:
    """The one job a command on one job means: an id, or the exact name of one job (a glob's characters
    are the name's own here). A name several jobs have is refused with their ids: which one was meant is
    the person's to say."""
    text = word.strip()
    if text.isdigit():
        return int(text)
    jobs = _named(client, _GLOB_CHAR.sub(r"[\1]", text))
    if not jobs:
        hint = " (one job is an id or an exact name, not a glob)" if _GLOB.search(text) else ""
        fail(f"no job is named {text!r}{hint}")
    if len(jobs) > 1:
        more = f" and {len(jobs) - LISTED} more" if len(jobs) > LISTED else ""
        fail(f"{len(jobs)} jobs are named {text!r} (ids {', '.join(str(j.id) for j in jobs[:LISTED])}{more}): "
             f"give an id")
    return jobs[0].id
