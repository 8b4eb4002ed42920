"""The agent's memory guard decision (`agent/memory_guard.py`) and the server's memory rule (`model/memory_rule.py`)."""

from __future__ import annotations

from thresher.agent.memory_guard import TaskMemory, choose_victim, free_floor_mb, oom_kill_count
from thresher.model.memory_rule import memory_after_oom, memory_after_peak


def test_no_victim_while_the_node_has_memory() -> None:
    tasks = [TaskMemory("a", rss_mb=3000, reserved_mb=1000)]
    assert choose_victim(tasks, available_mb=8000, free_floor_mb=500, announced_mb=16000) is None
    assert choose_victim([], available_mb=10, free_floor_mb=500, announced_mb=None) is None


def test_a_short_node_stops_the_task_furthest_over_its_reservation() -> None:
    tasks = [TaskMemory("big-but-reserved", rss_mb=8000, reserved_mb=8000),
             TaskMemory("a little over", rss_mb=1200, reserved_mb=1000),
             TaskMemory("far over", rss_mb=1946, reserved_mb=1024)]
    victim = choose_victim(tasks, available_mb=180, free_floor_mb=500, announced_mb=None)
    assert victim is not None and victim.key == "far over"
    assert victim.reason == "out of memory: used 1.9 GB of 1.0 GB reserved; node had 180 MB free"


def test_only_a_task_over_its_reservation_is_stopped() -> None:
    tasks = [TaskMemory("a", rss_mb=900, reserved_mb=1000), TaskMemory("b", rss_mb=100, reserved_mb=100)]
    assert choose_victim(tasks, available_mb=10, free_floor_mb=500, announced_mb=None) is None


def test_a_task_without_a_known_reservation_is_never_stopped() -> None:
    tasks = [TaskMemory(7, rss_mb=600, reserved_mb=0)]  # an older server sends none
    assert choose_victim(tasks, available_mb=10, free_floor_mb=500, announced_mb=300) is None


def test_tasks_using_more_than_the_node_announced_make_it_short() -> None:
    tasks = [TaskMemory(7, rss_mb=600, reserved_mb=100)]
    victim = choose_victim(tasks, available_mb=50_000, free_floor_mb=500, announced_mb=300)
    assert victim is not None and victim.key == 7
    assert victim.reason == "out of memory: used 600 MB of 100 MB reserved; tasks used 600 MB of the 300 MB the node offers"
    assert choose_victim(tasks, available_mb=50_000, free_floor_mb=500, announced_mb=700) is None


def test_a_zero_floor_turns_the_guard_off() -> None:
    tasks = [TaskMemory(7, rss_mb=600, reserved_mb=100)]
    assert choose_victim(tasks, available_mb=0, free_floor_mb=0, announced_mb=300) is None
    assert free_floor_mb(0, 64_000) == 0
    assert free_floor_mb(None, 16_000) == 800  # 5% of RAM ...
    assert free_floor_mb(None, 256_000) == 2048  # ... at most 2 GB
    assert free_floor_mb(1000, 16_000) == 1000


def test_the_oom_counter_reads_best_effort() -> None:
    assert oom_kill_count() >= 0


def test_an_out_of_memory_retry_reserves_half_again_its_peak() -> None:
    assert memory_after_oom(100, 600.2, 16000) == 901
    assert memory_after_oom(100, 600, 700) == 700  # capped at the largest node
    assert memory_after_oom(2000, 600, 700) == 2000  # never less than it had
    assert memory_after_oom(100, None, 16000) == 100  # no peak known: no figure to grow from
    assert memory_after_oom(100, 600, None) == 900  # no node known: no cap


def test_a_peak_over_the_reservation_is_what_the_layer_reserves() -> None:
    assert memory_after_peak(100, 350.1, 16000) == 351
    assert memory_after_peak(100, 100.0, 16000) is None  # the reservation held it: nothing to write
    assert memory_after_peak(100, None, 16000) is None
    assert memory_after_peak(100, 99_999, 16000) == 16000
    assert memory_after_peak(20000, 30000, 16000) is None  # already past the largest node: not lowered
