"""The time-estimate rule (`thresher.model.estimate`) without HTTP or a database."""

from __future__ import annotations

import pytest

from thresher.model.estimate import (
    Finished,
    LayerFacts,
    Running,
    confidence,
    estimate_job,
    estimate_layer,
    history_parallelism,
    node_speed,
    unsuccessful_words,
    words,
)


def runs(*seconds: float, frames: int = 1, serial: bool = True) -> list[Finished]:
    """Attempts that ran one after the other (serial) or all at once from t=0."""
    out, t = [], 0.0
    for s in seconds:
        start = t if serial else 0.0
        out.append(Finished(seconds=s, frames=frames, started=start, ended=start + s))
        t += s
    return out


def test_confidence_words() -> None:
    assert [confidence(n) for n in (1, 4, 5, 19, 20, 200)] == ["rough", "rough", "fair", "fair", "good", "good"]


def test_nothing_finished_and_nothing_reporting_progress_has_no_estimate() -> None:
    est = estimate_layer(LayerFacts("render", running=[Running(30.0)], tasks_left=5, frames_left=5))
    assert est.eta_s is None and est.task_s is None and est.samples == 0
    assert est.confidence == "none" and est.basis == "no estimate yet"
    assert est.reason and "finished" in est.reason


def test_progress_is_extrapolated_and_marked_rough() -> None:
    # two tasks running 60 s, at 25% and 50%: a task takes 240 s or 120 s, median 180 s
    est = estimate_layer(LayerFacts("render", running=[Running(60.0, 25.0), Running(60.0, 50.0)],
                                    tasks_left=0))
    assert est.task_s == pytest.approx(180.0)
    assert (est.low_s, est.high_s) == (pytest.approx(120.0), pytest.approx(240.0))
    assert est.confidence == "rough" and "progress" in est.basis
    assert est.eta_s == pytest.approx(180.0)   # the 25% one has 180 s left, the other 60 s


def test_median_and_quartiles_of_finished_tasks() -> None:
    est = estimate_layer(LayerFacts("render", finished=runs(10, 20, 30, 40, 50), tasks_left=1, frames_left=1))
    assert est.task_s == pytest.approx(30.0)
    assert (est.low_s, est.high_s) == (pytest.approx(20.0), pytest.approx(40.0))
    assert est.samples == 5 and est.confidence == "fair" and est.basis == "5 finished tasks"


def test_per_frame_times_scale_to_the_layers_chunk() -> None:
    # tasks of 4 frames took 40 s, of 2 frames 20 s: 10 s a frame; the layer's tasks hold 3 frames on average
    finished = [Finished(40, 4, 0, 40), Finished(40, 4, 40, 80), Finished(20, 2, 80, 100), Finished(20, 2, 100, 120)]
    est = estimate_layer(LayerFacts("render", finished=finished, tasks_left=2, frames_left=6, frames_per_task=3.0))
    assert est.task_s == pytest.approx(30.0)
    assert est.eta_s == pytest.approx(60.0)     # serial history: one at a time, 6 frames of 10 s


def test_eta_at_the_current_parallelism() -> None:
    # 10 tasks of 60 s left, 5 running just started: each slot takes 2 more after its current one
    est = estimate_layer(LayerFacts("render", finished=runs(60, 60, 60, 60, 60, serial=False),
                                    running=[Running(0.0)] * 5, tasks_left=10, frames_left=10))
    assert est.eta_s == pytest.approx((5 * 60 + 10 * 60) / 5)


def test_running_tasks_past_their_estimate_count_as_ending_now() -> None:
    est = estimate_layer(LayerFacts("render", finished=runs(60, 60), running=[Running(500.0)]))
    assert est.eta_s == pytest.approx(0.0)


def test_last_task_runs_whole_after_a_slot_frees() -> None:
    # many slots, one task left: it cannot finish before a slot frees and it runs its 100 s
    est = estimate_layer(LayerFacts("render", finished=runs(100, 100), running=[Running(50.0)] * 8,
                                    tasks_left=1, frames_left=1))
    assert est.eta_s == pytest.approx(150.0)


def test_history_parallelism_is_busy_time_over_span() -> None:
    assert history_parallelism(runs(10, 10, 10, 10, serial=False)) == pytest.approx(4.0)
    assert history_parallelism(runs(10, 10, 10, 10)) == pytest.approx(1.0)
    assert history_parallelism(runs(10)) is None
    # nothing running now: the layer keeps the parallelism its history shows
    est = estimate_layer(LayerFacts("render", finished=runs(10, 10, 10, 10, serial=False), tasks_left=8,
                                    frames_left=8))
    assert est.eta_s == pytest.approx(20.0)


def test_finished_layer_is_done() -> None:
    est = estimate_layer(LayerFacts("render", finished=runs(10, 30)))
    assert est.eta_s == 0.0 and est.confidence == "done" and est.task_s == pytest.approx(20.0)


def test_a_layer_that_ended_with_failed_or_killed_tasks_says_so_not_done() -> None:
    """A failed layer read "done" in the ETA column: it ended, with what did not succeed."""
    assert [unsuccessful_words(), unsuccessful_words(failed=2, killed=1), unsuccessful_words(killed=1),
            unsuccessful_words(failed=1)] == [None, "2 tasks failed, 1 killed", "1 task killed", "1 task failed"]
    render = LayerFacts("render", finished=runs(10, 30), unsuccessful="2 tasks failed")
    comp = LayerFacts("comp", finished=runs(5))
    est = estimate_layer(render)
    assert est.eta_s == 0.0 and est.confidence == "done" and est.task_s == pytest.approx(20.0)
    assert words(est) == "ended: 2 tasks failed" and words(estimate_layer(comp)) == "done"
    out = estimate_job([comp, render], stopped="the job failed")
    assert words(out.job) == "ended: layer render: 2 tasks failed" and words(out.layers["comp"]) == "done"
    left = estimate_job([render, LayerFacts("late", tasks_left=2, frames_left=2)], stopped="the job failed")
    assert words(left.job) == "none: the job failed" and words(left.layers["render"]) == "ended: 2 tasks failed"
    # one still running: it is not over, whatever failed before
    going = estimate_layer(LayerFacts("render", finished=runs(10), running=[Running(5.0)], unsuccessful="1 task failed"))
    assert going.confidence != "done" and going.eta_s is not None


def test_job_waits_for_layers_in_dependency_order() -> None:
    render = LayerFacts("render", finished=runs(60, 60, 60), running=[Running(0.0)], tasks_left=2, frames_left=2)
    comp = LayerFacts("comp", finished=runs(10, 10, 10), tasks_left=3, frames_left=3, depends_on=("render",))
    out = estimate_job([render, comp])
    assert out.layers["render"].eta_s == pytest.approx(180.0)
    # comp starts when render ends and runs at the job's running count (1): 3 x 10 s
    assert out.layers["comp"].eta_s == pytest.approx(210.0)
    assert out.job.eta_s == pytest.approx(210.0)
    assert out.job.confidence == "rough" and out.job.samples == 6


def test_job_has_no_estimate_while_a_layer_has_none() -> None:
    render = LayerFacts("render", finished=runs(60), tasks_left=1, frames_left=1)
    comp = LayerFacts("comp", tasks_left=3, frames_left=3, depends_on=("render",))
    out = estimate_job([render, comp])
    assert out.layers["render"].eta_s == pytest.approx(60.0)
    assert out.layers["comp"].eta_s is None and "render" in (out.layers["comp"].reason or "")
    assert out.job.eta_s is None and "comp" in (out.job.reason or "")


def test_layer_waiting_on_unknown_layer_has_no_eta_but_keeps_its_task_time() -> None:
    render = LayerFacts("render", running=[Running(5.0)], tasks_left=4, frames_left=4)
    comp = LayerFacts("comp", finished=runs(10), tasks_left=1, frames_left=1, depends_on=("render",))
    out = estimate_job([render, comp])
    assert out.layers["comp"].task_s == pytest.approx(10.0)
    assert out.layers["comp"].eta_s is None and "render" in (out.layers["comp"].reason or "")


def test_a_job_that_runs_nothing_more_until_someone_acts_has_no_eta_and_says_why() -> None:
    """A failed render: the comp that waits for its success never starts, so neither it nor the job
    has time ahead ("no estimate yet" promised one); finished layers stay done, task times stay."""
    render = LayerFacts("render", finished=runs(0.5, 0.5, 0.5, 0.5, 0.5))
    comp = LayerFacts("comp", tasks_left=6, frames_left=6, depends_on=("render",))
    lighting = LayerFacts("lighting", finished=runs(10), tasks_left=2, frames_left=2)
    out = estimate_job([render, comp, lighting], stopped="the job failed")
    assert out.layers["render"].confidence == "done"
    assert [out.layers[n].eta_s for n in ("comp", "lighting")] == [None, None]
    assert out.layers["lighting"].task_s == pytest.approx(10.0)
    assert words(out.job) == words(out.layers["comp"]) == "none: the job failed"
    assert words(estimate_job([render, comp]).layers["comp"]).startswith("no estimate yet")  # while it may run
    finished = estimate_job([render], stopped="the job failed")  # nothing left: done, whatever the state
    assert finished.job.confidence == "done"


def test_finished_job_is_done_and_confidence_is_the_weakest_open_layer() -> None:
    done = estimate_job([LayerFacts("a", finished=runs(1, 2))])
    assert done.job.eta_s == 0.0 and done.job.confidence == "done"
    many = runs(*[10.0] * 25)
    out = estimate_job([LayerFacts("a", finished=many, tasks_left=1, frames_left=1),
                        LayerFacts("b", finished=runs(*[5.0] * 8), tasks_left=1, frames_left=1)])
    assert out.layers["a"].confidence == "good" and out.job.confidence == "fair"


def test_node_speed_is_the_geometric_mean_of_layer_ratios() -> None:
    # layer 1: the farm's median 20 s a frame, this node 10 s (2x); layer 2: median 10 s, node 20 s (0.5x)
    layers = {1: [(7, 10.0), (8, 20.0), (9, 30.0)], 2: [(7, 20.0), (8, 10.0), (9, 5.0)]}
    speed = node_speed(7, {1: [10.0], 2: [20.0]}, layers)
    assert speed is not None and speed.speed == pytest.approx(1.0) and speed.layers == 2 and speed.samples == 2
    fast = node_speed(7, {1: [10.0]}, layers)
    assert fast is not None and fast.speed == pytest.approx(2.0) and fast.layers == 1


def test_node_speed_unknown_without_another_node_to_compare() -> None:
    assert node_speed(7, {}, {}) is None
    assert node_speed(7, {1: [10.0, 12.0]}, {1: [(7, 10.0), (7, 12.0)]}) is None
    assert node_speed(7, {1: [0.0]}, {1: [(7, 0.0), (8, 3.0)]}) is None


def test_words_the_cli_and_the_page_show() -> None:
    from thresher.model.estimate import Estimate, about, task_range_words, task_words, words
    assert [about(s) for s in (20, 90, 1500, 3600, 11400)] == [
        "under a minute", "about 2 min", "about 25 min", "about 1 h", "about 3 h 10 min"]
    est = Estimate(45.0, 30.0, 60.0, 40, 1500.0, "good", "40 finished tasks")
    assert words(est) == "about 25 min, from 40 finished tasks, good"
    assert task_words(est) == "~45 s/task" and task_range_words(est) == "(30–60 s)"
    short = Estimate(0.24, 0.21, 0.3, 20, 2.0, "good", "20 finished tasks")  # a short task is not "0 s"
    assert task_words(short) == "~0.2 s/task" and task_range_words(short) == "(0.2–0.3 s)"
    echo = Estimate(0.012, 0.008, 0.02, 20, 0.2, "good", "20 finished tasks")  # nor is an echo "0.0 s"
    assert task_words(echo) == "~12 ms/task" and task_range_words(echo) == "(8–20 ms)"
    mixed = Estimate(0.05, 0.0004, 0.2, 20, 1.0, "good", "20 finished tasks")
    assert task_words(mixed) == "~50 ms/task" and task_range_words(mixed) == "(1 ms–0.2 s)"
    none = Estimate(None, None, None, 0, None, "none", "no estimate yet", "no task of it has finished yet")
    assert words(none) == "no estimate yet: no task of it has finished yet" and task_words(none) == "-"
    assert words(Estimate(1.0, 1.0, 1.0, 3, 0.0, "done", "finished")) == "done"


def test_a_job_of_thousands_of_chained_layers_is_estimated_without_recursion() -> None:
    chain = [LayerFacts(name=f"l{i}", depends_on=[f"l{i + 1}"] if i < 2999 else []) for i in range(3000)]
    job = estimate_job(chain)
    assert set(job.layers) == {f"l{i}" for i in range(3000)}


def test_a_layer_left_for_a_person_has_no_eta_and_neither_have_those_after_it() -> None:
    """A paused layer (or one whose tasks are held for a release by hand): its running tasks end, the rest
    starts only when someone acts, so it, the layers waiting for it and the job say why instead of an ETA
    that moves on with the clock."""
    render = LayerFacts("render", finished=runs(2, 2, 2), running=[Running(1.0)], tasks_left=6, frames_left=6,
                        waits_for_person="the layer is paused")
    comp = LayerFacts("comp", finished=runs(1), tasks_left=2, frames_left=2, depends_on=("render",))
    out = estimate_job([render, comp])
    assert out.layers["render"].eta_s is None and words(out.layers["render"]) == "none: the layer is paused"
    assert out.layers["render"].task_s == pytest.approx(2.0)  # what a task takes is still known
    assert words(out.layers["comp"]) == "none: it waits for render (the layer is paused)"
    assert words(out.job) == "none: layer render: the layer is paused"
    # Nothing left but what runs: its running task still ends, and that has a time.
    ending = LayerFacts("render", finished=runs(2, 2), running=[Running(1.0)], waits_for_person="the job is paused")
    assert estimate_job([ending]).job.eta_s == pytest.approx(1.0)


def test_no_estimate_yet_names_the_layer_and_its_own_reason_once() -> None:
    render = LayerFacts("render", finished=runs(60), tasks_left=1, frames_left=1)
    comp = LayerFacts("comp", tasks_left=3, frames_left=3, depends_on=("render",))
    lights = LayerFacts("lights", tasks_left=1, frames_left=1)
    assert words(estimate_job([render, comp]).job) == \
        "no estimate yet: layer comp: it waits for render and none of its tasks has run"
    assert words(estimate_job([render, comp, lights]).job).endswith("(and 1 more layer)")
