"""An attempt a person stopped says who and how (`job killed by ana`), whatever its agent reports ("killed
by server": the agent knows only that the server asked); against both databases, without HTTP."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name
from tests.support.dispatching import finish_attempt

from thresher.server import layer_steering, lifecycle
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts


def _reasons(bench: Bench, job_id: int) -> dict[int, tuple[str, str | None]]:
    with bench.db.read() as conn:
        rows = conn.execute(select(attempts.c.id, attempts.c.state, attempts.c.reason)
                            .where(attempts.c.job_id == job_id)).all()
    return {r.id: (r.state, r.reason) for r in rows}


def _agent_says_killed(bench: Bench, node: int, attempt_id: int) -> None:
    with bench.db.write() as conn:
        finish_attempt(conn, node, {"attempt_id": attempt_id, "status": "killed", "exit_code": -15,
                                    "reason": "killed by server", "log_size": 0}, utcnow())


def test_each_way_of_stopping_a_running_attempt_is_named_with_who_did_it(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-3"), layer("comp", frames="1-2")])
    node = bench.node("n", cores=5)
    a, b, c, d, e = (x["attempt_id"] for x in bench.work(node))
    with bench.db.read() as conn:
        task_of = dict(conn.execute(select(attempts.c.id, attempts.c.task_id).where(attempts.c.job_id == job)).all())
    bench.act(partial(lifecycle.kill_task, by="ana"), task_of[a])
    bench.act(partial(lifecycle.skip_task, by="ana"), task_of[b])
    with bench.db.write() as conn:
        layer_steering.kill_layer(conn, job, "comp", utcnow(), "wes")
    assert _reasons(bench, job)[a] == ("killing", "task killed by ana")  # what it says while its agent stops it
    for attempt_id in (a, b, d, e):
        _agent_says_killed(bench, node, attempt_id)
    bench.act(partial(lifecycle.kill_job, by="wes"), job)
    _agent_says_killed(bench, node, c)
    assert _reasons(bench, job) == {a: ("killed", "task killed by ana"), b: ("killed", "task skipped by ana"),
                                    c: ("killed", "job killed by wes"), d: ("killed", "layer comp killed by wes"),
                                    e: ("killed", "layer comp killed by wes")}


def test_an_attempt_that_ended_its_own_way_before_the_kill_keeps_its_own_outcome(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-2")])
    node = bench.node("n", cores=2)
    first, second = (x["attempt_id"] for x in bench.work(node))
    bench.act(partial(lifecycle.kill_job, by="ana"), job)
    bench.finish(node, first)  # it succeeded as the kill went out
    with bench.db.write() as conn:  # and the other timed out on its own, the agent says why
        finish_attempt(conn, node, {"attempt_id": second, "status": "failed", "exit_code": -9,
                                    "reason": "timed out after 60 s", "log_size": 0}, utcnow())
    assert _reasons(bench, job) == {first: ("succeeded", None), second: ("failed", "timed out after 60 s")}


def test_without_a_name_the_reason_says_what_was_stopped(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1")])
    node = bench.node("n", cores=1)
    (one,) = (x["attempt_id"] for x in bench.work(node))
    bench.act(lifecycle.kill_job, job)
    _agent_says_killed(bench, node, one)
    assert _reasons(bench, job) == {one: ("killed", "job killed")}
