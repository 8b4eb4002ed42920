"""What a dependency may wait for: frames that meet (a frame-by-frame dependency whose frames never meet
would wait for nothing, and is refused), and an archived job (its layers judged by the counts it kept, not
by its deleted task rows). Both databases, without HTTP."""

from __future__ import annotations

import pytest
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name

from thresher.server import retention
from thresher.server.clock import utcnow
from thresher.server.errors import BadInput
from thresher.server.views import get_job


def test_a_frame_by_frame_dependency_whose_frames_never_meet_is_refused(bench: Bench) -> None:
    """Offset numbering (a sim of 20-22, a render of 1-3): accepted, its render started at once."""
    with pytest.raises(BadInput) as info:
        bench.submit(layers=[layer("a", "1-3", depends_on=[{"layer": "b", "frames": True}]), layer("b", "20-22")])
    assert info.value.errors == [{"field": "layers.0.depends_on.0", "message": (
        "no frame of layer b (20-22) meets a frame of layer a (1-3): frame by frame it would wait for nothing; "
        "drop frames: true to wait for the whole layer")}]
    other = bench.submit(layers=[layer("sim", "1001-1100", chunk=10)])
    with pytest.raises(BadInput) as info:
        bench.submit(layers=[layer("render", "1-100", depends_on=[{"job": other, "layer": "sim", "frames": True}])])
    assert info.value.errors[0]["field"] == "layers.0.depends_on.0"
    assert "no frame of layer sim (1001-1100) meets a frame of layer render (1-100)" in info.value.errors[0]["message"]


def test_frames_that_meet_in_part_are_accepted_and_the_others_start_at_once(bench: Bench) -> None:
    job = bench.submit(layers=[layer("b", "2-5"), layer("a", "1-3", depends_on=[{"layer": "b", "frames": True}])])
    assert bench.task_states(job) == ["ready"] * 4 + ["ready", "waiting", "waiting"]  # a1 follows no frame


def _archived(bench: Bench, status: str) -> int:
    node = bench.node(f"n-{status}", cores=2)
    job = bench.submit(layers=[layer("main", "1-2", retries=0)])
    for a in bench.work(node):
        bench.finish(node, a["attempt_id"], status, 0 if status == "succeeded" else 1)
    with bench.db.write() as conn:
        assert retention.archive(conn, [job], utcnow()) == [job]
    return job


def test_a_layer_of_an_archived_job_is_judged_by_what_it_kept(bench: Bench) -> None:
    """Its task rows are gone: read from them, a failed layer looked met and its waiter ran on it."""
    failed, succeeded = _archived(bench, "failed"), _archived(bench, "succeeded")
    on_failed = bench.submit(layers=[layer("comp", "1", depends_on=[{"job": failed, "layer": "main"}])])
    on_succeeded = bench.submit(layers=[layer("comp", "1", depends_on=[{"job": succeeded, "layer": "main"}])])
    assert bench.job_state(on_failed) == "blocked" and bench.task_states(on_failed) == ["waiting"]
    with bench.db.read() as conn:
        assert get_job(conn, on_failed).pending == f"blocked: job {failed} layer main failed"
    assert bench.job_state(on_succeeded) == "queued" and bench.task_states(on_succeeded) == ["ready"]
    with pytest.raises(BadInput) as info:  # frame by frame: nothing left to follow
        bench.submit(layers=[layer("comp", "1-2", depends_on=[{"job": succeeded, "layer": "main", "frames": True}])])
    assert info.value.errors[0]["message"].startswith(f"job {succeeded} was archived: its tasks are gone")
