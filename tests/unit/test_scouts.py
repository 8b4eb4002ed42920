"""Which frames a layer's `scout` picks, which tasks hold them, and the words for a held layer
(`model/scouts.py`)."""

from __future__ import annotations

import random

import pytest

from thresher.model import scouts
from thresher.model.scouts import ScoutFacts, ScoutSpecError, held_reason, pick
from thresher.model.states import TaskState
from thresher.server.submit import check_spec


@pytest.mark.parametrize(("spec", "frames", "expected"), [
    ("fml:3", range(1, 101), [1, 51, 100]),
    ("fml:3", range(1, 11), [1, 6, 10]),
    ("fml:1", range(1, 11), [1]),
    ("fml:2", range(1, 11), [1, 10]),
    ("fml:5", range(1, 4), [1, 2, 3]),           # never more than the layer has
    ("auto:3", range(1, 101), [17, 51, 84]),     # the centres of three equal slices
    ("auto:1", range(1, 101), [51]),
    ("1,50,100", range(1, 101), [1, 50, 100]),
    ("100, 1", range(1, 101), [1, 100]),
    ("fml:3", [10, 20, 30, 40], [10, 30, 40]),
])
def test_the_frames_a_scout_picks(spec: str, frames: range | list[int], expected: list[int]) -> None:
    assert pick(spec, list(frames)) == expected


def test_picks_are_layer_frames_sorted_once_and_as_many_as_asked_over_many_ranges() -> None:
    rng = random.Random(7)
    for _ in range(500):
        start, size, step = rng.randint(-50, 1000), rng.randint(1, 400), rng.randint(1, 5)
        frames = list(range(start, start + size * step, step))
        n = rng.randint(1, 20)
        for kind in ("fml", "auto"):
            picked = pick(f"{kind}:{n}", frames)
            assert picked == sorted(set(picked)) and set(picked) <= set(frames)
            assert len(picked) == min(n, size)
            if kind == "fml":
                assert picked[0] == frames[0] and (n == 1 or picked[-1] == frames[-1])


@pytest.mark.parametrize("spec", ["fml:0", "auto:101", "fml", "first", "1-10", "1,,2", ""])
def test_unreadable_scouts_are_refused(spec: str) -> None:
    with pytest.raises(ScoutSpecError):
        scouts.check_spec(spec)


def test_a_spec_names_the_scout_field_when_refused() -> None:
    for scout, message in [("1,500", "frame 500 is not one of the layer's frames"), ("zz", "cannot read scout")]:
        with pytest.raises(Exception) as caught:
            check_spec({"name": "j", "layers": [{"name": "a", "args": {"command": ["true"]}},
                                                {"name": "r", "frames": "1-100", "scout": scout,
                                                 "args": {"command": ["true"]}}]})
        (error,) = caught.value.errors  # type: ignore[attr-defined]
        assert error["field"] == "layers.1.scout" and message in error["message"]


def test_the_tasks_holding_scout_frames_are_whole_chunks_with_every_part() -> None:
    job = check_spec({"name": "j", "layers": [{"name": "r", "frames": "1-100", "chunk": 10, "scout": "fml:3",
                                               "wedge": ["a", "b"], "args": {"command": ["true", "{wedge}"]}}]})
    (layer,) = job.layers
    assert layer.scout_frames == [1, 51, 100]
    assert layer.scout_tasks == [0, 1, 10, 11, 18, 19]   # chunks 1-10, 51-60, 91-100, both wedge values
    listed = check_spec({"name": "j", "layers": [{"name": "r", "frames": "1,5,9-12", "scout": [5, 11],
                                                  "chunk": 2, "args": {"command": ["true"]}}]}).layers[0]
    assert listed.spec.scout == "5,11" and listed.scout_tasks == [1, 3]  # chunks 1, 5, 9-10, 11-12


def test_the_words_for_a_held_layer() -> None:
    def facts(release: str = "auto", /, **counts: int) -> ScoutFacts:
        return ScoutFacts("render", [1, 50], release, counts)
    assert held_reason(facts(failed=1, succeeded=1)).startswith("held: scout frames 1, 50 of layer render: 1 failed")
    assert held_reason(facts("manual", succeeded=2)) == \
        "held until released: scout frames rendered, waiting for a person to release"
    assert held_reason(facts(running=1, succeeded=1)) == \
        "held: scout frames 1, 50 of layer render render first (1 of 2 scout tasks done)"
    assert facts(succeeded=1, skipped=1).all_succeeded() and not facts(**{TaskState.READY: 1}).all_succeeded()
    measuring = ScoutFacts("render", [1, 11, 20], "auto", {"succeeded": 1, "ready": 2}, probes=True)
    assert held_reason(measuring) == \
        "held: measuring frames 1, 11, 20 of layer render first, to size its chunks (chunk: auto; 1 of 3 done)"
