"""The dispatch rule: which ready task a free node gets. Pure, so it is tested (and simulated) without a
database; `server/dispatch.py` reads the farm, calls `choose` for each asking node and claims what it chose.

For a node in pool P with resources free, one task at a time, until nothing more fits:

1. **Urgent first.** A task of a job a wrangler marked urgent goes ahead of fair share (highest job
   priority, then the oldest job), still within every cap.
2. **Guarantees.** Projects using fewer cores (or GPUs) in P than their guaranteed size there come
   next, the furthest below it (running / guaranteed) first.
3. **Fair share.** Then every other project, the one using the fewest cores in P per unit of weight
   first (running / weight). Giving each free slot to the lowest such ratio is what shares a
   saturated pool in proportion to the weights: the ratio of a project that gets a slot rises, and the
   next slot goes to whoever is lowest then. A project of weight 0 gets only what nobody else wants.
4. **Within a project**: tasks of folders below their guaranteed minimum first, then folder priority,
   job priority, submission order (job id), frame order (task id); the dispatcher reads each
   project's tasks in that order off one index. A task that last failed on this very node is taken
   only when nothing else of the project fits (a retry prefers a node it has not failed on).
5. **Never idle.** A project, folder or task that cannot take this slot (nothing of it fits the
   node's free resources, tags or pool; a cap, burst cap, folder maximum or licence limit would be
   exceeded; the node is on the job's blocklist) is passed over and the next one asked, so a node is
   left idle only when no task it could run is allowed.

Every cap is checked against the usage counters (`Usage`) plus what this task would book, so it is
never exceeded; lowering a cap below what runs stops new starts and kills nothing. What the rule does
not do: preempt (a running task is never stopped to make room), reserve a node for a large task that
does not fit yet (no backfill window), or weigh past usage (shares are of what runs now, not of the
last hour). `refusal` says in words why a task cannot start: the pending reasons people read.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Iterable, Sequence

from thresher.model.fit import Free, Needs, fits, take

#: One counter a running attempt holds: (usage key, cores, GPUs, licence units).
Booking = tuple[str, int, int, int]


def project_key(project_id: int) -> str:
    return f"project:{project_id}"


def stake_key(project_id: int, pool: str) -> str:
    return f"project:{project_id}/pool:{pool}"


def folder_key(folder_id: int) -> str:
    return f"folder:{folder_id}"


def limit_usage_key(name: str) -> str:
    return f"limit:{name}"


LIMIT_PREFIX = limit_usage_key("")


def limit_key(limits: dict[str, int]) -> str:
    """The limits a layer's tasks consume as their rows store it: "name=units" sorted, joined by ","."""
    return ",".join(f"{name}={units}" for name, units in sorted(limits.items()))


@functools.lru_cache(maxsize=1024)
def parse_limit_key(key: str) -> tuple[tuple[str, int], ...]:
    """The (name, units) pairs of a stored limit key (see `limit_key`); a farm has few, so they are kept."""
    pairs = (item.partition("=") for item in key.split(",") if item)
    return tuple((name, int(units)) for name, _, units in pairs)


@dataclass(frozen=True)
class Project:
    id: int
    name: str = ""
    weight: float = 1.0
    max_cores: int | None = None
    max_gpus: int | None = None


@dataclass(frozen=True)
class Stake:
    """A project's share of one pool (OpenCue's subscription): guaranteed size and burst cap."""

    guaranteed_cores: int = 0
    max_cores: int | None = None
    guaranteed_gpus: int = 0
    max_gpus: int | None = None


@dataclass(frozen=True)
class Folder:
    id: int
    name: str = ""
    priority: int = 0
    min_cores: int | None = None
    max_cores: int | None = None


@dataclass(frozen=True)
class Limit:
    """A licence limit: units in use farm-wide at most, and on one node at most (None: no such cap)."""

    name: str
    max_total: int
    max_per_node: int | None = None


@dataclass
class Policy:
    """The farm's shares and caps, as admins set them."""

    projects: dict[int, Project] = field(default_factory=dict)
    stakes: dict[tuple[int, str], Stake] = field(default_factory=dict)
    folders: dict[int, Folder] = field(default_factory=dict)
    limits: dict[str, Limit] = field(default_factory=dict)

    def project(self, project_id: int) -> Project:
        return self.projects.get(project_id) or Project(project_id, f"#{project_id}")

    def stake(self, project_id: int, pool: str) -> Stake:
        return self.stakes.get((project_id, pool)) or Stake()


_NOTHING = (0, 0, 0)   # the counters of a key nothing booked


@dataclass
class Usage:
    """What runs now, per usage key: [cores, GPUs, licence units]. `book` moves it as the rule hands
    out work, so the next choice in the same round sees the last one."""

    counters: dict[str, list[int]] = field(default_factory=dict)

    def cores(self, key: str) -> int:
        return self.counters.get(key, _NOTHING)[0]

    def gpus(self, key: str) -> int:
        return self.counters.get(key, _NOTHING)[1]

    def units(self, key: str) -> int:
        return self.counters.get(key, _NOTHING)[2]

    def book(self, booking: Iterable[Booking], sign: int = 1) -> None:
        for key, cores, gpus, units in booking:
            counter = self.counters.setdefault(key, [0, 0, 0])
            counter[0] += sign * cores
            counter[1] += sign * gpus
            counter[2] += sign * units


@dataclass(frozen=True)
class Candidate:
    """A ready task as the rule sees it: where it belongs, what it needs, and its place in the order."""

    task_id: int
    job_id: int
    layer_id: int
    needs: Needs
    project_id: int = 1
    folder_id: int | None = None
    limits: tuple[tuple[str, int], ...] = ()
    urgent: bool = False
    priority: int = 50
    last_node_id: int | None = None   # where its latest attempt ran
    tries: int = 0

    def failed_on(self, node_id: int) -> bool:
        return self.tries > 0 and self.last_node_id == node_id


@dataclass
class Ask:
    """A node asking for work: what it has free, what it carries, where it serves, what it may not run."""

    node_id: int
    free: Free
    pool: str = "default"
    tags: AbstractSet[str] = frozenset()
    limit_use: dict[str, int] = field(default_factory=dict)   # licence units its live attempts hold
    blocked_jobs: AbstractSet[int] = frozenset()              # jobs whose blocklist names it


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    gpu_ids: list[int]
    booking: tuple[Booking, ...]


def booking(c: Candidate, pool: str) -> tuple[Booking, ...]:
    """The counters a task running in this pool holds."""
    return _booking(c.project_id, c.folder_id, c.limits, c.needs.cores, c.needs.gpus, pool)


@functools.lru_cache(maxsize=8192)
def _booking(project_id: int, folder_id: int | None, limits: tuple[tuple[str, int], ...], cores: int, gpus: int,
             pool: str) -> tuple[Booking, ...]:
    """`booking` by what it depends on: a farm has few such combinations, and dispatch asks for every
    candidate in every pool of a round, so the answers are kept (tuples: nobody changes them)."""
    held: list[Booking] = [(project_key(project_id), cores, gpus, 0), (stake_key(project_id, pool), cores, gpus, 0)]
    if folder_id is not None:
        held.append((folder_key(folder_id), cores, gpus, 0))
    held.extend((limit_usage_key(name), 0, 0, units) for name, units in limits)
    return tuple(held)


def booked_keys(project_id: int, folder_id: int | None, limits: tuple[tuple[str, int], ...], pool: str) -> list[str]:
    """The usage keys a task of this project, folder and licences books in this pool (whatever its size)."""
    return [key for key, *_ in _booking(project_id, folder_id, limits, 1, 0, pool)]


def limit_use_of(bookings: Iterable[Sequence[object]]) -> dict[str, int]:
    """Licence units per limit name held by these bookings (one attempt's stored `booked`)."""
    return units_by_limit([(key[len(LIMIT_PREFIX):], units) for key, _cores, _gpus, units in bookings
                           if isinstance(key, str) and key.startswith(LIMIT_PREFIX) and isinstance(units, int)])


def units_by_limit(*held: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Licence units per limit name, added up over what several attempts hold (a node's live ones)."""
    use: dict[str, int] = {}
    for pairs in held:
        for name, units in pairs:
            use[name] = use.get(name, 0) + units
    return use


def refusal(c: Candidate, pool: str, usage: Usage, policy: Policy,
            node_limit_use: dict[str, int] | None = None) -> str | None:
    """Why this task may not start in this pool now (a cap, burst cap, folder maximum or licence limit
    it would exceed), or None. `node_limit_use`: the licence units held on the node it would run on."""
    return (_project_cap(c, usage, policy) or _stake_cap(c, pool, usage, policy) or _folder_cap(c, usage, policy)
            or _licences(c, usage, policy, node_limit_use))


def farm_refusal(c: Candidate, usage: Usage, policy: Policy) -> str | None:
    """The part of `refusal` that holds on every node of the farm: its project's cap, its folder's, a
    licence's farm-wide total. Within a round of dispatch usage only grows, so a task refused so stays
    refused for every node asking after it in the round, and `choose` drops it from the round's queues
    (one check instead of one per node: a licence held to its total no longer costs each node a pass
    over the tasks it holds up)."""
    return _project_cap(c, usage, policy) or _folder_cap(c, usage, policy) or _licences(c, usage, policy, None)


def _project_cap(c: Candidate, usage: Usage, policy: Policy) -> str | None:
    cores, gpus = c.needs.cores, c.needs.gpus
    project = policy.project(c.project_id)
    used = usage.cores(project_key(c.project_id))
    if project.max_cores is not None and used + cores > project.max_cores:
        return f"project {project.name} at its cap ({used}/{project.max_cores} cores)"
    used_gpus = usage.gpus(project_key(c.project_id))
    if gpus and project.max_gpus is not None and used_gpus + gpus > project.max_gpus:
        return f"project {project.name} at its cap ({used_gpus}/{project.max_gpus} GPUs)"
    return None


def _stake_cap(c: Candidate, pool: str, usage: Usage, policy: Policy) -> str | None:
    cores, gpus = c.needs.cores, c.needs.gpus
    stake = policy.stake(c.project_id, pool)
    in_pool = stake_key(c.project_id, pool)
    if stake.max_cores is not None and usage.cores(in_pool) + cores > stake.max_cores:
        return (f"project {policy.project(c.project_id).name} at its cap in pool {pool} "
                f"({usage.cores(in_pool)}/{stake.max_cores} cores)")
    if gpus and stake.max_gpus is not None and usage.gpus(in_pool) + gpus > stake.max_gpus:
        return (f"project {policy.project(c.project_id).name} at its cap in pool {pool} "
                f"({usage.gpus(in_pool)}/{stake.max_gpus} GPUs)")
    return None


def _folder_cap(c: Candidate, usage: Usage, policy: Policy) -> str | None:
    folder = policy.folders.get(c.folder_id) if c.folder_id is not None else None
    if folder is not None and folder.max_cores is not None:
        in_folder = usage.cores(folder_key(folder.id))
        if in_folder + c.needs.cores > folder.max_cores:
            return f"folder {folder.name} at its cap ({in_folder}/{folder.max_cores} cores)"
    return None


def _licences(c: Candidate, usage: Usage, policy: Policy, node_limit_use: dict[str, int] | None) -> str | None:
    for name, units in c.limits:
        limit = policy.limits.get(name)
        if limit is None:
            return f"licence {name} is not defined"
        in_use = usage.units(limit_usage_key(name))
        if in_use + units > limit.max_total:
            return f"licence {name} {in_use}/{limit.max_total} in use"
        if limit.max_per_node is not None and node_limit_use is not None:
            on_node = node_limit_use.get(name, 0)
            if on_node + units > limit.max_per_node:
                return f"licence {name} {on_node}/{limit.max_per_node} in use on the node"
    return None


def _node_licences_ok(c: Candidate, policy: Policy, node_limit_use: dict[str, int]) -> bool:
    """The per-node part of `_licences` (the farm-wide part passed already): no licence over its
    `max_per_node` on this node."""
    for name, units in c.limits:
        limit = policy.limits.get(name)
        if limit is not None and limit.max_per_node is not None \
                and node_limit_use.get(name, 0) + units > limit.max_per_node:
            return False
    return True


def project_order(project_ids: Iterable[int], pool: str, usage: Usage, policy: Policy) -> list[int]:
    """Projects in the order they are served in this pool: below their guarantee first (furthest
    below first), then by cores running per unit of weight (lowest first)."""
    def rank(project_id: int) -> tuple[int, float, float, int]:
        project, stake = policy.project(project_id), policy.stake(project_id, pool)
        key = stake_key(project_id, pool)
        cores, gpus = usage.cores(key), usage.gpus(key)
        below = [cores / stake.guaranteed_cores] if cores < stake.guaranteed_cores else []
        below += [gpus / stake.guaranteed_gpus] if gpus < stake.guaranteed_gpus else []
        if below:
            return (0, min(below), -project.weight, project_id)
        share = cores / project.weight if project.weight > 0 else math.inf
        return (1, share, -project.weight, project_id)
    return sorted(project_ids, key=rank)


def choose(ask: Ask, queues: dict[int, list[Candidate]], usage: Usage, policy: Policy) -> list[Choice]:
    """What this node takes, one task at a time by the rule (see the module's text), from each
    project's ready tasks in their order (`queues`, project id -> candidates). What it takes is removed
    from `queues` and booked in `usage`, so nodes asking in the same round are served one after the other."""
    chosen: list[Choice] = []
    free = ask.free
    limit_use = dict(ask.limit_use)
    refused: set[int] = set()   # tasks this node may not take: still so after each pick (see `_next`)
    while free.cores > 0:
        pick = _next(ask, free, limit_use, queues, usage, policy, refused)
        if pick is None:
            break
        given, free = take(pick.needs, free)
        held = booking(pick, ask.pool)
        usage.book(held)
        for name, units in pick.limits:
            limit_use[name] = limit_use.get(name, 0) + units
        queues[pick.project_id].remove(pick)
        chosen.append(Choice(pick, given, held))
    return chosen


def would_take(ask: Ask, queues: dict[int, list[Candidate]], usage: Usage, policy: Policy) -> Candidate | None:
    """The first task this node would take asking alone (nothing is taken or booked): is there work for it?"""
    return _next(ask, ask.free, dict(ask.limit_use), queues, usage, policy)


def _next(ask: Ask, free: Free, limit_use: dict[str, int], queues: dict[int, list[Candidate]], usage: Usage,
          policy: Policy, refused: set[int] | None = None) -> Candidate | None:
    """The node's next task. `refused`: the tasks found not allowed for it by earlier picks of the same
    `choose`, skipped without asking again: within one node's turn its room and licences only shrink and
    usage only grows, so what was refused stays refused (the same answer, without its cost)."""
    refused_everywhere: dict[int, set[int]] = {}  # project -> its tasks no node may take this round
    refused = set() if refused is None else refused

    def allowed(c: Candidate) -> bool:
        # The cheap checks first: most tasks passed over do not fit the node at all (another pool's,
        # too large), and the order of the checks changes no answer, only its cost.
        if c.task_id in refused:
            return False
        if not fits(c.needs, free, ask.tags, ask.pool) or c.job_id in ask.blocked_jobs:
            refused.add(c.task_id)
            return False
        if farm_refusal(c, usage, policy) is not None:
            refused_everywhere.setdefault(c.project_id, set()).add(c.task_id)
            return False
        # `refusal` less what `farm_refusal` just passed: the pool's burst cap and the node's licences
        if _stake_cap(c, ask.pool, usage, policy) is None and _node_licences_ok(c, policy, limit_use):
            return True
        refused.add(c.task_id)
        return False

    try:
        urgent = sorted(_urgent_heads(queues), key=lambda c: (-c.priority, c.job_id, c.task_id))
        for c in urgent:
            if allowed(c):
                return c
        for project_id in project_order([p for p, queue in queues.items() if queue], ask.pool, usage, policy):
            pick = _first_in_project(ask.node_id, queues[project_id], allowed, usage, policy, refused)
            if pick is not None:
                return pick
        return None
    finally:
        for project_id, gone in refused_everywhere.items():  # see `farm_refusal`: nobody later may take them
            queues[project_id] = [c for c in queues[project_id] if c.task_id not in gone]


def _urgent_heads(queues: dict[int, list[Candidate]]) -> Iterable[Candidate]:
    """The urgent candidates: each queue holds its urgent tasks first."""
    for queue in queues.values():
        for c in queue:
            if not c.urgent:
                break
            yield c


def _first_in_project(node_id: int, queue: list[Candidate], allowed: Callable[[Candidate], bool], usage: Usage,
                      policy: Policy, refused: AbstractSet[int] = frozenset()) -> Candidate | None:
    """The project's next task for this node: a folder below its minimum first, then queue order; one
    that last failed here only when nothing else is allowed. `refused`: tasks `allowed` refused this
    node already (skipped without asking it: the same answer)."""
    below = {f.id for f in policy.folders.values()
             if f.min_cores and usage.cores(folder_key(f.id)) < f.min_cores}
    if not below:  # the common case, the same answer as the ranks below give, for less per candidate
        failed_here: Candidate | None = None
        for c in queue:
            if c.task_id in refused:
                continue
            if c.tries > 0 and c.last_node_id == node_id:
                if failed_here is None and allowed(c):
                    failed_here = c
            elif allowed(c):
                return c
        return failed_here
    best: Candidate | None = None
    best_rank = (2, 2)
    for c in queue:
        rank = (0 if c.folder_id in below else 1, 1 if c.failed_on(node_id) else 0)
        if rank >= best_rank or not allowed(c):
            continue
        best, best_rank = c, rank
        if rank == (0, 0) or (rank == (1, 0) and not below):
            break
    return best
