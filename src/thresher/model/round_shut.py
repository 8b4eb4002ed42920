"""What a round of dispatch need not read: the ready tasks that no node may take all round.

Some refusals hold on every node alike (`dispatch_rule.farm_refusal`): a project at its cap, a folder
at its maximum, a licence at its farm-wide total. Within one round usage only grows (the rule books
what it hands out, nothing is released), so a task refused so when the round starts stays refused
for every node that asks in it. Reading such tasks costs a round all its reads: in a farm that has
run out of what it may run now, each project's first rows are tasks held up by a full licence or a
capped project, the read is cut at its limit before reaching the tasks that could run, and those are
never seen. So the candidate read leaves them out (`queries.dispatch.candidates`):

- a project at its cap: its read asks only for tasks of at most the cores (and GPUs) left under it,
  and a project with no core left is not read at all;
- a folder at its maximum (no core left): none of its tasks;
- a licence with no unit left: none of the tasks that hold it (every task holds at least one unit).

Only whole refusals are left out (a licence with 2 units left still lets the rule see a task that
wants 3 and refuse it): what is left out is a subset of what `farm_refusal` refuses, so the rule
picks the same among what it reads, and reads further into the tasks it may run. The caps are still
checked by the rule against the counters the round reads (locked on PostgreSQL), so a stale view
here never lets one be exceeded: at worst a task freed a moment ago waits for the next round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from thresher.model.dispatch_rule import Policy, Usage, folder_key, limit_usage_key, project_key


@dataclass(frozen=True)
class Room:
    """What a capped project has left under its cap (None: no cap of that kind)."""

    cores: int | None = None
    gpus: int | None = None


@dataclass(frozen=True)
class Shut:
    """The farm-wide refusals of one round, as the candidate read applies them."""

    rooms: dict[int, Room] = field(default_factory=dict)   # capped projects by id
    folders: frozenset[int] = frozenset()                  # folders with no core left
    licences: tuple[str, ...] = ()                         # licences with no unit left, sorted

    def read_bounds(self, project_id: int, cores: int, gpus: int) -> tuple[int, int]:
        """The largest task (cores, GPUs) worth reading of this project, given the largest the asking
        nodes have free: no more than the project has left under its cap. Cores under 1: skip it."""
        room = self.rooms.get(project_id)
        if room is None:
            return cores, gpus
        return (cores if room.cores is None else min(cores, room.cores),
                gpus if room.gpus is None else min(gpus, max(0, room.gpus)))


def usage_keys(project_ids: Iterable[int], policy: Policy) -> list[str]:
    """The counters `shut` looks at: capped projects, folders with a maximum, every licence."""
    keys = [project_key(p) for p in project_ids
            if policy.project(p).max_cores is not None or policy.project(p).max_gpus is not None]
    keys += [folder_key(f.id) for f in policy.folders.values() if f.max_cores is not None]
    keys += [limit_usage_key(name) for name in policy.limits]
    return sorted(set(keys))


def shut(project_ids: Iterable[int], policy: Policy, usage: Usage) -> Shut:
    """The refusals that hold for every node all round, from the policy and what runs now."""
    rooms: dict[int, Room] = {}
    for project_id in project_ids:
        project = policy.project(project_id)
        if project.max_cores is None and project.max_gpus is None:
            continue
        key = project_key(project_id)
        rooms[project_id] = Room(None if project.max_cores is None else project.max_cores - usage.cores(key),
                                 None if project.max_gpus is None else project.max_gpus - usage.gpus(key))
    folders = frozenset(f.id for f in policy.folders.values()
                        if f.max_cores is not None and usage.cores(folder_key(f.id)) >= f.max_cores)
    licences = tuple(sorted(name for name, limit in policy.limits.items()
                            if usage.units(limit_usage_key(name)) >= limit.max_total))
    return Shut(rooms, folders, licences)
