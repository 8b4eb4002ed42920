"""A failed or killed job that unfinished jobs wait for to succeed is not archived or deleted, by hand or
by the retention passes (`server/retention.holding`): without its task rows its waiters read as met and
ran on failed work; without its edges they stayed blocked with nothing left to say why. Both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name

from thresher.server import dependencies, lifecycle, retention
from thresher.server.clock import utcnow
from thresher.server.db.tables import jobs
from thresher.server.errors import Conflict


def _ended(bench: Bench, node: int, status: str = "failed", **job: Any) -> int:
    job_id = bench.submit(**{"layers": [layer("main", frames="1-2", retries=0)], **job})
    for a in bench.work(node):
        bench.finish(node, a["attempt_id"], status=status, exit_code=1 if status == "failed" else 0)
    return job_id


def _old(bench: Bench, *job_ids: int, days: float = 40) -> None:
    with bench.db.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id.in_(job_ids)).values(finished_at=utcnow() - timedelta(days=days)))


def test_a_failed_job_its_waiters_are_blocked_on_is_kept_until_they_are_dealt_with(bench: Bench) -> None:
    node = bench.node("n1", cores=4)
    up = _ended(bench, node)
    layer_waiter = bench.submit(layers=[layer("comp", frames="1", depends_on=[{"job": up, "layer": "main"}])])
    job_waiter = bench.submit(depends_on=[up], layers=[layer("comp", frames="1")])
    assert bench.job_state(up) == "failed"
    assert bench.job_state(layer_waiter) == bench.job_state(job_waiter) == "blocked"
    for deleting in (False, True):
        with bench.db.write() as conn, pytest.raises(Conflict) as refused:
            retention.select_jobs(conn, retention.Selection(ids=[up]), utcnow())
        assert str(refused.value.detail).startswith(
            f"job {up} failed and job {layer_waiter} (blocked), job {job_waiter} (blocked) wait for it to succeed: "
            f"retry job {up}, or kill job {layer_waiter} or drop its dependency (thresher undepend {layer_waiter} "
            f"--on {up}), first"), refused.value.detail
        with bench.db.write() as conn:  # asked straight (a waiter submitted since the check): left as it is
            assert (retention.delete(conn, [up]) if deleting else retention.archive(conn, [up], utcnow())) == []
    _old(bench, up)
    with bench.db.write() as conn:  # a filter and the retention pass leave it, and say which they left
        assert retention.select_jobs(conn, retention.Selection(states=["failed"]), utcnow()) == []
        assert retention.waited_for(conn, retention.Selection(states=["failed"]), utcnow()) == [up]
        assert retention.retention_pass(conn, 30, 180, utcnow()) == (0, 0)
    assert bench.job_state(layer_waiter) == bench.job_state(job_waiter) == "blocked"  # still, and why
    assert bench.task_states(layer_waiter) == ["waiting"]

    bench.act(lifecycle.kill_job, job_waiter)  # dealt with: one killed, the other no longer depends on it
    with bench.db.write() as conn:
        dependencies.drop(conn, layer_waiter, on_job=up)
        lifecycle.refresh_job(conn, layer_waiter, utcnow())
    with bench.db.write() as conn:
        assert retention.select_jobs(conn, retention.Selection(states=["failed"]), utcnow()) == [up]
        assert retention.retention_pass(conn, 30, 180, utcnow()) == (1, 0)


def test_a_succeeded_job_and_one_waited_for_only_until_it_ended_are_archived_as_ever(bench: Bench) -> None:
    node = bench.node("n1", cores=4)
    good = _ended(bench, node, status="succeeded")
    bad = _ended(bench, node)
    # waits for `good` to succeed (met) and for `bad` to end whichever way (met): both may go
    waiter = bench.submit(depends_on=[good, {"job": bad, "on": "finished"}],
                          layers=[layer("comp", frames="1", depends_on=[{"job": bad, "layer": "main", "on": "finished"}]),
                                  layer("late", frames="1", depends_on=["comp"])])
    (comp,) = bench.work(node)  # the waiter runs: unfinished while `late` waits for `comp`
    assert bench.job_state(waiter) == "running"
    with bench.db.write() as conn:
        assert retention.select_jobs(conn, retention.Selection(ids=[good, bad]), utcnow()) == [good, bad]
        assert retention.archive(conn, [good, bad], utcnow()) == [good, bad]
    bench.finish(node, comp["attempt_id"])
    (late,) = bench.work(node)
    bench.finish(node, late["attempt_id"])
    assert bench.job_state(waiter) == "succeeded"
