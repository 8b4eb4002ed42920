"""Failures that stop costing the farm, against real databases: a job's node blocklist (a node that failed
its attempts too often gets none of its tasks, until cleared) and a job's failure limit (past it the job
starts nothing new, until retried or resumed). Lifecycle and dispatch directly; one test over HTTP and CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from tests.api.test_dashboard_http import _session
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.http import ApiError
from thresher.server import failures, lifecycle, views
from thresher.server.clock import utcnow
from thresher.server.db.tables import jobs
from thresher.server.failures import FailureLimits


def _fail(bench: Bench, node_id: int, attempt_id: int, limits: FailureLimits | None = None) -> None:
    report = {"attempt_id": attempt_id, "status": "failed", "exit_code": 1, "log_size": 0}
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node_id, [report], utcnow(), limits=limits or FailureLimits())


def _fail_next(bench: Bench, node_id: int, job_id: int, limits: FailureLimits | None = None) -> None:
    """The node takes one task (of this job) and fails it."""
    (a,) = bench.work(node_id)
    assert a["job_id"] == job_id
    _fail(bench, node_id, a["attempt_id"], limits)


def _blocklist(bench: Bench, job_id: int) -> dict[str, tuple[int, bool]]:
    with bench.db.read() as conn:
        return {e.node: (e.failures, e.blocked) for e in failures.job_blocklist(conn, job_id).items}


def _job_row(bench: Bench, job_id: int) -> Any:
    with bench.db.read() as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


def test_a_node_failing_three_attempts_gets_no_more_of_the_job_until_cleared(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-20", retries=10)])
    bad = bench.node("bad", cores=1)
    for n in range(1, 4):
        _fail_next(bench, bad, job)
        assert _blocklist(bench, job) == {"bad": (n, n >= 3)}
    assert bench.work(bad) == []  # blocklisted: ready tasks of the job are there, none for it
    good = bench.node("good", cores=1)
    (a,) = bench.work(good)
    assert a["job_id"] == job
    other = bench.submit(project="other", layers=[layer(frames="1")])  # see the next test on why another project
    (b,) = bench.work(bad)  # another job's work still reaches it
    assert b["job_id"] == other
    bench.finish(bad, b["attempt_id"])
    with bench.db.read() as conn:
        assert views.get_node(conn, "bad").blocklisted_by == [job]
        shown = views.get_job(conn, job)
    assert shown.failures == 3 and shown.stop_reason is None
    assert [(e.node, e.failures, e.blocked) for e in shown.blocklist] == [("bad", 3, True)]
    with bench.db.write() as conn:
        assert failures.clear(conn, job) == {bad}
    assert _blocklist(bench, job) == {}
    (c,) = bench.work(bad)  # cleared: it takes the job's tasks again
    assert c["job_id"] == job


def test_a_layer_sets_its_own_blocklist_threshold(bench: Bench) -> None:
    strict = bench.submit(priority=90, layers=[layer(frames="1-5", retries=5, blocklist_after=1)])
    # another project: dispatch reads as many candidates per project as the node has free cores, so the
    # strict job's tasks, first in this project's order, would fill the read of a one-core node
    plain = bench.submit(project="other", layers=[layer(frames="1-5", retries=5)])
    node = bench.node("n", cores=1)
    limits = FailureLimits(blocklist_after=3)
    _fail_next(bench, node, strict, limits)
    assert _blocklist(bench, strict) == {"n": (1, True)}  # the layer's 1, not the server's 3
    _fail_next(bench, node, plain, limits)  # the strict job keeps it out: the other job's task comes
    _fail_next(bench, node, plain, limits)
    assert _blocklist(bench, plain) == {"n": (2, False)}
    _fail_next(bench, node, plain, limits)
    assert _blocklist(bench, plain) == {"n": (3, True)}
    assert bench.work(node) == []


def test_the_server_threshold_holds_for_layers_without_one(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-10", retries=10)])
    node = bench.node("n", cores=1)
    limits = FailureLimits(blocklist_after=2)
    _fail_next(bench, node, job, limits)
    assert bench.work(node)  # one failure: still welcome
    with bench.db.read() as conn:
        (live,) = views.get_node(conn, "n").running
    _fail(bench, node, live.attempt_id, limits)
    assert _blocklist(bench, job) == {"n": (2, True)}
    assert bench.work(node) == []


def test_a_killed_or_lost_attempt_counts_against_nobody(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-4", retries=5)])
    node = bench.node("n", cores=1)
    (a,) = bench.work(node)
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node, [{"attempt_id": a["attempt_id"], "status": "killed", "exit_code": None,
                                                "log_size": 0}], utcnow())
    (b,) = bench.work(node)
    bench.act(lifecycle.lose_attempts, [b["attempt_id"]], "node went away")
    assert _blocklist(bench, job) == {} and _job_row(bench, job).failures == 0


def test_the_failure_limit_stops_the_job_and_a_retry_or_resume_starts_it_again(bench: Bench) -> None:
    job = bench.submit(max_failures=3, layers=[layer(frames="1-10", retries=0)])
    nodes = [bench.node(f"n{i}", cores=1) for i in range(5)]
    limits = FailureLimits(blocklist_after=100)
    for node in nodes[:4]:
        _fail_next(bench, node, job, limits)
    row = _job_row(bench, job)
    assert row.failures == 4 and row.paused
    assert row.stop_reason == ("stopped after 4 failed attempts (the job's limit is 3): fix and retry or resume")
    assert bench.work(nodes[4]) == []  # starts nothing new
    assert bench.task_states(job).count("paused") == 6 and bench.job_state(job) == "paused"
    bench.act(lifecycle.retry_tasks, job, None)
    row = _job_row(bench, job)
    assert (row.failures, row.stop_reason, row.paused) == (0, None, False)
    assert bench.work(nodes[4])  # running again
    with bench.db.read() as conn:
        assert views.get_job(conn, job).failures == 0


def test_the_server_failure_limit_and_resume(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-6", retries=3)])
    node = bench.node("n", cores=1)
    limits = FailureLimits(blocklist_after=100, job_max_failures=2)
    for _ in range(3):
        _fail_next(bench, node, job, limits)
    row = _job_row(bench, job)
    assert row.stop_reason == failures.stop_reason(3, 2) and row.paused
    assert bench.work(node) == []
    bench.act(lifecycle.resume_job, job)
    row = _job_row(bench, job)
    assert (row.failures, row.stop_reason, row.paused) == (0, None, False)
    assert bench.work(node)


def test_blocklist_over_http_and_the_cli(farm) -> None:
    job = farm.api.post("/jobs", {"name": "bl", "project": "default", "layers": [
        {"name": "render", "frames": "1-6", "retries": 5, "blocklist_after": 2,
         "args": {"command": ["echo", "{frame}"]}}]})
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    for _ in range(2):
        (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
        agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed", "exit_code": 1,
                                                  "log_size": 0}]})
    listed = farm.api.get(f"/jobs/{job['id']}/blocklist")
    assert [(e["node"], e["failures"], e["blocked"]) for e in listed["items"]] == [("n1", 2, True)]
    shown = farm.api.get(f"/jobs/{job['id']}")
    assert shown["failures"] == 2 and shown["blocklist"][0]["node"] == "n1"
    assert farm.api.get("/nodes/n1")["blocklisted_by"] == [job["id"]]
    assert agent.post("/agent/work", {}, wait=0)["assignments"] == []

    page = _session(farm)  # the dashboard shows them too
    job_page = page.get(f"/jobs/{job['id']}").text
    assert "Blocklist" in job_page and f"/api/v1/jobs/{job['id']}/blocklist/n1" in job_page
    assert "Failed attempts: 2" in job_page
    assert f'href="/jobs/{job["id"]}"' in page.get("/nodes/n1").text
    page.close()

    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["blocklist", str(job["id"]), "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["items"][0]["blocked"] is True
    for path in (f"/jobs/{job['id']}/blocklist/nobody", "/jobs/999999/blocklist"):
        with pytest.raises(ApiError) as info:
            farm.api.request("DELETE", path)
        assert info.value.status == 404
    out = CliRunner().invoke(app, ["blocklist", str(job["id"]), "--clear", "--node", "n1", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["items"] == []
    assert farm.api.request("DELETE", f"/jobs/{job['id']}/blocklist")["items"] == []
    assert farm.api.get("/nodes/n1")["blocklisted_by"] == []
    assert agent.post("/agent/work", {}, wait=5)["assignments"]
