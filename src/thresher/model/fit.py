"""The one rule for "does this work fit this node": what a node has free, and whether a task's needs fit it.

Dispatch (`server/dispatch.py`: what to hand out), the look for news (which waiting agents to wake),
submit's runnable check (could any node ever run this layer?) and the node views (the free figures a
person sees) all ask this module, so a rule added here (licence limits, blocklists, pools...) holds
for all of them at once: an agent never sleeps through work it could take, nor wakes for work it
cannot. Pure: no I/O, tested without a database (`tests/unit/test_fit.py`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Iterable, Protocol, Sequence


@dataclass(frozen=True)
class Needs:
    """What one task (or every task of a layer) asks of a node."""

    cores: int
    memory_mb: int
    gpus: int = 0
    tags: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()     # the pools it may run in; any pool when empty


@dataclass
class Free:
    """What a node has free right now: cores, memory and the indices of its free GPUs."""

    cores: int
    memory_mb: int
    gpu_ids: list[int] = field(default_factory=list)


class Holding(Protocol):
    """What a live attempt holds on its node (a database row or a view of one; read-only)."""

    @property
    def cores(self) -> int: ...

    @property
    def memory_mb(self) -> int: ...

    @property
    def gpu_ids(self) -> Any: ...


#: Between the tags and the pools of a placement key (neither a tag nor a pool name may hold it).
POOLS_MARK = "@"


def placement_key(tags: Iterable[str], pools: Iterable[str] = ()) -> str:
    """Where a layer's tasks may run, as the tag_sets table stores it: sorted tags joined by ","
    ("" for none), then "@" and the sorted pools when the layer names any."""
    key = ",".join(sorted(set(tags)))
    pool_list = sorted(set(pools))
    return f"{key}{POOLS_MARK}{','.join(pool_list)}" if pool_list else key


@functools.lru_cache(maxsize=4096)
def placement(key: str) -> tuple[frozenset[str], frozenset[str]]:
    """The tags and pools of a placement key (see `placement_key`). A farm has few of them and dispatch
    asks for every candidate row, so the answers are kept."""
    tags, _, pools = key.partition(POOLS_MARK)
    return frozenset(filter(None, tags.split(","))), frozenset(filter(None, pools.split(",")))


def tag_set(key: str) -> frozenset[str]:
    """The tags of a placement key."""
    return placement(key)[0]


def placed(key: str, node_tags: AbstractSet[str], node_pool: str | None) -> bool:
    """Whether a node with these tags in this pool may run tasks of this placement key."""
    tags, pools = placement(key)
    return tags <= node_tags and (not pools or node_pool in pools)


def gpu_indices(gpus: Iterable[Any] | None) -> list[int]:
    """The indices of a node's GPUs as the agent registered them (`[{"index": 0, ...}, ...]`)."""
    return [int(gpu["index"]) for gpu in (gpus or [])]


def node_free(cores: int, memory_mb: int, gpu_ids: Sequence[int], live: Iterable[Holding],
              ahead_cores: int = 0) -> Free:
    """What is left of a node's cores, memory and GPUs once its live attempts have what they hold.

    `ahead_cores`: the node's agent keeps that many cores' worth of tasks waiting on the node, each
    started the moment a running one frees its room (agent setting `tasks_ahead`), so a short task's
    slot never waits for a round trip to the server. Its cores and memory then count as that much
    larger (memory in proportion), but never as more than the node has: a task handed out ahead always
    fits the node once the tasks before it are done. GPUs count only as they are: a waiting task holds
    indices that no other live attempt has."""
    live = list(live)
    busy = {int(g) for attempt in live for g in (attempt.gpu_ids or [])}
    booked_cores, booked_memory = sum(a.cores for a in live), sum(a.memory_mb for a in live)
    ahead = min(max(ahead_cores, 0), cores)
    extra_memory = memory_mb * ahead // cores if ahead else 0
    return Free(cores=min(cores, cores + ahead - booked_cores),
                memory_mb=min(memory_mb, memory_mb + extra_memory - booked_memory),
                gpu_ids=[g for g in gpu_ids if g not in busy])


def fits(needs: Needs, free: Free, node_tags: AbstractSet[str] = frozenset(), node_pool: str | None = None) -> bool:
    """Whether work with these needs can start on a node with this much free, these tags, in this pool
    (`node_pool` None: any pool, for callers that ask about resources and tags only)."""
    return (needs.cores <= free.cores and needs.memory_mb <= free.memory_mb and needs.gpus <= len(free.gpu_ids)
            and needs.tags <= node_tags and (not needs.pools or node_pool is None or node_pool in needs.pools))


def take(needs: Needs, free: Free) -> tuple[list[int], Free]:
    """Give work that fits (see `fits`) its share: the GPU indices it gets, and what is left free after."""
    given, rest = free.gpu_ids[:needs.gpus], free.gpu_ids[needs.gpus:]
    return given, Free(free.cores - needs.cores, free.memory_mb - needs.memory_mb, rest)
