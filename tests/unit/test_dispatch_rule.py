"""The dispatch rule's pure part: which candidates fit a node, and GPU hand-out."""

from thresher.model.fit import Free, Needs
from thresher.server.dispatch import Candidate, choose, usable_tag_keys


def _c(task_id: int, cores: int = 1, mem: int = 100, gpus: int = 0) -> Candidate:
    return Candidate(task_id, 1, 1, Needs(cores, mem, gpus))


def test_a_32_core_node_takes_four_8_core_tasks() -> None:
    picked = choose([_c(i, cores=8) for i in range(10)], Free(32, 64_000))
    assert [p.candidate.task_id for p in picked] == [0, 1, 2, 3]


def test_order_is_kept_and_tasks_that_do_not_fit_are_passed_over() -> None:
    picked = choose([_c(1, cores=6), _c(2, cores=4), _c(3, cores=2)], Free(8, 64_000))
    assert [p.candidate.task_id for p in picked] == [1, 3]


def test_memory_limits_the_pick() -> None:
    picked = choose([_c(1, mem=3000), _c(2, mem=3000), _c(3, mem=3000)], Free(16, 7000))
    assert len(picked) == 2


def test_gpus_are_given_by_index_and_never_twice() -> None:
    picked = choose([_c(1, gpus=1), _c(2, gpus=2), _c(3, gpus=1)], Free(16, 64_000, [0, 1, 2]))
    assert [p.gpu_ids for p in picked] == [[0], [1, 2]]


def test_tag_sets_a_node_can_serve() -> None:
    keys = ["", "linux", "gpu,linux", "maya"]
    assert usable_tag_keys(keys, ["linux"]) == ["", "linux"]
    assert usable_tag_keys(keys, ["linux", "gpu", "maya"]) == keys
    assert usable_tag_keys(keys, []) == [""]


def test_a_task_needing_tags_the_node_lacks_is_passed_over() -> None:
    maya = Candidate(1, 1, 1, Needs(1, 100, 0, frozenset({"maya"})))
    picked = choose([maya, _c(2)], Free(4, 1000), node_tags=frozenset({"linux"}))
    assert [p.candidate.task_id for p in picked] == [2]
