"""What a round of dispatch (`server/dispatch.py`) reads, read as cheaply as it can be: the asking nodes'
live attempts, each project's candidate rows, and the candidates the rule sees built from them.

Every round reads these, and a busy farm runs several rounds a second, so each read is cut to what the
decision needs: the live attempts' JSON is decoded once per distinct text (`held`), a candidate is
built once per row content (`candidates`), and when `_plan` reads a project longer it reads only the
rows after those it has (`ProjectReads`): the same rows as one longer read, in the same order, since
nothing is written between the reads of one `_plan`.
"""

from __future__ import annotations

import functools
import json
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

from sqlalchemy import Connection

from thresher.model import dispatch_rule as rule
from thresher.model import round_shut
from thresher.model.dispatch_rule import limit_use_of, parse_limit_key
from thresher.model.fit import Needs, placement
from thresher.server.db.queries import dispatch as q


def candidate_of(row: Any) -> rule.Candidate:
    """A candidate row (`queries.dispatch.CANDIDATES`) as the rule sees it."""
    return rule.Candidate(row.id, row.job_id, row.layer_id, _needs(row.cores, row.memory_mb, row.gpus, row.tag_key),
                          project_id=row.project_id, folder_id=row.folder_id, limits=parse_limit_key(row.limit_key),
                          urgent=bool(row.urgent), priority=row.priority, last_node_id=row.node_id, tries=row.tries)


# One cache per database engine (task ids are only unique within one database): task id -> (its row as
# last read, the candidate built from it). See `candidates`.
_candidate_caches: "weakref.WeakKeyDictionary[Any, dict[int, tuple[Any, rule.Candidate]]]" = weakref.WeakKeyDictionary()
_CANDIDATE_CACHE_SIZE = 65_536


def candidates(conn: Connection, rows: Sequence[Any], built: dict[int, rule.Candidate]) -> list[rule.Candidate]:
    """The candidates of these rows. Most rows a round reads were read by rounds before (a queue's head
    is read again and again until it runs), so the candidate built from a row is kept and used again
    while the row reads the same, every column compared: a task whose priority, tries or anything else
    changed is built anew. `built`: this `_plan`'s candidates by task id."""
    cache = _candidate_caches.get(conn.engine)
    if cache is None:
        cache = _candidate_caches[conn.engine] = {}
    elif len(cache) > _CANDIDATE_CACHE_SIZE:
        cache.clear()
    out: list[rule.Candidate] = []
    for row in rows:
        c = built.get(row.id)
        if c is None:
            kept = cache.get(row.id)
            if kept is not None and kept[0] == row:
                c = kept[1]
            else:
                c = candidate_of(row)
                cache[row.id] = (row, c)
            built[row.id] = c
        out.append(c)
    return out


@functools.lru_cache(maxsize=4096)
def _needs(cores: int, memory_mb: int, gpus: int, tag_key: str) -> Needs:
    """What a task needs, shared by every candidate alike (a farm has few kinds): each round builds one
    candidate per row read, and a round reads hundreds."""
    tags, pools = placement(tag_key)
    return Needs(cores, memory_mb, gpus, tags, pools)


@dataclass(frozen=True)
class Room:
    """What one asking node can serve and fit: its placements (stored tag keys) and free room."""

    keys: frozenset[str]
    cores: int
    memory_mb: int
    gpus: int


def read_rooms(rooms: Iterable[Room], most: int = 4) -> list[Room]:
    """The rooms a round's candidate read must serve: a task read fits one of them, so a task none of the
    asking nodes fits (a GPU task while the GPU nodes asking have too few cores free) is not read, and
    the read reaches that much further into what they can take. A room another one holds (placements
    among its, no more cores, memory or GPUs) adds nothing; past `most` rooms (or when there are too
    many to compare), one room holds them all: every placement, the largest of each."""
    distinct = sorted(set(rooms), key=lambda r: (-r.cores, -r.memory_mb, -r.gpus, sorted(r.keys)))
    kept = [] if len(distinct) > 64 else [
        r for i, r in enumerate(distinct)
        if not any(o.keys >= r.keys and o.cores >= r.cores and o.memory_mb >= r.memory_mb and o.gpus >= r.gpus
                   and (o != r) for o in distinct[:i] + distinct[i + 1:])]
    if not kept or len(kept) > most:
        return [Room(frozenset().union(*(r.keys for r in distinct)), max(r.cores for r in distinct),
                     max(r.memory_mb for r in distinct), max(r.gpus for r in distinct))] if distinct else []
    return kept


class ProjectReads:
    """The candidate rows one `_plan` reads of each project, in dispatch order, read longer on demand.

    `rows(project_id, limit)` gives the project's first `limit` rows (fewer: all it has) that fit one of
    the asking nodes' `rooms` (`read_rooms`), less what `shut` leaves out. A project read to its end
    before is not read again; one cut at a shorter limit is read on from its last row (`queries.dispatch
    .candidates(..., after=True)`), so a read four times longer costs the new rows only. Within one
    `_plan` nothing is written, so these are the rows one read of `limit` would give (on PostgreSQL the
    rows read first stay locked by this transaction).

    `leave_out(shut)`: what the reads on leave out from now on, the refusals a round's own choices made
    farm-wide (a licence it filled). The rows read before them stay as read."""

    def __init__(self, conn: Connection, rooms: list[Room], lock: bool, shut: round_shut.Shut) -> None:
        self._conn, self._rooms, self._lock = conn, rooms, lock
        self._largest = (max(r.cores for r in rooms), max(r.gpus for r in rooms))
        self._first = self._shape(shut)
        self._on = self._first
        self._read: dict[int, tuple[list[Any], int]] = {}   # project -> (rows, the limit they were read to)

    def _shape(self, shut: round_shut.Shut) -> tuple[round_shut.Shut, dict[str, Any]]:
        params: dict[str, Any] = {}
        if shut.folders:
            params["shut_folders"] = sorted(shut.folders)
        params.update((f"shut_licence_{i}", f",{name}=") for i, name in enumerate(shut.licences))
        return shut, params

    def leave_out(self, shut: round_shut.Shut) -> None:
        self._on = self._shape(shut)

    def bounds(self, project_id: int) -> tuple[int, int]:
        """The largest task (cores, GPUs) worth reading of this project (cores under 1: none)."""
        return self._first[0].read_bounds(project_id, *self._largest)

    def rows(self, project_id: int, limit: int) -> list[Any]:
        known = self._read.get(project_id)
        if known is None:
            got = self._execute(self._first, project_id, limit, None)
        elif len(known[0]) < known[1] or limit <= known[1]:
            return known[0][:limit]   # read to its end already, or as far
        else:
            got = known[0] + self._execute(self._on, project_id, limit - len(known[0]), known[0][-1])
        self._read[project_id] = (got, limit)
        return got

    def _execute(self, shape: tuple[round_shut.Shut, dict[str, Any]], project_id: int, limit: int,
                 last: Any) -> list[Any]:
        shut, params = shape
        params = {**params, "project_id": project_id, "limit": limit}
        fitting = 0
        for i, room in enumerate(self._rooms):
            cores, gpus = shut.read_bounds(project_id, room.cores, room.gpus)
            fitting += cores >= 1
            suffix = "" if len(self._rooms) == 1 else f"_{i}"
            params.update({f"keys{suffix}": sorted(room.keys), f"free_cores{suffix}": cores,
                           f"free_memory{suffix}": room.memory_mb, f"free_gpus{suffix}": gpus})
        if not fitting:
            return []
        statement = q.candidates(self._conn.dialect.name, len(shut.licences), bool(shut.folders), self._lock,
                                 after=last is not None, rooms=len(self._rooms))
        if last is not None:
            params.update(after_urgent=last.urgent, after_folder_priority=last.folder_priority,
                          after_priority=last.priority, after_job_id=last.job_id, after_id=last.id)
        return list(self._conn.execute(statement, params))


class Holding(NamedTuple):
    """What one live attempt of an asking node holds (`queries.dispatch.LIVE_HOLDINGS`), decoded."""

    id: int
    state: str
    cores: int
    memory_mb: int
    gpu_ids: tuple[int, ...]
    licences: tuple[tuple[str, int], ...]   # licence units held, by limit name


def holding(row: Any) -> Holding:
    """A row of `queries.dispatch.LIVE_HOLDINGS`, its JSON decoded (`held`)."""
    gpu_ids, licences = held(row.gpu_ids, row.booked)
    return Holding(row.id, row.state, row.cores, row.memory_mb, gpu_ids, licences)


@functools.lru_cache(maxsize=4096)
def held(gpu_ids: str | None, booked: str | None) -> tuple[tuple[int, ...], tuple[tuple[str, int], ...]]:
    """An attempt's GPUs and licence units from its stored JSON text. Every round reads the asking nodes'
    live attempts, and decoding their JSON was most of that read; a farm's attempts hold few distinct
    texts (the same project, pool, licences and size book the same counters), so each is decoded once."""
    gpus = tuple(int(g) for g in json.loads(gpu_ids) or ()) if gpu_ids else ()
    licences = tuple(limit_use_of(json.loads(booked) or ()).items()) if booked else ()
    return gpus, licences

