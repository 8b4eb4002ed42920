"""`GET /jobs/{id}/failures` of a real server on both databases: failed attempts grouped by reason, with
their tasks and nodes; and the README's Python API example run against that farm."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from thresher.client import Thresher
from thresher.client.http import ApiError, HttpClient

README = Path(__file__).resolve().parents[2] / "README.md"


def _spec(frames: str = "1-3") -> dict[str, Any]:
    return {"name": "shot010_fail", "project": "demo", "layers": [
        {"name": "render", "frames": frames, "retries": 0, "args": {"command": ["false"]}}]}


def _fail_all(farm: Any, node: str, reasons: list[str]) -> None:
    """Register `node` over HTTP and fail one task per reason, as an agent would report it."""
    enrolled = farm.client(token=farm.enroll_token).post("/agent/register", {"name": node, "cores": 8,
                                                                               "memory_mb": 8192})
    agent: HttpClient = farm.client(token=enrolled["token"])
    assignments = agent.post("/agent/work?wait=0", {})["assignments"]
    assert len(assignments) == len(reasons)
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed", "exit_code": 1,
                                              "reason": reason, "log_size": 0}
                                             for a, reason in zip(assignments, reasons, strict=True)]})


def test_failures_are_grouped_by_reason_with_their_tasks_and_nodes(farm: Any) -> None:
    job = farm.api.post("/jobs", _spec("1-3"))
    task_ids = [t["id"] for t in farm.api.get(f"/jobs/{job['id']}/tasks")["items"]]
    before = farm.api.get(f"/jobs/{job['id']}/failures")
    assert before["groups"] == [] and before["failed_tasks"] == [] and before["failed_attempts"] == 0
    _fail_all(farm, "node-a", ["exit code 1", "exit status 1", "out of memory: killed (peak 2.0 GB)"])
    answer = farm.api.get(f"/jobs/{job['id']}/failures")
    assert answer["state"] == "failed" and answer["failed_tasks"] == sorted(task_ids)
    assert answer["failed_attempts"] == 3 and not answer["truncated"]
    by_reason = {g["reason"]: g for g in answer["groups"]}
    assert set(by_reason) == {"exit code 1", "out of memory"}
    assert by_reason["exit code 1"]["attempts"] == 2 and by_reason["exit code 1"]["nodes"] == ["node-a"]
    assert len(by_reason["exit code 1"]["tasks"]) == 2 and by_reason["out of memory"]["attempts"] == 1
    assert answer["summary"].startswith("3 tasks failed — 'exit code 1' x2 on node-a (tasks ")
    with pytest.raises(ApiError) as info:
        farm.api.get("/jobs/999999/failures")
    assert info.value.status == 404
    # the Python API answers the same, typed; tasks carry their last reason
    with Thresher(farm.server_url, farm.admin_token) as client:
        summary = client.failures(job["id"])
        assert summary.groups[0].reason == "exit code 1"
        reasons = {t.reason for t in client.all_tasks(job["id"])}
        assert "exit status 1" in reasons


def test_the_readme_python_example_runs_against_a_farm(farm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The five-line example of the README's "Python API" section, as written there."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    lines = [line for line in code.group(1).splitlines() if line.strip()]
    assert len(lines) <= 6
    monkeypatch.setenv("THRESHER_SERVER", farm.server_url)
    monkeypatch.setenv("THRESHER_TOKEN", farm.admin_token)
    farm.start_agent("n1")
    printed: list[str] = []
    namespace: dict[str, Any] = {"print": lambda *a: printed.append(" ".join(map(str, a)))}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert printed and "succeeded" in printed[-1]
