"""The dispatch rule (`model.dispatch_rule`), without a database: what fits a node, the order projects
are served in (the five properties the studio asks for), caps, licence limits and blocklists."""

from __future__ import annotations

import heapq
import itertools

from thresher.model.dispatch_rule import (
    Ask,
    Candidate,
    Folder,
    Limit,
    Policy,
    Project,
    Stake,
    Usage,
    choose,
    folder_key,
    limit_key,
    limit_usage_key,
    limit_use_of,
    parse_limit_key,
    project_key,
    refusal,
    stake_key,
    units_by_limit,
)
from thresher.model.fit import Free, Needs, placement_key
from thresher.server.dispatch import usable_tag_keys

_ids = itertools.count(1)


def _c(task_id: int | None = None, cores: int = 1, mem: int = 100, gpus: int = 0, *, project: int = 1,
       job: int = 1, folder: int | None = None, urgent: bool = False, priority: int = 50,
       limits: tuple[tuple[str, int], ...] = (), tags: frozenset[str] = frozenset(),
       pools: frozenset[str] = frozenset(), last_node: int | None = None, tries: int = 0) -> Candidate:
    return Candidate(next(_ids) if task_id is None else task_id, job, 1, Needs(cores, mem, gpus, tags, pools),
                     project_id=project, folder_id=folder, limits=limits, urgent=urgent, priority=priority,
                     last_node_id=last_node, tries=tries)


def _pick(candidates: list[Candidate], free: Free, policy: Policy | None = None, usage: Usage | None = None,
          **ask: object) -> list[int]:
    queues: dict[int, list[Candidate]] = {}
    for c in candidates:
        queues.setdefault(c.project_id, []).append(c)
    chosen = choose(Ask(node_id=7, free=free, **ask), queues, usage or Usage(), policy or Policy())  # type: ignore[arg-type]
    return [choice.candidate.task_id for choice in chosen]


# -- what fits ----------------------------------------------------------------------------------

def test_a_32_core_node_takes_four_8_core_tasks() -> None:
    assert _pick([_c(i, cores=8) for i in range(10)], Free(32, 64_000)) == [0, 1, 2, 3]


def test_order_is_kept_and_tasks_that_do_not_fit_are_passed_over() -> None:
    assert _pick([_c(1, cores=6), _c(2, cores=4), _c(3, cores=2)], Free(8, 64_000)) == [1, 3]


def test_memory_limits_the_pick() -> None:
    assert len(_pick([_c(1, mem=3000), _c(2, mem=3000), _c(3, mem=3000)], Free(16, 7000))) == 2


def test_gpus_are_given_by_index_and_never_twice() -> None:
    queues = {1: [_c(1, gpus=1), _c(2, gpus=2), _c(3, gpus=1)]}
    chosen = choose(Ask(7, Free(16, 64_000, [0, 1, 2])), queues, Usage(), Policy())
    assert [c.gpu_ids for c in chosen] == [[0], [1, 2]]


def test_placements_a_node_can_serve() -> None:
    keys = ["", "linux", "gpu,linux", "maya", placement_key(["linux"], ["farm"])]
    assert usable_tag_keys(keys, ["linux"], "default") == ["", "linux"]
    assert usable_tag_keys(keys, ["linux", "gpu", "maya"], "default") == keys[:4]
    assert usable_tag_keys(keys, ["linux"], "farm") == ["", "linux", "linux@farm"]
    assert usable_tag_keys(keys, [], "default") == [""]


def test_a_task_needing_tags_or_a_pool_the_node_lacks_is_passed_over() -> None:
    maya = _c(1, tags=frozenset({"maya"}))
    gpu_pool = _c(2, pools=frozenset({"gpu"}))
    assert _pick([maya, gpu_pool, _c(3)], Free(4, 1000), tags=frozenset({"linux"}), pool="default") == [3]
    assert _pick([maya, gpu_pool, _c(3)], Free(4, 1000), tags=frozenset({"maya"}), pool="gpu") == [1, 2, 3]


def test_limit_keys_read_back() -> None:
    assert parse_limit_key(limit_key({"nuke": 1, "houdini-engine": 2})) == (("houdini-engine", 2), ("nuke", 1))
    assert parse_limit_key("") == ()


def test_licence_units_held_add_up_by_name() -> None:
    # One attempt's bookings: its stake's counters (no units) and two licences; a node adds its attempts'.
    booked = [[stake_key(1, "default"), 4, 0, 0], [limit_usage_key("nuke"), 0, 0, 1],
              [limit_usage_key("houdini-engine"), 0, 0, 2]]
    assert limit_use_of(booked) == {"nuke": 1, "houdini-engine": 2}
    assert units_by_limit([("nuke", 1)], [("nuke", 2), ("arnold", 1)], []) == {"nuke": 3, "arnold": 1}
    assert units_by_limit() == {}


# -- the five properties ------------------------------------------------------------------------

def test_1_a_project_below_its_guarantee_is_served_first() -> None:
    policy = Policy(projects={1: Project(1, "big", weight=10), 2: Project(2, "small", weight=1)},
                    stakes={(2, "default"): Stake(guaranteed_cores=4)})
    usage = Usage({stake_key(1, "default"): [0, 0, 0], stake_key(2, "default"): [2, 0, 0]})
    tasks = [_c(i, project=1, job=1) for i in range(10, 20)] + [_c(i, project=2, job=2) for i in range(20, 30)]
    picked = _pick(tasks, Free(3, 64_000), policy, usage)
    assert picked[:2] == [20, 21]  # small is 2 below its guarantee of 4: it gets those first
    assert picked[2] == 10         # then big, whose weight is far above


def test_2_a_saturated_pool_is_shared_by_weight() -> None:
    """Ten simulated minutes of a saturated 64-core pool: three projects of weight 3, 2, 1 with tasks of
    varying length; each project's mean share of the pool within 5 points of its target."""
    weights = {1: 3.0, 2: 2.0, 3: 1.0}
    policy = Policy(projects={p: Project(p, f"p{p}", weight=w) for p, w in weights.items()})
    usage = Usage()
    queues = {p: [_c(project=p, job=p) for _ in range(5000)] for p in weights}
    length = {1: 7.0, 2: 13.0, 3: 5.0}  # seconds per task: shares are of cores, not of task counts
    running: list[tuple[float, int, int]] = []  # (ends at, project, task)
    free_cores, now, step, samples = 64, 0.0, 1.0, []
    while now < 600:
        while running and running[0][0] <= now:
            _, project, _ = heapq.heappop(running)
            usage.book([(project_key(project), 1, 0, 0), (stake_key(project, "default"), 1, 0, 0)], -1)
            free_cores += 1
        for choice in choose(Ask(1, Free(free_cores, 10**9)), queues, usage, policy):
            c = choice.candidate
            heapq.heappush(running, (now + length[c.project_id], c.project_id, c.task_id))
            free_cores -= 1
        if now >= 60:  # after the first minute's ramp-up
            samples.append({p: usage.cores(stake_key(p, "default")) / 64 for p in weights})
        now += step
    for project, weight in weights.items():
        share = sum(s[project] for s in samples) / len(samples)
        assert abs(share - weight / sum(weights.values())) < 0.05, (project, share)


def test_3_within_a_project_folder_priority_then_job_priority_then_submission_order() -> None:
    policy = Policy(projects={1: Project(1, "show")},
                    folders={5: Folder(5, "dailies", priority=10), 6: Folder(6, "sq010", priority=0)})
    # the dispatcher reads a project's tasks in this order (the index); the rule keeps it
    ordered = [_c(1, job=3, folder=5, priority=10), _c(2, job=1, folder=6, priority=90),
               _c(3, job=2, folder=6, priority=50), _c(4, job=1, folder=6, priority=50)]
    assert _pick(ordered, Free(4, 64_000), policy) == [1, 2, 3, 4]


def test_3b_a_folder_below_its_minimum_goes_first_in_its_project() -> None:
    policy = Policy(projects={1: Project(1, "show")},
                    folders={5: Folder(5, "dailies", priority=10), 6: Folder(6, "sq010", min_cores=2)})
    usage = Usage({folder_key(6): [1, 0, 0]})
    assert _pick([_c(1, folder=5), _c(2, folder=5), _c(3, folder=6), _c(4, folder=6)], Free(3, 64_000),
                 policy, usage) == [3, 1, 2]


def test_4_an_urgent_job_goes_ahead_of_fair_share() -> None:
    policy = Policy(projects={1: Project(1, "a", weight=1), 2: Project(2, "b", weight=1)})
    usage = Usage({stake_key(1, "default"): [100, 0, 0], stake_key(2, "default"): [0, 0, 0]})
    tasks = [_c(1, project=1, job=1, urgent=True), _c(2, project=2, job=2)]
    assert _pick(tasks, Free(1, 64_000), policy, usage) == [1]
    assert _pick([_c(3, project=1, job=1), _c(4, project=2, job=2)], Free(1, 64_000), policy, usage) == [4]


def test_5_a_node_never_idles_while_a_task_it_may_run_is_ready() -> None:
    """The most deserving project's work does not fit (too big, capped, blocklisted, a licence out):
    the node takes the next project's instead of nothing."""
    policy = Policy(projects={1: Project(1, "a", weight=10, max_cores=8), 2: Project(2, "b", weight=1)},
                    limits={"nuke": Limit("nuke", 1)})
    usage = Usage({project_key(1): [8, 0, 0], limit_usage_key("nuke"): [0, 0, 1]})
    tasks = [_c(1, project=1, job=1), _c(2, project=2, job=2, cores=64), _c(3, project=2, job=3),
             _c(4, project=2, job=4, limits=(("nuke", 1),)), _c(5, project=2, job=5)]
    assert _pick(tasks, Free(2, 64_000), policy, usage, blocked_jobs=frozenset({3})) == [5]


# -- caps, limits, blocklists ---------------------------------------------------------------------

def test_caps_are_checked_with_what_this_round_already_gave() -> None:
    policy = Policy(projects={1: Project(1, "a", max_cores=5)}, stakes={(1, "default"): Stake(max_cores=4)},
                    folders={3: Folder(3, "f", max_cores=3)})
    assert len(_pick([_c(folder=3, cores=1) for _ in range(10)], Free(16, 64_000), policy)) == 3
    assert len(_pick([_c(cores=1) for _ in range(10)], Free(16, 64_000), policy)) == 4


def test_licence_limits_farm_wide_and_per_node() -> None:
    policy = Policy(limits={"nuke": Limit("nuke", max_total=5, max_per_node=2)})
    tasks = [_c(limits=(("nuke", 1),)) for _ in range(10)]
    assert len(_pick(tasks, Free(16, 64_000), policy)) == 2
    assert len(_pick(tasks, Free(16, 64_000), policy, limit_use={"nuke": 1})) == 1
    full = Usage({limit_usage_key("nuke"): [0, 0, 5]})
    assert _pick(tasks, Free(16, 64_000), policy, full) == []
    assert refusal(tasks[0], "default", full, policy) == "licence nuke 5/5 in use"


def test_gpu_caps() -> None:
    policy = Policy(projects={1: Project(1, "a", max_gpus=1)})
    chosen = _pick([_c(1, gpus=1), _c(2, gpus=1), _c(3)], Free(8, 64_000, [0, 1]), policy)
    assert chosen == [1, 3]


def test_refusals_say_what_is_full() -> None:
    policy = Policy(projects={1: Project(1, "ferryman", max_cores=64)},
                    stakes={(1, "gpu"): Stake(max_cores=8)})
    usage = Usage({project_key(1): [64, 0, 0]})
    assert refusal(_c(project=1), "default", usage, policy) == "project ferryman at its cap (64/64 cores)"
    usage = Usage({stake_key(1, "gpu"): [8, 0, 0]})
    assert refusal(_c(project=1), "gpu", usage, policy) == "project ferryman at its cap in pool gpu (8/8 cores)"
    assert refusal(_c(project=1), "default", usage, policy) is None


def test_a_retry_prefers_a_node_it_has_not_failed_on() -> None:
    failed_here = _c(1, last_node=7, tries=1)
    assert _pick([failed_here, _c(2)], Free(1, 64_000)) == [2]
    assert _pick([failed_here], Free(1, 64_000)) == [1]  # but it is not left waiting when nothing else is


def test_lowering_a_cap_below_what_runs_stops_new_starts() -> None:
    policy = Policy(projects={1: Project(1, "a", max_cores=2)})
    assert _pick([_c()], Free(4, 64_000), policy, Usage({project_key(1): [6, 0, 0]})) == []


def test_a_task_refused_everywhere_leaves_the_round_after_one_check() -> None:
    """A licence at its farm-wide total holds up a project's queue: the first node to look drops those
    tasks from the round's queues, so the nodes after it do not pass over them again, and every node
    still gets the same work it would have."""
    policy = Policy(limits={"katana": Limit("katana", 2)})
    held = [_c(i, project=1, limits=(("katana", 1),)) for i in range(1, 6)]
    plain = [_c(i, project=1) for i in range(6, 12)]
    queues = {1: held + plain}
    usage = Usage()
    first = choose(Ask(1, Free(4, 64_000)), queues, usage, policy)
    assert [c.candidate.task_id for c in first] == [1, 2, 6, 7]  # two licences, then plain tasks
    assert [c.task_id for c in queues[1]] == [8, 9, 10, 11]  # the katana tasks left with the licence full
    second = choose(Ask(2, Free(4, 64_000)), queues, usage, policy)
    assert [c.candidate.task_id for c in second] == [8, 9, 10, 11]
