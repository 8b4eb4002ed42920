"""CPU pinning (`pin_cpus`): concurrent tasks get distinct CPUs, as many as they reserved, given back
when they end; a task the allocator cannot serve runs unpinned; a real child runs on its CPUs."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from thresher.agent.cpus import CpuAllocator, usable_cpus
from thresher.agent.runner import TaskRunner
from thresher.wire.agent import Assignment


def test_concurrent_tasks_get_distinct_cpus_and_give_them_back() -> None:
    cpus = CpuAllocator([0, 1, 2, 3, 4, 5])
    assert cpus.take(1, 2) == [0, 1]
    assert cpus.take(2, 3) == [2, 3, 4]
    assert cpus.take(1, 2) == [0, 1]       # the same attempt asking again keeps its CPUs
    assert cpus.take(3, 2) is None         # one free: the task runs unpinned, never crowded
    assert cpus.take(4, 0) is None         # no reservation, no pinning
    cpus.give_back(1)
    assert cpus.take(3, 2) == [0, 1] and cpus.free() == [5]
    cpus.give_back(99)                     # one that held none: nothing changes
    assert cpus.free() == [5]


def test_the_allocator_is_safe_across_threads() -> None:
    cpus = CpuAllocator(list(range(64)))
    got: list[list[int] | None] = []
    threads = [threading.Thread(target=lambda n=n: got.append(cpus.take(n, 2))) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [c for g in got if g for c in g]
    assert sorted(taken) == list(range(64)) and cpus.free() == []


@pytest.mark.skipif(not usable_cpus(), reason="the OS cannot pin processes")
def test_a_pinned_task_runs_on_its_cpus(tmp_path: Path) -> None:
    mine = usable_cpus()[:1]
    code = "import os; print('AFFINITY', sorted(os.sched_getaffinity(0)), os.environ['OMP_NUM_THREADS'])"
    assignment = Assignment(attempt_id=1, task_id=1, job_id=1, job_name="j", layer="l", frames="1",
                            argv=[sys.executable, "-c", code], cores=1, cwd=str(tmp_path))
    result = TaskRunner(assignment, tmp_path / "log.txt", cpus=mine).run()
    assert result.exit_code == 0
    assert f"AFFINITY {mine} 1" in (tmp_path / "log.txt").read_text()
    assert os.sched_getaffinity(0) == set(usable_cpus())  # the agent itself stays unpinned
