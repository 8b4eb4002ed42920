"""The fit rule (model/fit.py) that dispatch, the look for news, submit and the node views share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thresher.model.fit import Free, Needs, fits, gpu_indices, node_free, tag_set, take


@dataclass
class Held:
    cores: int
    memory_mb: int
    gpu_ids: Any


def test_free_is_what_live_attempts_leave() -> None:
    free = node_free(16, 32_000, gpu_indices([{"index": 0}, {"index": 1}, {"index": 2}]),
                     [Held(4, 8_000, [1]), Held(2, 1_000, None)])
    assert free == Free(cores=10, memory_mb=23_000, gpu_ids=[0, 2])


def test_tasks_ahead_count_as_more_room_but_never_more_than_the_node_has() -> None:
    full = [Held(1, 1_000, None) for _ in range(4)]  # a 4-core, 8 GB node running four 1-core tasks
    assert node_free(4, 8_000, [], full) == Free(0, 4_000, [])
    assert node_free(4, 8_000, [], full, ahead_cores=2) == Free(2, 8_000, [])  # two may wait; memory: 8 GB/4 x 2 more
    assert node_free(4, 8_000, [], full + [Held(1, 1_000, None)] * 2, ahead_cores=2) == Free(0, 6_000, [])
    assert node_free(4, 8_000, [], [], ahead_cores=2) == Free(4, 8_000, [])  # idle: the node, no more
    assert node_free(4, 8_000, [], [Held(3, 7_000, None)], ahead_cores=4) == Free(4, 8_000, [])  # clamped
    assert node_free(4, 8_000, [], full, ahead_cores=99) == Free(4, 8_000, [])  # at most one node's worth waits
    gpus = node_free(4, 8_000, [0, 1], [Held(4, 1_000, [0])], ahead_cores=4)
    assert gpus.gpu_ids == [1]  # GPUs only as they are


def test_needs_fit_only_when_every_resource_and_tag_is_there() -> None:
    free = Free(cores=8, memory_mb=16_000, gpu_ids=[0])
    assert fits(Needs(8, 16_000, 1), free)
    assert not fits(Needs(9, 1, 0), free)
    assert not fits(Needs(1, 16_001, 0), free)
    assert not fits(Needs(1, 1, 2), free)
    assert fits(Needs(1, 1, 0, frozenset({"linux"})), free, {"linux", "gpu"})
    assert not fits(Needs(1, 1, 0, frozenset({"linux", "maya"})), free, {"linux"})


def test_take_gives_gpus_by_index_and_returns_the_rest() -> None:
    given, rest = take(Needs(2, 1_000, 1), Free(8, 4_000, [3, 5]))
    assert given == [3] and rest == Free(6, 3_000, [5])


def test_tag_set_reads_stored_keys() -> None:
    assert tag_set("") == frozenset() and tag_set("gpu,linux") == frozenset({"gpu", "linux"})
