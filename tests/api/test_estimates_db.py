"""Time estimates read from real databases (SQLite and PostgreSQL): a job's and its layers' ETA from
their succeeded attempts, and a node's speed relative to the farm."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name

from thresher.server import estimates, lifecycle, views
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts


def _took(bench: Bench, attempt_id: int, seconds: float, ago: float = 0.0) -> None:
    """Make an attempt's wall time `seconds`, ended `ago` seconds before now."""
    end = utcnow() - timedelta(seconds=ago)
    with bench.db.write() as conn:
        conn.execute(update(attempts).where(attempts.c.id == attempt_id)
                     .values(started_at=end - timedelta(seconds=seconds), ended_at=end))


def _run(bench: Bench, node: int, seconds: float, ago: float = 0.0) -> list[int]:
    """One round on a node: take what it gets, finish it all with this wall time."""
    got = bench.work(node)
    for a in got:
        bench.finish(node, a["attempt_id"])
        _took(bench, a["attempt_id"], seconds, ago)
    return [a["attempt_id"] for a in got]


def _job(bench: Bench, job_id: int) -> views.Job:
    with bench.db.read() as conn:
        return views.get_job(conn, job_id)


def test_no_estimate_until_a_task_finishes_then_median_and_eta(bench: Bench) -> None:
    job_id = bench.submit(layers=[layer(frames="1-10", chunk=2), layer("comp", frames="1-10", chunk=10,
                                                                       depends_on=["render"])])
    node = bench.node("n1", cores=1)
    job = _job(bench, job_id)
    assert job.estimate is not None and job.estimate.eta_s is None and job.estimate.confidence == "none"
    assert job.layers[0].estimate is not None and job.layers[0].estimate.reason

    for seconds in (20.0, 40.0, 60.0):  # tasks of 2 frames: 10, 20, 30 s a frame
        _run(bench, node, seconds, ago=100.0 - seconds)
    job = _job(bench, job_id)
    render = job.layers[0].estimate
    assert render is not None and render.samples == 3 and render.confidence == "rough"
    assert render.task_s == 40.0 and render.low_s == 30.0 and render.high_s == 50.0
    assert render.eta_s is not None and render.eta_s > 0 and render.eta_at is not None
    comp = job.layers[1].estimate
    assert comp is not None and comp.eta_s is None and comp.reason  # nothing of comp has run
    assert job.estimate is not None and job.estimate.eta_s is None and "comp" in (job.estimate.reason or "")


def test_running_task_with_progress_is_extrapolated(bench: Bench) -> None:
    job_id = bench.submit(layers=[layer(frames="1-4")])
    node = bench.node("n1", cores=1)
    (a,) = bench.work(node)
    from thresher.server.db.tables import tasks
    with bench.db.write() as conn:
        conn.execute(update(tasks).where(tasks.c.id == a["task_id"]).values(progress=25.0))
        conn.execute(update(attempts).where(attempts.c.id == a["attempt_id"])
                     .values(started_at=utcnow() - timedelta(seconds=30)))
    est = _job(bench, job_id).layers[0].estimate
    assert est is not None and est.confidence == "rough" and "progress" in est.basis
    assert est.task_s is not None and 110 < est.task_s < 130
    assert est.eta_s is not None and est.eta_s > 300  # 3 more tasks of ~120 s after the running one


def test_finished_job_is_done(bench: Bench) -> None:
    job_id = bench.submit(layers=[layer(frames="1-2")])
    node = bench.node("n1", cores=2)
    _run(bench, node, 10.0)
    job = _job(bench, job_id)
    assert job.state == "succeeded"
    assert job.estimate is not None and job.estimate.eta_s == 0.0 and job.estimate.confidence == "done"


def test_every_succeeded_attempt_of_a_small_layer_is_a_sample(bench: Bench) -> None:
    job_id = bench.submit(layers=[layer(frames="1-6")])
    node = bench.node("n1", cores=6)
    _run(bench, node, 10.0)
    job = _job(bench, job_id)
    assert job.estimate is not None and job.estimate.eta_s == 0.0
    assert job.layers[0].estimate is not None and job.layers[0].estimate.samples == 6


def test_node_speed_relative_to_the_farm(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-4")])
    fast = bench.node("fast", cores=2)
    slow = bench.node("slow", cores=2)
    _run(bench, fast, 10.0)
    _run(bench, slow, 40.0)
    with bench.db.read() as conn:
        fast_speed = estimates.node_speed(conn, fast)
        slow_speed = estimates.node_speed(conn, slow)
        assert views.get_node(conn, "fast").speed == fast_speed
    # the layer's median per-frame time is 25 s: the fast node 2.5x, the slow one 0.625x
    assert fast_speed is not None and fast_speed.speed == 2.5 and fast_speed.layers == 1 and fast_speed.samples == 2
    assert slow_speed is not None and slow_speed.speed == 0.625


def test_node_speed_unknown_alone(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-2")])
    node = bench.node("only", cores=2)
    _run(bench, node, 10.0)
    with bench.db.read() as conn:
        assert estimates.node_speed(conn, node) is None
        assert views.get_node(conn, "only").speed is None


def test_a_failed_job_has_no_eta_left_and_says_so(bench: Bench) -> None:
    """Its render failed: the comp that waits for it never starts, so the job page does not promise an
    estimate "yet"; a retry brings the job back, and the estimate with it."""
    job_id = bench.submit(layers=[layer(frames="1-2", retries=0),
                                  layer("comp", frames="1-2", depends_on=["render"])])
    node = bench.node("n1", cores=2)
    got = bench.work(node)
    bench.finish(node, got[0]["attempt_id"])
    _took(bench, got[0]["attempt_id"], 10.0)
    bench.finish(node, got[1]["attempt_id"], status="failed", exit_code=3)
    job = _job(bench, job_id)
    assert job.state == "failed", job.state
    comp = job.layers[1].estimate
    assert comp is not None and comp.eta_s is None and comp.basis == "stopped" and comp.reason == "the job failed"
    assert job.estimate is not None and job.estimate.eta_s is None and job.estimate.reason == "the job failed"
    render = job.layers[0].estimate
    assert render is not None and render.task_s == 10.0  # kept
    assert (render.confidence, render.basis, render.reason) == ("done", "ended", "1 task failed")  # not "done"


def test_a_killed_job_that_ran_everything_it_had_ended_with_what_was_killed(bench: Bench) -> None:
    job_id = bench.submit(layers=[layer(frames="1-3")])
    node = bench.node("n1", cores=3)
    first, second, third = (a["attempt_id"] for a in bench.work(node))
    bench.finish(node, first)
    bench.act(lifecycle.kill_job, job_id)
    for attempt_id in (second, third):
        bench.finish(node, attempt_id, status="killed", exit_code=-15)
    job = _job(bench, job_id)
    assert job.state == "killed" and job.estimate is not None and job.layers[0].estimate is not None
    assert (job.estimate.basis, job.estimate.reason) == ("ended", "layer render: 2 tasks killed")
    assert job.layers[0].estimate.reason == "2 tasks killed"


def test_a_paused_job_has_no_eta_until_it_is_resumed(bench: Bench) -> None:
    """Seen by a tester: a paused job showed "ETA in under a minute" that moved on with the clock, and so
    did a layer whose scouts rendered and which waited for a person's release."""
    from thresher.server import lifecycle

    job_id = bench.submit(layers=[layer(frames="1-6")])
    node = bench.node("n1", cores=1)
    _run(bench, node, 2.0)
    with bench.db.write() as conn:
        lifecycle.pause_job(conn, job_id, utcnow())
    job = _job(bench, job_id)
    assert job.state == "paused", job.state
    assert job.estimate is not None and job.estimate.eta_s is None and job.estimate.basis == "stopped"
    assert job.estimate.reason == "the job is paused"
    assert job.layers[0].estimate is not None and job.layers[0].estimate.reason == "the job is paused"
    with bench.db.write() as conn:
        lifecycle.resume_job(conn, job_id, utcnow())
    resumed = _job(bench, job_id).estimate
    assert resumed is not None and resumed.eta_s is not None  # a resume brings it back


def test_a_layer_held_for_a_release_by_hand_has_no_eta(bench: Bench) -> None:
    node = bench.node("n1", cores=1)
    scouted = bench.submit(layers=[layer(frames="1-6", scout="1", scout_release="manual")])
    _run(bench, node, 2.0)  # the scout frame renders; the other five stay held for a person
    held = _job(bench, scouted)
    assert held.layers[0].counts.held == 5
    assert held.layers[0].estimate is not None and held.layers[0].estimate.eta_s is None
    assert "waiting for a person to release" in (held.layers[0].estimate.reason or "")


def test_an_archived_job_says_what_its_layers_ended_as_from_what_it_kept(bench: Bench) -> None:
    """Its task rows are gone: read from them, every layer said "done", the failed one too."""
    from thresher.server import retention
    job_id = bench.submit(layers=[layer(frames="1-2", retries=0), layer("comp", frames="1-2", depends_on=["render"])])
    node = bench.node("n1", cores=2)
    first, second = bench.work(node)
    bench.finish(node, first["attempt_id"])
    bench.finish(node, second["attempt_id"], status="failed", exit_code=3)
    with bench.db.write() as conn:
        assert retention.archive(conn, [job_id], utcnow()) == [job_id]
    job = _job(bench, job_id)
    render, comp = (layer.estimate for layer in job.layers)
    assert render is not None and (render.basis, render.reason) == ("ended", "1 task failed")
    assert comp is not None and (comp.basis, comp.reason) == ("stopped", "the job failed")
    assert job.estimate is not None and job.estimate.reason == "the job failed"
