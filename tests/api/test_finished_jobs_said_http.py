"""What the pages, the API and the CLI say of a job that is done, in process on SQLite: a job whose failed
attempts were all retried did not fail (it showed "Why it failed" and "0 tasks failed — ..."); a job
blocked by a failed dependency is counted on the Overview; an archived job says it was archived and
what it kept (its page showed an empty layer bar, an empty grid and "Go to frame"; `thresher tasks`
an unexplained `0 tasks`; archiving it again `0 jobs archived` and no more)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from tests.support.dispatching import assign, finish_attempt
from typer.testing import CliRunner

from thresher.cli import common
from thresher.cli.main import app
from thresher.client.api import Thresher
from thresher.client.http import HttpClient
from thresher.server.app import create_app
from thresher.server.clock import utcnow
from thresher.server.db.tables import nodes
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job


def _spec(name: str, frames: str, retries: int, depends_on: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "depends_on": depends_on or [],
            "layers": [{"name": "render", "frames": frames, "retries": retries, "args": {"command": ["true"]}}]}


def _run_all(conn: Any, node_id: int, fail_first: bool) -> None:
    """Run every ready task of the farm on the node: each first try fails when `fail_first`, the rest succeed."""
    failed: set[int] = set()
    while work := assign(conn, node_id, utcnow()):
        for a in work:
            fail = fail_first and a["task_id"] not in failed
            failed.add(a["task_id"])
            finish_attempt(conn, node_id, {"attempt_id": a["attempt_id"], "status": "failed" if fail else "succeeded",
                                           "exit_code": 1 if fail else 0, "reason": "exit code 1" if fail else None,
                                           "log_size": 0}, utcnow())


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("finished-jobs")
    server = prepare(f"sqlite:///{folder / 'farm.db'}", folder / "data")
    now = utcnow()
    with server.db.write() as conn:
        (node_id,) = conn.execute(insert(nodes).values(
            name="vm-1", hostname="vm-1", os="linux", instance_id="vm-1", cores=1, memory_mb=8000, gpus=[], tags=[],
            state="up", admin_state="enabled", last_seen=now, registered_at=now)).inserted_primary_key or [0]
        flaky = create_job(conn, check_spec(_spec("flaky", "1-2", retries=2)), "tester")
        _run_all(conn, node_id, fail_first=True)
        broken = create_job(conn, check_spec(_spec("broken", "1", retries=0)), "tester")
        _run_all(conn, node_id, fail_first=True)
        stranded = create_job(conn, check_spec(_spec("stranded", "1", retries=0, depends_on=[broken])), "tester")
        done = create_job(conn, check_spec(_spec("done", "1-4", retries=0)), "tester")
        _run_all(conn, node_id, fail_first=False)
    web = TestClient(create_app(server), follow_redirects=False)
    token = (folder / "data" / "admin.token").read_text().strip()
    nonce = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text)
    assert nonce is not None
    assert web.post("/login", data={"token": token, "csrf": nonce.group(1), "next": "/"}).status_code == 303
    api = httpx.Client(transport=web._transport, base_url="http://testserver/api/v1",
                       headers={"Authorization": f"Bearer {token}"})
    yield {"web": web, "api": api, "token": token, "flaky": flaky, "broken": broken, "stranded": stranded,
           "done": done}
    server.db.dispose()


@pytest.fixture
def cli(farm: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`thresher ...` against the in-process server: the CLI's HTTP client goes through the test transport."""
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    monkeypatch.delenv("THRESHER_SERVER", raising=False)
    monkeypatch.delenv("THRESHER_TOKEN", raising=False)

    def make(server_url: str, token: str | None, **_: Any) -> Thresher:
        http = HttpClient(server_url, token)
        http._http = httpx.Client(base_url=http.server + "/api/v1", transport=farm["web"]._transport,
                                  headers={"Authorization": f"Bearer {token}"})
        return Thresher(http=http)

    monkeypatch.setattr(common, "Thresher", make)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "-s", "http://testserver", "-t", farm["token"]])


def test_a_job_whose_failed_attempts_were_retried_did_not_fail(farm: dict[str, Any], cli: Any) -> None:
    job_id = farm["flaky"]
    answer = farm["api"].get(f"/jobs/{job_id}/failures").json()
    assert answer["state"] == "succeeded" and answer["failed_tasks"] == [] and answer["failed_attempts"] == 2
    assert answer["summary"].startswith("no task failed in the end; 2 attempts failed before their tasks were "
                                        "retried or skipped: 'exit code 1' x2 on vm-1 (tasks ")
    page = farm["web"].get(f"/jobs/{job_id}").text
    assert "Why it failed" not in page and "0 tasks failed" not in page
    assert '<details id="earlier-failures">' in page and "Earlier failed attempts" in page
    shown = cli("job", str(job_id))
    assert shown.exit_code == 0, shown.output
    assert "succeeded" in shown.stdout and "2 failed attempts" in shown.stdout
    assert "failed —" not in shown.stdout and "Why" not in shown.stdout
    # a job that did fail still says why, above the grid
    failed = farm["web"].get(f"/jobs/{farm['broken']}").text
    assert "Why it failed" in failed and "1 task failed — &#39;exit code 1&#39; x1 on vm-1" in failed
    assert "Earlier failed attempts" not in failed


def test_the_overview_counts_blocked_jobs_and_links_to_them(farm: dict[str, Any]) -> None:
    assert farm["api"].get(f"/jobs/{farm['stranded']}").json()["state"] == "blocked"
    overview = farm["web"].get("/").text
    chip = re.search(r'<a class="chip s-blocked" href="(/jobs\?state=blocked)"[^>]*>(\d+) blocked</a>', overview)
    assert chip is not None and chip.group(2) == "1"
    listed = farm["web"].get(chip.group(1)).text
    assert re.findall(r"<tr data-job=\"(\d+)\"", listed) == [str(farm["stranded"])]


def test_an_archived_job_says_so_everywhere(farm: dict[str, Any], cli: Any) -> None:
    job_id = farm["done"]
    first = cli("archive", str(job_id))
    assert first.exit_code == 0 and first.stdout.strip() == f"1 job archived: {job_id}"
    again = farm["api"].post("/jobs/archive", json={"ids": [job_id]}).json()
    assert again["count"] == 0 and again["already"] == [job_id]
    twice = cli("archive", str(job_id))
    assert twice.exit_code == 0 and twice.stdout.strip() == f"job {job_id} was already archived"

    page = farm["web"].get(f"/jobs/{job_id}").text
    assert "data-archived>archived <time" in page
    assert 'id="task-grid"' not in page and "Go to frame" not in page
    assert "its tasks, attempts and logs were deleted then" in page and "4 tasks, 4 attempts, 0 failed attempts" in page
    layer_row = page[page.index('<tr data-layer-index="0"'):]
    assert '<span class="k-done" title="done">4</span>' in layer_row[:layer_row.index("</tr>")]  # the kept counts

    shown = cli("job", str(job_id))
    assert shown.exit_code == 0 and "archived" in shown.stdout
    assert "tasks, attempts and logs deleted (kept: 4 tasks, 4 attempts, 0 failed)" in shown.stdout
    assert cli("job", str(job_id), "--json").stdout.count('"archived_at": "') == 1
    tasks = cli("tasks", str(job_id))
    assert tasks.exit_code == 0 and "0 tasks" in tasks.stdout
    assert f"job {job_id} was archived at " in tasks.stderr and "its tasks, attempts and logs were deleted (kept: 4 tasks" in tasks.stderr
    # a job that is not archived and has tasks says nothing of the kind
    assert "archived" not in cli("tasks", str(farm["flaky"])).stderr
