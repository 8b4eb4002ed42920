"""The jobs list's groups (`server/dashboard/job_groups.py`): the page's jobs in runs of one group each,
with their summed task counts, and a group that goes on past the page saying so."""

from __future__ import annotations

from thresher.server.dashboard.job_groups import grouped


def _job(i: int, sequence: str | None, shot: str | None, done: int) -> dict[str, object]:
    return {"id": i, "project": "demo", "sequence": sequence, "shot": shot, "total_tasks": 4,
            "counts": {"succeeded": done, "ready": 4 - done}}


def test_runs_of_one_group_with_their_counts_and_totals() -> None:
    jobs = [_job(1, None, None, 0), _job(2, "sq010", "sh010", 4), _job(3, "sq010", "sh020", 1)]
    out = grouped(jobs, "sequence", {("demo", ""): 1, ("demo", "sq010"): 7})
    assert [(g["label"], [j["id"] for j in g["jobs"]], g["shown"], g["total"]) for g in out] == [
        ("demo / (none)", [1], 1, 1), ("demo / sq010", [2, 3], 2, 7)]
    assert out[1]["counts"] == {"succeeded": 5, "ready": 3} and out[1]["total_tasks"] == 8
    by_shot = grouped(jobs, "shot", {})
    assert [g["label"] for g in by_shot] == ["demo / (none) / (none)", "demo / sq010 / sh010", "demo / sq010 / sh020"]
    assert grouped([], "project", {}) == []
