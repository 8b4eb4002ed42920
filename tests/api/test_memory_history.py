"""Scheduling from history, memory (`server/memory.py`), against both databases: a finished task's peak
raises what its layer's not-started tasks reserve, and an out-of-memory attempt's retry reserves more."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import select
from tests.api.test_dispatch_db import Bench, layer

from thresher.server import lifecycle
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts, tasks
from thresher.server.views import get_task


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _report(attempt_id: int, status: str, peak: float, **extra: Any) -> dict[str, Any]:
    return {"attempt_id": attempt_id, "status": status, "exit_code": 0 if status == "succeeded" else None,
            "log_size": 0, "peak_rss_mb": peak, **extra}


def _memory(bench: Bench, job_id: int) -> dict[int, tuple[str, int]]:
    with bench.db.read() as conn:
        return {r.id: (r.state, r.memory_mb) for r in conn.execute(
            select(tasks.c.id, tasks.c.state, tasks.c.memory_mb).where(tasks.c.job_id == job_id))}


def test_a_finished_peak_raises_the_layers_not_started_tasks(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-5", resources={"memory_mb": 100, "cores": 1}),
                               layer("comp", frames="1", resources={"memory_mb": 100}, depends_on=["render"])])
    node = bench.node("n", cores=2, memory_mb=16000)
    bench.node("small", cores=1, memory_mb=2000)
    first, second = bench.work(node)
    with bench.db.write() as conn:  # one batch: the layer's highest peak wins, in one statement
        lifecycle.finish_attempts(conn, node, [_report(first["attempt_id"], "succeeded", 300.2),
                                               _report(second["attempt_id"], "succeeded", 450.5)], utcnow())
    memory = _memory(bench, job)
    assert {memory[a["task_id"]] for a in (first, second)} == {("succeeded", 100)}  # they keep what they had
    assert sorted(mb for state, mb in memory.values() if state == "ready") == [451, 451, 451]
    with bench.db.read() as conn:  # the other layer (waiting on this one) is untouched
        comp = conn.execute(select(tasks.c.memory_mb, tasks.c.state).where(
            tasks.c.job_id == job, tasks.c.state == "waiting")).one()
    assert comp.memory_mb == 100

    # A peak within the reservation writes nothing; one past the largest node is capped at it.
    a, b = bench.work(node)
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node, [_report(a["attempt_id"], "succeeded", 400),
                                               _report(b["attempt_id"], "succeeded", 99_999)], utcnow())
    assert [mb for state, mb in _memory(bench, job).values() if state == "ready"] == [16000]


def test_an_out_of_memory_attempt_is_retried_with_more_memory(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1", retries=3, resources={"memory_mb": 100})])
    node = bench.node("n", memory_mb=1000)
    (a,) = bench.work(node)
    reason = "out of memory: used 600 MB of 100 MB reserved; node had 180 MB free"
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node, [_report(a["attempt_id"], "failed", 600.0, out_of_memory=True,
                                                       reason=reason)], utcnow())
    assert list(_memory(bench, job).values()) == [("ready", 900)]
    with bench.db.read() as conn:
        row = conn.execute(select(attempts.c.out_of_memory, attempts.c.reason)
                           .where(attempts.c.id == a["attempt_id"])).one()
        detail = get_task(conn, a["task_id"])
    assert row.out_of_memory is True and row.reason == f"{reason}; retrying with 900 MB"
    assert [att.out_of_memory for att in detail.attempts] == [True] and detail.tries == 1

    (b,) = bench.work(node)  # the retry reserves 900 MB; its own OOM is capped at the largest node
    assert b["memory_mb"] == 900
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node, [_report(b["attempt_id"], "failed", 950.0, out_of_memory=True)],
                                  utcnow())
    assert list(_memory(bench, job).values()) == [("ready", 1000)]

    (c,) = bench.work(node)  # an ordinary failure changes no reservation and is no out of memory
    bench.finish(node, c["attempt_id"], "failed", 1)
    with bench.db.read() as conn:
        flags = list(conn.execute(select(attempts.c.out_of_memory).order_by(attempts.c.number)).scalars())
    assert flags == [True, True, False]
    assert list(_memory(bench, job).values()) == [("ready", 1000)]
