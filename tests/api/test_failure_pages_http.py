"""The dashboard says why a job failed (above the task grid), and a failed task's page previews only the
files its own attempt wrote, not what a later job wrote to the same path. A real server on both databases."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx


def _session(farm: Any) -> httpx.Client:
    client = httpx.Client(base_url=farm.server_url, timeout=10, follow_redirects=False)
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"token": farm.admin_token, "csrf": nonce, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def test_a_failed_tasks_page_previews_only_what_its_attempt_wrote(farm: Any, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out"
    out.mkdir()
    job_id = farm.api.post("/jobs", {"name": "shot010", "layers": [{"name": "r", "frames": "1", "retries": 0, "args": {
        "command": ["false"], "outputs": [str(out / "f.####.png")]}}]})["id"]
    enrolled = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "node-a", "cores": 2,
                                                                               "memory_mb": 2048})
    agent = farm.client(token=enrolled["token"])
    (work,) = agent.post("/agent/work?wait=0", {})["assignments"]
    Image.new("RGB", (64, 32), (200, 10, 10)).save(out / "f.0001.png")  # written while the attempt runs
    agent.post("/agent/finish", {"reports": [{"attempt_id": work["attempt_id"], "status": "failed", "exit_code": 1,
                                              "reason": "exit code 1", "log_size": 0}]})
    (task,) = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    assert task["state"] == "failed" and task["reason"] == "exit code 1"
    client = _session(farm)
    thumb = f"/ui/thumb/{task['id']}/0"
    assert f'src="{thumb}"' in client.get(f"/tasks/{task['id']}").text
    assert client.get(thumb).status_code == 200

    # a later job writes the same path: this task's page no longer shows it as its output
    later = time.time() + 60
    os.utime(out / "f.0001.png", (later, later))
    page = client.get(f"/tasks/{task['id']}").text
    assert f'src="{thumb}"' not in page and "not from this attempt" in page
    assert client.get(thumb).status_code == 404
    # nor a file left there before the attempt started
    earlier = time.time() - 3600
    os.utime(out / "f.0001.png", (earlier, earlier))
    assert f'src="{thumb}"' not in client.get(f"/tasks/{task['id']}").text

    # the job page says why it failed, above the grid, as `thresher job` does
    job_page = client.get(f"/jobs/{job_id}").text
    assert "Why it failed" in job_page
    assert "1 task failed — &#39;exit code 1&#39; x1 on node-a (task " in job_page
    assert job_page.index("Why it failed") < job_page.index('id="task-grid"')
    client.close()


def test_a_report_whose_reason_holds_a_nul_is_kept_and_the_page_quotes_the_last_line(farm: Any) -> None:
    """A node's reason is kept whatever it holds (PostgreSQL's text holds no NUL: the report was refused
    with 422, the node dropped it, and the task ran again); the job page says what the task printed last."""
    job_id = farm.api.post("/jobs", {"name": "shot020", "layers": [{"name": "r", "frames": "1", "retries": 0,
                                                                     "args": {"command": ["false"]}}]})["id"]
    enrolled = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "node-b", "cores": 2,
                                                                               "memory_mb": 2048})
    agent = farm.client(token=enrolled["token"])
    (work,) = agent.post("/agent/work?wait=0", {})["assignments"]
    answer = agent.post("/agent/finish", {"reports": [{
        "attempt_id": work["attempt_id"], "status": "failed", "exit_code": 3, "log_size": 0,
        "reason": "exit code 3 (last line: ERROR: cannot open <tex>\x00.exr)"}]})
    assert answer["results"][0]["accepted"] is True, answer
    (task,) = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    assert task["state"] == "failed" and task["reason"] == "exit code 3 (last line: ERROR: cannot open <tex>\ufffd.exr)"
    page = _session(farm).get(f"/jobs/{job_id}").text
    assert "last line: ERROR: cannot open &lt;tex&gt;\ufffd.exr" in page  # quoted, escaped
