"""The jobs list grouped by project, sequence or shot (`/jobs?group=...`), the way a studio organises its
work: a header row per group (its name, how many jobs, their progress) above its jobs.

The page is still one page of jobs with the list's filters and paging (`queries/views.page_of_jobs`
orders it by the group's columns first, so a group's jobs are together); a group that goes on to the
next page says so ("3 of 7 jobs", the count of every job it holds from `jobs_per_group`). Its progress
is that of the jobs shown, from their task counts; the live refresh re-renders the list as it does
ungrouped.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy import Connection

from thresher.server.db.queries import views as q

GROUPS = tuple(q.JOB_GROUPS)
_NAMES = ("project", "sequence", "shot")


def _key(job: Mapping[str, Any], group: str) -> tuple[str, ...]:
    return tuple(job.get(name) or "" for name in _NAMES[:len(q.JOB_GROUPS[group])])


def label(key: tuple[str, ...]) -> str:
    """"demo / sq010 / sh020"; a job without a sequence or shot is in "(none)" of it."""
    return " / ".join(part or "(none)" for part in key)


def totals(conn: Connection, group: str, filters: Mapping[str, Any]) -> dict[tuple[str, ...], int]:
    """Every group's number of jobs matching the list's filters (one GROUP BY)."""
    rows = conn.execute(q.jobs_per_group(group=group, **filters)).all()
    return {tuple(value or "" for value in row[:-1]): int(row[-1]) for row in rows}


def grouped(items: Iterable[Mapping[str, Any]], group: str,
            counts_all: Mapping[tuple[str, ...], int]) -> list[dict[str, Any]]:
    """The page's jobs (as the listing dumps them) in their groups, in page order: each group with its
    `label`, `jobs`, `shown`, `total` (jobs it holds on every page), and summed task `counts` and
    `total_tasks` for its progress bar."""
    out: list[dict[str, Any]] = []
    for job in items:
        key = _key(job, group)
        if not out or out[-1]["key"] != key:
            out.append({"key": key, "label": label(key), "jobs": [], "counts": {}, "total_tasks": 0})
        box = out[-1]
        box["jobs"].append(job)
        box["total_tasks"] += job.get("total_tasks") or 0
        for state, n in (job.get("counts") or {}).items():
            box["counts"][state] = box["counts"].get(state, 0) + (n or 0)
    for box in out:
        box["shown"] = len(box["jobs"])
        box["total"] = max(box["shown"], counts_all.get(box["key"], box["shown"]))
    return out
