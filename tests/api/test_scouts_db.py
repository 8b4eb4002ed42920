"""Scout frames on real databases (SQLite and PostgreSQL): the scout tasks go first, the rest is held
(`held`, never dispatched) until every scout succeeded (auto) or a person releases them (manual); a
failed scout keeps the layer held and says why (`server/scouts.py`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, select
from tests.api.test_dispatch_db import Bench, layer

from thresher.server import lifecycle
from thresher.server.db.tables import tasks
from thresher.server.errors import Conflict
from thresher.server.views import get_job
from thresher.wire.jobs import Job


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _tasks(bench: Bench, job_id: int) -> Sequence[Row[Any, Any, Any]]:
    with bench.db.read() as conn:
        return conn.execute(select(tasks.c.frames, tasks.c.state, tasks.c.scout)
                            .where(tasks.c.job_id == job_id).order_by(tasks.c.id)).all()


def _run_all(bench: Bench, node: int, status: str = "succeeded") -> list[str]:
    """Dispatch to `node` until nothing is given; finish each with `status`; the frames it ran."""
    ran: list[str] = []
    while True:
        work = bench.work(node)
        if not work:
            return ran
        for a in work:
            ran.append(a["frames"])
            bench.finish(node, a["attempt_id"], status, 0 if status == "succeeded" else 1)


def _job(bench: Bench, job_id: int) -> Job:
    with bench.db.read() as conn:
        return get_job(conn, job_id)


def test_scouts_run_first_and_release_the_rest_by_themselves(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-10", scout="fml:3")])
    assert [(t.frames, t.state, t.scout) for t in _tasks(bench, job) if t.scout] == [
        ("1", "ready", True), ("6", "ready", True), ("10", "ready", True)]
    assert {t.state for t in _tasks(bench, job) if not t.scout} == {"held"}
    seen = _job(bench, job)
    assert seen.layers[0].scout is not None and seen.layers[0].scout.frames == [1, 6, 10]
    assert seen.layers[0].counts.held == 7 and seen.state == "queued"
    node = bench.node("n1", cores=1)
    first = []
    for _ in range(3):  # one core: one task at a time; the held ones are never given
        (a,) = bench.work(node)
        first.append(a["frames"])
        if len(first) < 3:
            bench.finish(node, a["attempt_id"])
    assert sorted(first, key=int) == ["1", "6", "10"]
    assert "scout frames 1, 6, 10 of layer render" in (_job(bench, job).layers[0].pending or "")
    bench.finish(node, a["attempt_id"])  # the last scout: the rest goes
    assert {t.state for t in _tasks(bench, job) if not t.scout} == {"ready"}
    assert len(_run_all(bench, node)) == 7
    assert bench.job_state(job) == "succeeded"


def test_manual_release_waits_for_a_person(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-6", scout="1,4", scout_release="manual"), layer("other", frames="1")])
    node = bench.node("n1")
    assert sorted(_run_all(bench, node), key=int) == ["1", "1", "4"]
    seen = _job(bench, job)
    assert seen.state == "waiting"  # not succeeded: four frames are held
    assert seen.pending == "held until released: scout frames rendered, waiting for a person to release"
    released, _ = bench.act(lifecycle.release_held, job, "render", "wrangler")
    assert released == ["render"]
    scout = _job(bench, job).layers[0].scout
    assert scout is not None and scout.released_by == "wrangler"
    assert sorted(_run_all(bench, node), key=int) == ["2", "3", "5", "6"]
    assert bench.job_state(job) == "succeeded"
    with pytest.raises(Conflict):
        bench.act(lifecycle.release_held, job, None, "wrangler")


def test_a_failed_scout_keeps_the_layer_held_and_says_so(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-50", chunk=10, scout="1,50", retries=0)])
    node = bench.node("n1")
    work = bench.work(node)
    assert sorted(a["frames"] for a in work) == ["1-10", "41-50"]
    bench.finish(node, work[0]["attempt_id"], "failed", 1)
    bench.finish(node, work[1]["attempt_id"])
    assert bench.work(node) == []
    seen = _job(bench, job)
    assert seen.state == "failed"
    assert seen.layers[0].counts.held == 3
    assert seen.layers[0].pending and seen.layers[0].pending.startswith(
        "held: scout frames 1, 50 of layer render: 1 failed")
    assert seen.pending == seen.layers[0].pending
    bench.act(lifecycle.retry_tasks, job, None)  # the scout retried to success releases the rest
    _run_all(bench, node)
    assert bench.job_state(job) == "succeeded"


def test_a_scouted_layer_waiting_on_another_releases_only_what_its_dependencies_allow(bench: Bench) -> None:
    job = bench.submit(layers=[layer("sim", frames="1"),
                               layer(frames="1-5", scout="fml:2", depends_on=["sim"])])
    assert [t.state for t in _tasks(bench, job)] == ["ready", "waiting", "held", "held", "held", "waiting"]
    node = bench.node("n1", cores=1)
    (sim,) = bench.work(node)
    assert sim["layer"] == "sim"
    bench.finish(node, sim["attempt_id"])
    assert [t.state for t in _tasks(bench, job)] == ["succeeded", "ready", "held", "held", "held", "ready"]
    assert _run_all(bench, node) == ["1", "5", "2", "3", "4"]
    assert bench.job_state(job) == "succeeded"


def test_killing_a_job_kills_its_held_tasks(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-5", scout="fml:1")])
    bench.act(lifecycle.kill_job, job)
    assert {t.state for t in _tasks(bench, job)} == {"killed"}
    assert bench.job_state(job) == "killed"


def _finish_taking(bench: Bench, node: int, seconds: float) -> list[str]:
    """Run what `node` is given, each attempt made to have lasted `seconds`."""
    from datetime import timedelta

    from sqlalchemy import update

    from thresher.server.clock import utcnow
    from thresher.server.db.tables import attempts
    work = bench.work(node)
    with bench.db.write() as conn:
        conn.execute(update(attempts).where(attempts.c.id.in_([a["attempt_id"] for a in work]))
                     .values(started_at=utcnow() - timedelta(seconds=seconds)))
    for a in work:
        bench.finish(node, a["attempt_id"])
    return [a["frames"] for a in work]


def test_auto_chunks_after_the_probes_with_a_frame_by_frame_follower_still_right(bench: Bench) -> None:
    from thresher.server.db.tables import dependencies, layers
    job = bench.submit(layers=[layer(frames="1-20", chunk="auto", target_task_s=600, max_chunk=8),
                               layer("comp", frames="1-20", chunk=5,
                                     depends_on=[{"layer": "render", "frames": True}])])
    render = [t for t in _tasks(bench, job) if t.scout]
    assert [t.frames for t in render] == ["1", "11", "20"]
    node = bench.node("n1", cores=3)
    assert sorted(_finish_taking(bench, node, 60), key=int) == ["1", "11", "20"]
    seen = _job(bench, job)
    decision = seen.layers[0].chunk_decision
    assert decision is not None and decision.status == "decided" and decision.chunk == 8
    assert decision.seconds_per_frame == pytest.approx(60, rel=0.05) and len(decision.samples) == 3
    assert decision.rewritten == 17 and decision.tasks == 3
    assert seen.layers[0].chunk == 8 and seen.layers[0].total_tasks == 6 and seen.total_tasks == 10
    from thresher.cli.views import chunk_words
    assert chunk_words(seen.layers[0]).startswith("chunk: auto -> 8 (target 600 s): median 60")
    with bench.db.read() as conn:
        rows = conn.execute(select(tasks.c.id, tasks.c.frames, tasks.c.layer_id, tasks.c.state)
                            .order_by(tasks.c.frame_start)).all()
        render_id, comp_id = [r.id for r in conn.execute(select(layers.c.id).order_by(layers.c.idx))]
        edges = conn.execute(select(dependencies.c.waiter_task_id, dependencies.c.target_task_id)
                             .where(dependencies.c.kind == "frame")).all()
    names = {r.id: r.frames for r in rows}
    assert sorted((r.frames for r in rows if r.layer_id == render_id), key=lambda f: int(f.split("-")[0])) == \
        ["1", "2-9", "10", "11", "12-19", "20"]
    waits = sorted((names[w], sorted(names[t] for w2, t in edges if w2 == w)) for w in {w for w, _ in edges})
    assert waits == [("1-5", ["1", "2-9"]), ("11-15", ["11", "12-19"]), ("16-20", ["12-19", "20"]),
                     ("6-10", ["10", "2-9"])]
    assert all(r.state == "waiting" for r in rows if r.layer_id == comp_id)
    ran = _run_all(bench, node)
    assert ran.index("1-5") > ran.index("2-9") and ran.index("16-20") > ran.index("12-19")
    assert bench.job_state(job) == "succeeded"


def test_auto_chunks_of_a_wedge_chunk_each_value_on_its_own(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-6", chunk="auto", max_chunk=3, scout="1",
                                     wedge=[1, 2], args={"command": ["echo", "{frame}", "{wedge}"]})])
    node = bench.node("n1")
    assert _finish_taking(bench, node, 1) == ["1", "1"]
    rest = [(t.frames, t.state) for t in _tasks(bench, job) if not t.scout]
    assert sorted(rest) == [("2-4", "ready"), ("2-4", "ready"), ("5-6", "ready"), ("5-6", "ready")]
    _run_all(bench, node)
    assert bench.job_state(job) == "succeeded"


def test_scout_frames_change_until_a_task_of_the_layer_starts(bench: Bench) -> None:
    from thresher.server.errors import BadInput
    job = bench.submit(layers=[layer(frames="1-6", chunk=2, scout="1")])
    bench.act(lifecycle.change_scout, job, "render", "5,6", "manual", "ana")
    assert [(t.frames, t.state, t.scout) for t in _tasks(bench, job)] == [
        ("1-2", "held", False), ("3-4", "held", False), ("5-6", "ready", True)]
    scout = _job(bench, job).layers[0].scout
    assert scout is not None and scout.frames == [5, 6] and scout.release == "manual"
    with pytest.raises(BadInput) as caught:
        bench.act(lifecycle.change_scout, job, "render", "fml:0", "auto", "ana")
    assert caught.value.errors[0]["field"] == "scout"
    node = bench.node("n1", cores=1)
    (a,) = bench.work(node)
    assert a["frames"] == "5-6"
    with pytest.raises(Conflict):
        bench.act(lifecycle.change_scout, job, "render", "1", "auto", "ana")
    bench.finish(node, a["attempt_id"])
    assert bench.work(node) == []  # manual: the rest waits for a person


def test_a_failed_scout_skipped_by_hand_releases_the_rest(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-4", scout="1", retries=0)])
    node = bench.node("n1")
    (a,) = bench.work(node)
    bench.finish(node, a["attempt_id"], "failed", 1)
    assert bench.job_state(job) == "failed"
    with bench.db.read() as conn:
        scout_id = conn.execute(select(tasks.c.id).where(tasks.c.job_id == job, tasks.c.scout.is_(True))).scalar_one()
    bench.act(lifecycle.skip_task, scout_id)
    assert sorted(_run_all(bench, node), key=int) == ["2", "3", "4"]
    assert bench.job_state(job) == "succeeded"


def test_an_auto_chunked_layer_waiting_frame_by_frame_keeps_its_edges(bench: Bench) -> None:
    from thresher.server.db.tables import dependencies
    job = bench.submit(layers=[layer("sim", frames="1-6"),
                               layer(frames="1-6", chunk="auto", max_chunk=3, scout="1",
                                     depends_on=[{"layer": "sim", "frames": True}])])
    node = bench.node("n1", cores=1)
    ran = _run_all(bench, node)
    assert ran[:7] == ["1", "2", "3", "4", "5", "6", "1"] and sorted(ran[7:]) == ["2-4", "5-6"]
    with bench.db.read() as conn:
        frames = dict(conn.execute(select(tasks.c.id, tasks.c.frames)).all())
        edges = conn.execute(select(dependencies.c.waiter_task_id, dependencies.c.target_task_id)
                             .where(dependencies.c.kind == "frame")).all()
    assert sorted((frames[w], frames[t]) for w, t in edges if frames[w] != "1") == [
        ("2-4", "2"), ("2-4", "3"), ("2-4", "4"), ("5-6", "5"), ("5-6", "6")]
    assert bench.job_state(job) == "succeeded"


def test_a_rechunk_carries_the_edges_as_they_are_a_dropped_one_stays_dropped(bench: Bench) -> None:
    """Issue 10: the rewrite of `chunk: auto` expanded the frame-by-frame edges again from the frames,
    so an edge a wrangler had dropped came back, and a task-on-task edge onto a held task was lost
    (its waiter then waited for nothing that would ever release it). Now the edges are carried."""
    from thresher.server import dependencies
    from thresher.server.clock import utcnow
    from thresher.server.db.tables import dependencies as edge_rows
    job = bench.submit(layers=[layer(frames="1-20", chunk="auto", target_task_s=600, max_chunk=8),
                               layer("comp", frames="1-20", chunk=5,
                                     depends_on=[{"layer": "render", "frames": True}])])
    other = bench.submit(name="review", layers=[layer("review", frames="1")])

    with bench.db.read() as conn:
        rows = conn.execute(select(tasks.c.id, tasks.c.job_id, tasks.c.frames, tasks.c.idx, tasks.c.layer_id)
                            .order_by(tasks.c.id)).all()
    render_layer = rows[0].layer_id
    task = {(("render" if r.layer_id == render_layer else "comp" if r.job_id == job else "review"), r.frames): r.id
            for r in rows}
    with bench.db.write() as conn:
        assert dependencies.drop(conn, job, task_id=task["comp", "6-10"]) == 5   # on render 6, 7, 8, 9, 10
        lifecycle.refresh_job(conn, job, utcnow())
        dependencies.add_task_edge(conn, other, task["review", "1"], task["render", "5"], "success")
        lifecycle.refresh_job(conn, other, utcnow())
    node = bench.node("n1", cores=3)
    assert sorted(_finish_taking(bench, node, 60), key=int) == ["1", "11", "20"]   # the probes; then the rewrite
    with bench.db.read() as conn:
        frames = {r.id: (r.layer_id == render_layer, r.frames, r.state) for r in conn.execute(
            select(tasks.c.id, tasks.c.layer_id, tasks.c.frames, tasks.c.state))}
        edges = conn.execute(select(edge_rows.c.waiter_task_id, edge_rows.c.target_task_id, edge_rows.c.kind)
                             .where(edge_rows.c.waiter_task_id.is_not(None))).all()
    waits = sorted((frames[w][1], frames[t][1], kind) for w, t, kind in edges if w != task["review", "1"])
    assert waits == [("1-5", "1", "frame"), ("1-5", "2-9", "frame"), ("11-15", "11", "frame"),
                     ("11-15", "12-19", "frame"), ("16-20", "12-19", "frame"), ("16-20", "20", "frame")]
    # comp 6-10 no longer waits (dropped), the review waits for the chunk that took render frame 5
    assert [(frames[t][:2], kind) for w, t, kind in edges if w == task["review", "1"]] == [((True, "2-9"), "task")]
    assert frames[task["review", "1"]][2] == "waiting"
    _run_all(bench, node)
    assert bench.job_state(job) == "succeeded" and bench.job_state(other) == "succeeded"
