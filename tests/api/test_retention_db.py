"""Jobs and data kept in check (`server/retention.py`, `server/log_cap.py`) on both databases: archive
and delete by ids and by filter, refusals of what is not finished, retention passes in batches, node
removal, the log cap."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select, update
from tests.api.test_dispatch_db import Bench, layer

from thresher.server import lifecycle, retention, views
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts, dependencies, jobs, layers, log_chunks, nodes, tasks, tokens
from thresher.server.errors import BadInput, Conflict, NotFound


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _run_all(bench: Bench, node: int, job_id: int, status: str = "succeeded") -> None:
    while True:
        work = bench.work(node)
        if not work:
            return
        for a in work:
            with bench.db.write() as conn:
                lifecycle.append_log(conn, node, a["attempt_id"], 0, f"frame {a['task_id']}\n")
            bench.finish(node, a["attempt_id"], status=status, exit_code=0 if status == "succeeded" else 1)


def _finished_job(bench: Bench, node: int, status: str = "succeeded", project: str = "p", frames: str = "1-3") -> int:
    job = bench.submit(project=project, layers=[layer(frames=frames, retries=0)])
    _run_all(bench, node, job, status)
    assert bench.job_state(job) == ("succeeded" if status == "succeeded" else "failed")
    return job


def _count(bench: Bench, table: Any, column: Any, job_id: int) -> int:
    with bench.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(column == job_id)).scalar() or 0)


def _logs_of(bench: Bench, job_id: int) -> int:
    with bench.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(log_chunks).join(
            attempts, attempts.c.id == log_chunks.c.attempt_id).where(attempts.c.job_id == job_id)).scalar() or 0)


def _listed(bench: Bench, archived: bool = False) -> list[int]:
    with bench.db.read() as conn:
        page = views.list_jobs(conn, state=None, project=None, owner=None, name=None, limit=100, offset=0,
                               sort="id", archived=archived)
    return [j.id for j in page.items]


def test_archive_keeps_the_statistics_and_drops_the_task_rows(bench: Bench) -> None:
    node = bench.node("n1")
    done = _finished_job(bench, node)
    other = _finished_job(bench, node)
    assert _logs_of(bench, done) == 3
    with bench.db.write() as conn:
        ids = retention.select_jobs(conn, retention.Selection(ids=[done]), utcnow())
        assert retention.archive(conn, ids, utcnow()) == [done]
    assert _count(bench, tasks, tasks.c.job_id, done) == 0
    assert _count(bench, attempts, attempts.c.job_id, done) == 0
    assert _logs_of(bench, done) == 0
    assert _count(bench, layers, layers.c.job_id, done) == 1  # the job and its layers stay
    assert _listed(bench) == [other]
    assert _listed(bench, archived=True) == [done]
    with bench.db.read() as conn:
        job = views.get_job(conn, done)
    assert job.archived_at is not None and job.state == "succeeded"
    assert job.counts.succeeded == 3 and job.layers[0].counts.succeeded == 3
    assert job.stats is not None and job.stats.tasks == 3 and job.stats.attempts == 3 and job.stats.failures == 0
    assert job.stats.wall_s >= 0
    with bench.db.write() as conn:  # archiving again changes nothing
        assert retention.archive(conn, [done], utcnow()) == []


def test_a_job_that_is_not_finished_is_refused_by_name(bench: Bench) -> None:
    node = bench.node("n1", cores=1)
    done = _finished_job(bench, node)
    running = bench.submit(name="busy-shot", layers=[layer(frames="1-2")])
    assert bench.work(node)
    with bench.db.write() as conn:
        with pytest.raises(Conflict, match="busy-shot"):
            retention.select_jobs(conn, retention.Selection(ids=[done, running]), utcnow())
        with pytest.raises(NotFound, match="999"):
            retention.select_jobs(conn, retention.Selection(ids=[999]), utcnow())
        with pytest.raises(BadInput):
            retention.select_jobs(conn, retention.Selection(states=["running"]), utcnow())
        with pytest.raises(BadInput):
            retention.select_jobs(conn, retention.Selection(), utcnow())
        # a filter only ever matches finished jobs
        assert retention.select_jobs(conn, retention.Selection(project="default"), utcnow()) == []
        assert retention.delete(conn, [running]) == []
    assert bench.job_state(running) == "running"


def test_filters_by_state_project_and_age(bench: Bench) -> None:
    node = bench.node("n1")
    ok_p = _finished_job(bench, node, project="p")
    bad_p = _finished_job(bench, node, "failed", project="p")
    ok_q = _finished_job(bench, node, project="q")
    now = utcnow()
    with bench.db.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == ok_p).values(finished_at=now - timedelta(days=40)))

        def chosen(**kw: Any) -> list[int]:
            return retention.select_jobs(conn, retention.Selection(**kw), now)

        assert chosen(states=["failed"]) == [bad_p]
        assert chosen(project="q") == [ok_q]
        assert chosen(older_than_s=30 * 86400) == [ok_p]
        assert chosen(states=["succeeded"], project="p") == [ok_p]
        assert chosen(states=["succeeded"], older_than_s=30 * 86400, project="q") == []


def test_delete_removes_every_row_the_job_had(bench: Bench) -> None:
    node = bench.node("n1")
    first = _finished_job(bench, node)
    second = bench.submit(depends_on=[first], layers=[layer(frames="1-2")])
    _run_all(bench, node, second)
    with bench.db.write() as conn:
        assert retention.delete(conn, [first]) == [first]
    for table, column in ((tasks, tasks.c.job_id), (attempts, attempts.c.job_id), (layers, layers.c.job_id),
                          (jobs, jobs.c.id), (dependencies, dependencies.c.target_job_id)):
        assert _count(bench, table, column, first) == 0
    assert _logs_of(bench, first) == 0
    assert _count(bench, tasks, tasks.c.job_id, second) == 2  # the job that waited for it is untouched
    with bench.db.read() as conn, pytest.raises(NotFound):
        views.get_job(conn, first)


def test_retention_passes_archive_then_delete_in_batches(bench: Bench) -> None:
    node = bench.node("n1")
    olds = [_finished_job(bench, node, frames="1") for _ in range(5)]
    fresh = _finished_job(bench, node, frames="1")
    now = utcnow()
    with bench.db.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id.in_(olds)).values(finished_at=now - timedelta(days=31)))
        assert retention.retention_pass(conn, 30, 180, now, batch=2) == (2, 0)
        assert retention.retention_pass(conn, 30, 180, now, batch=2) == (2, 0)
        assert retention.retention_pass(conn, 30, 180, now, batch=2) == (1, 0)
        assert retention.retention_pass(conn, 0, 0, now + timedelta(days=400)) == (0, 0)  # both off
        later = now + timedelta(days=181)
        assert retention.retention_pass(conn, 30, 180, later, batch=10) == (1, 5)  # `fresh` is old by then
    assert _listed(bench) == [] and _listed(bench, archived=True) == [fresh]


def test_a_node_that_is_down_is_removed_and_its_history_stays(bench: Bench) -> None:
    node = bench.node("old-box", cores=1)
    done = _finished_job(bench, node)
    busy = bench.node("busy-box", cores=1)
    bench.submit(layers=[layer(frames="1")])
    assert bench.work(busy)
    with bench.db.write() as conn:
        with pytest.raises(Conflict, match="up"):
            retention.remove_node(conn, "old-box", utcnow())
        conn.execute(update(nodes).values(state="down"))
        with pytest.raises(Conflict, match="runs 1"):
            retention.remove_node(conn, "busy-box", utcnow())
        assert retention.remove_node(conn, "old-box", utcnow()) == node
        with pytest.raises(NotFound):
            retention.remove_node(conn, "old-box", utcnow())
        assert conn.execute(select(func.count()).select_from(tokens).where(tokens.c.node_id == node)).scalar() == 0
    with bench.db.read() as conn:
        assert [n.name for n in views.all_nodes(conn)] == ["busy-box"]
        task = views.list_tasks(conn, done, layer=None, state=None, limit=10, offset=0).items[0]
        detail = views.get_task(conn, task.id)
    assert detail.attempts[0].node == "old-box"


def _stored(bench: Bench, attempt_id: int) -> tuple[int, list[tuple[int, str]]]:
    with bench.db.read() as conn:
        rows = conn.execute(select(log_chunks.c.offset, log_chunks.c.data)
                            .where(log_chunks.c.attempt_id == attempt_id).order_by(log_chunks.c.offset)).all()
    return sum(len(r.data.encode()) for r in rows), [(r.offset, r.data) for r in rows]


def test_the_log_cap_keeps_head_and_tail_and_acknowledges_every_byte(bench: Bench) -> None:
    node = bench.node("n1")
    bench.submit(layers=[layer(frames="1")])
    (work,) = bench.work(node)
    attempt = work["attempt_id"]
    cap = 100_000
    offset = 0
    line = "é line of output %06d\n"
    for i in range(4000):  # ~100 bytes a call, 4000 calls, with a multi-byte character in each
        data = "".join(line % (i * 4 + k) for k in range(4))
        with bench.db.write() as conn:
            size, gap = lifecycle.append_log(conn, node, attempt, offset, data, cap)
        assert not gap
        offset += len(data.encode())
        assert size == offset  # every byte acknowledged: the agent's offsets go on
    with bench.db.write() as conn:  # a resent piece is still ignored
        assert lifecycle.append_log(conn, node, attempt, 0, "again", cap) == (offset, False)
    kept, rows = _stored(bench, attempt)
    assert kept <= cap
    with bench.db.read() as conn:
        piece = views.read_log(conn, attempt, offset=0, limit=10 * cap)
    assert piece.data.startswith(line % 0)
    assert piece.data.endswith(line % (4000 * 4 - 1))
    assert "bytes cut by Thresher: the log passed log_max_bytes" in piece.data
    assert piece.next_offset == offset
    assert "\ufffd" not in piece.data  # no character cut in two



def test_two_layers_peaking_above_their_reservation_in_one_batch(bench: Bench) -> None:
    """Found by bench/soak.py: the layers' raised reservations are one executemany, which refused the
    IN list of states (an expanding parameter) as soon as two layers peaked in one batch."""
    node = bench.node("n1", cores=2)
    job = bench.submit(layers=[layer("a", frames="1-3", resources={"memory_mb": 256}),
                               layer("b", frames="1-3", resources={"memory_mb": 256})])
    with bench.db.write() as conn:
        conn.execute(update(tasks).where(tasks.c.job_id == job, tasks.c.idx > 0).values(state="waiting"))
    work = bench.work(node)
    assert len(work) == 2
    reports = [{"attempt_id": w["attempt_id"], "status": "succeeded", "exit_code": 0, "peak_rss_mb": 900.0,
                "log_size": 0} for w in work]
    with bench.db.write() as conn:
        lifecycle.finish_attempts(conn, node, reports, utcnow())
        left = conn.execute(select(tasks.c.memory_mb).where(tasks.c.job_id == job, tasks.c.idx > 0)).scalars().all()
    assert len(left) == 4 and all(memory >= 900 for memory in left)
