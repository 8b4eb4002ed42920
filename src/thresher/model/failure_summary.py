"""Why a job failed, in one line: its failed attempts grouped by what went wrong.

Reasons are written per attempt (`exit code 1`, `out of memory: ... (peak 3.1 GB); retrying with 8192 MB`,
`missing output: /r/shot_0012.exr`), so two attempts that failed the same way rarely have the same text.
`normalize_reason` keeps what they have in common; `group_failures` counts them by it, and
`failure_line` says it the way `thresher job`/`thresher wait` and the job page show it. Pure functions,
so the CLI, the server and the dashboard say it alike and tests need no farm.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from thresher.model.states import FINAL_JOB_STATES

NO_REASON = "no reason given"
MAX_REASON_CHARS = 120
SHOWN_TASKS = 8
SHOWN_NODES = 3
SHOWN_GROUPS = 3

_EXIT = re.compile(r"^(?:exit(?:ed)?(?: with)?(?: status| code)?|return(?:ed)? code)\s*[:=]?\s*(-?\d+)\b", re.I)
_FIRST_WORDS = ("out of memory", "missing output", "empty output", "stale output", "cannot start",
                "working directory does not exist", "timed out", "timeout")
_NUMBER = re.compile(r"\d+")
LAST_LINE = " (last line: "  # what the agent adds to an exit's reason (`runner.exit_reason`), closed by ")"
SHOWN_LAST_LINE = 100  # characters of a group's last line in the one-line summary
_SPACE = re.compile(r"\s+")
OWN_FAILURES = "its own failures: "  # where a blocked job's line (`blocked_line`) says its own


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 task`, `3 tasks` (`many` for words that do not just take an s)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def normalize_reason(reason: str | None) -> str:
    """What failures of one kind share: `exit code 1` whatever the wording of the status, `out of memory`
    without its peak, `missing output` without its path; other text with its numbers as `N`."""
    text = _SPACE.sub(" ", (reason or "").strip())
    if not text:
        return NO_REASON
    text = text.partition(LAST_LINE)[0]  # what the task printed last is not what its failures share
    text = text.split("; ", 1)[0]  # the server's notes after it: "; retrying with 8192 MB", "; lost 3 times"
    exit_status = _EXIT.match(text)
    if exit_status:
        return f"exit code {int(exit_status.group(1))}"
    lower = text.lower()
    for words in _FIRST_WORDS:
        if lower.startswith(words):
            return words
    if lower.startswith("killed by signal"):
        return text[:MAX_REASON_CHARS]
    text = _NUMBER.sub("N", text)
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 1] + "…"


@dataclass(frozen=True)
class FailedAttempt:
    """One failed attempt, as much of it as the summary needs."""

    task_id: int
    node: str
    reason: str | None


@dataclass
class FailureGroup:
    """Failed attempts that failed the same way: how many, of which tasks, on which nodes (most first)."""

    reason: str
    attempts: int = 0
    tasks: list[int] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    example: str | None = None


def group_failures(failed: Iterable[FailedAttempt]) -> list[FailureGroup]:
    """Failed attempts grouped by normalised reason, the biggest group first (then by reason)."""
    groups: dict[str, FailureGroup] = {}
    tasks: dict[str, set[int]] = {}
    nodes: dict[str, Counter[str]] = {}
    for attempt in failed:
        key = normalize_reason(attempt.reason)
        group = groups.setdefault(key, FailureGroup(reason=key, example=attempt.reason or None))
        group.attempts += 1
        tasks.setdefault(key, set()).add(attempt.task_id)
        nodes.setdefault(key, Counter())[attempt.node] += 1
    for key, group in groups.items():
        group.tasks = sorted(tasks[key])
        group.nodes = [name for name, _ in sorted(nodes[key].items(), key=lambda kv: (-kv[1], kv[0]))]
    return sorted(groups.values(), key=lambda g: (-g.attempts, g.reason))


def _some(items: list[str], most: int) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def last_line(reason: str | None) -> str | None:
    """The last line the task printed, as its failed attempt's reason quotes it, or None."""
    said = (reason or "").partition(LAST_LINE)[2]
    return (said[:said.rfind(")")] if ")" in said else said) or None


def group_words(group: FailureGroup) -> str:
    """`'exit code 1' x3 on node-a (tasks 4, 5, 6), last line: "ERROR: cannot open /tex/a.exr"` (the
    last line of the group's first attempt, where the agent quoted one)."""
    where = f" on {_some(group.nodes, SHOWN_NODES)}" if group.nodes else ""
    label = "task" if len(group.tasks) == 1 else "tasks"
    words = (f"'{group.reason}' x{group.attempts}{where} "
             f"({label} {_some([str(t) for t in group.tasks], SHOWN_TASKS)})")
    said = last_line(group.example)
    if said:
        words += f', last line: "{said if len(said) <= SHOWN_LAST_LINE else said[:SHOWN_LAST_LINE - 1] + "…"}"'
    return words


def failure_line(failed_tasks: int, groups: list[FailureGroup], job_state: str | None = None) -> str:
    """`3 tasks failed — 'exit code 1' x3 on node-a (tasks 4, 5, 6)`; the three biggest groups.

    With no task failed now (every failed attempt's task was retried, and succeeded or runs again, or was
    skipped) the line must not read as a failure: a succeeded job that once said "0 tasks failed — ..."
    looked failed. It says what happened instead: `no task failed in the end; 2 attempts failed before
    their tasks were retried or skipped: ...` (`no task is failed now` while `job_state` is not final)."""
    if not groups:
        return (f"{plural(failed_tasks, 'task')} failed — no failed attempts recorded" if failed_tasks
                else "no task failed: no failed attempts recorded")
    words = "; ".join(group_words(g) for g in groups[:SHOWN_GROUPS])
    if len(groups) > SHOWN_GROUPS:
        words += f"; and {plural(len(groups) - SHOWN_GROUPS, 'other reason')}"
    if failed_tasks:
        return f"{plural(failed_tasks, 'task')} failed — {words}"
    attempts = sum(g.attempts for g in groups)
    finished = job_state is None or job_state in FINAL_JOB_STATES
    head = "no task failed in the end" if finished else "no task is failed now"
    whose = "its task was" if attempts == 1 else "their tasks were"
    return f"{head}; {plural(attempts, 'attempt')} failed before {whose} retried or skipped: {words}"


def blocked_line(blocker: str | None, own: str | None, upstream: Iterable[tuple[int, str, str]]) -> str:
    """A blocked job's line: what blocks it, then the failures of each job that does (`upstream`: its id,
    state and line), then its own failures if it has any: `job 4 failed; job 4 failed: 1 task failed —
    'exit code 1' x1 on n1 (task 7)`. A blocked job has usually failed nothing itself, and "no task
    failed: no failed attempts recorded" read as if nothing was wrong."""
    parts = [blocker or "a dependency failed"]
    parts += [f"job {job_id} {state}: {line}" for job_id, state, line in upstream]
    if own:
        parts.append(f"{OWN_FAILURES}{own}")
    return "; ".join(parts)
