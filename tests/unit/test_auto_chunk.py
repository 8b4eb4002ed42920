"""`chunk: auto` (`model/auto_chunk.py`): the chunk decided from measured frame times, and the held
tasks regrouped: every frame exactly once, never over the chunk, never across a started task."""

from __future__ import annotations

import random

import pytest

from thresher.model.auto_chunk import Held, Sample, decide, regroup
from thresher.server.submit import check_spec


def test_the_chunk_hits_the_target_from_the_median_never_over_the_maximum() -> None:
    samples = [Sample(1, "1", 1, 50.0), Sample(2, "50", 1, 60.0), Sample(3, "100", 1, 500.0)]
    decided = decide(600, None, samples)
    assert decided["chunk"] == 10 and decided["seconds_per_frame"] == 60.0 and decided["status"] == "decided"
    assert [s["task_id"] for s in decided["samples"]] == [1, 2, 3] and "median 60" in decided["why"]
    assert decide(600, 4, samples)["chunk"] == 4
    assert decide(10, None, samples)["chunk"] == 1            # a frame longer than the target: one per task
    assert decide(600, None, [Sample(1, "1-2", 2, 0.0)])["chunk"] == 100   # instant frames: the default max
    kept = decide(600, None, [])
    assert kept["chunk"] == 1 and kept["status"] == "kept"


def test_regrouping_keeps_every_frame_once_never_over_the_chunk_nor_across_a_started_task() -> None:
    rng = random.Random(11)
    for _ in range(400):
        size, parts, chunk = rng.randint(1, 120), rng.randint(1, 3), rng.randint(1, 12)
        started = {p for p in range(size) if rng.random() < 0.1}        # frame positions already run
        held = [Held(pos * parts + k, pos * parts + k, (1000 + pos,), f"w{k}" if parts > 1 else None)
                for pos in range(size) if pos not in started for k in range(parts)]
        groups = regroup(held, chunk, parts)
        for part in {h.part for h in held}:
            mine = [g for g in groups if g.part == part]
            frames = [f for g in mine for f in g.frames]
            assert sorted(frames) == sorted(f for h in held if h.part == part for f in h.frames)
            assert len(frames) == len(set(frames))
        assert sorted(t for g in groups for t in g.replaces) == sorted(h.task_id for h in held)
        for g in groups:
            assert 1 <= len(g.frames) <= chunk
            positions = [f - 1000 for f in g.frames]
            assert positions == list(range(positions[0], positions[-1] + 1))   # a run in frame order
            assert not started & set(positions)
        assert len({g.index for g in groups}) == len(groups)


def test_a_task_larger_than_the_chunk_is_never_split() -> None:
    (group,) = regroup([Held(1, 0, (1, 2, 3, 4))], 2, 1)
    assert group.frames == (1, 2, 3, 4)


def test_auto_chunk_starts_a_frame_a_task_and_measures_with_probes_or_scouts() -> None:
    def spec(**layer: object) -> dict[str, object]:
        return {"name": "j", "layers": [{"name": "r", "frames": "1-100", "args": {"command": ["true"]}, **layer}]}
    (layer,) = check_spec(spec(chunk="auto", target_task_s=300, max_chunk=20)).layers
    assert layer.task_count == 100 and layer.scout_frames == [1, 51, 100]
    assert layer.auto_chunk == {"status": "measuring", "target_task_s": 300, "max_chunk": 20, "probes": True,
                                "parts": 1}
    (layer,) = check_spec(spec(chunk="auto", scout="10,20")).layers
    assert layer.scout_frames == [10, 20] and layer.auto_chunk and not layer.auto_chunk["probes"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"chunk": "auto", "tiles": "2x2", "args": {"command": ["true"]}}, "layers.0.chunk"),
        ({"target_task_s": 60}, "layers.0")]
    for bad, field in cases:
        with pytest.raises(Exception) as caught:
            check_spec(spec(**bad))
        assert caught.value.errors[0]["field"] == field  # type: ignore[attr-defined]
