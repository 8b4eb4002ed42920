"""The one place that decides which ready task runs on which node.

The rule, readable in two parts:
1. `queries.dispatch.CANDIDATES`: ready tasks whose tag set the node carries and whose needs fit what the node
   has free, in dispatch order: highest job priority first, then submission order (job id), then
   frame order (task id). On PostgreSQL the rows are locked with SKIP LOCKED so several server
   processes never hand out the same task.
2. `choose`: walk those candidates and take every one that still fits (`model.fit`, the one fit rule
   that the look for news, submit and the node views share), so a 32-core node receives four 8-core
   tasks in one answer; GPUs are given out by index.
The claim itself (`db.dialects.claim`) is a compare-and-set (`state = 'ready'` in the UPDATE), so a task has at most one
live attempt whatever races happen.

Agents that ask at the same moment are answered together (`work_for_nodes`, called by the server's
write batcher): one candidate read for all of them, then each node in turn applies the same two steps
to what is left, and one statement claims everything. The jobs of the claimed tasks are marked
running by `lifecycle.jobs_started`: only lifecycle writes job state. On a busy farm that is a handful of statements
per batch of requests instead of per request, which is what lets PostgreSQL keep up.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import AbstractSet, Any, Sequence

from sqlalchemy import Connection

from thresher.model.fit import Free, Needs, fits, gpu_indices, node_free, tag_set, take
from thresher.model.frames import Chunk
from thresher.model.paths import PathRule
from thresher.model.states import AttemptState, NodeAdminState, NodeState
from thresher.server import lifecycle
from thresher.server.db import dialects
from thresher.server.db.batcher import in_rounds
from thresher.server.db.dialects import NewAttempt
from thresher.server.db.queries import dispatch as q
from thresher.server.db.queries import nodes as qn
from thresher.server.lifecycle import Changes
from thresher.templates import Template, get_template
from thresher.templates.base import Target


@dataclass(frozen=True)
class Limits:
    """How much dispatch reads at once (the server's settings say; these are the defaults).

    `candidates_per_node`: rows read for one node, no more than its free cores (every task takes at
    least one, so no more could be started) and at most this many. Rows read are rows locked on
    PostgreSQL, which other dispatchers then skip: reading only what can be used keeps them apart.
    `candidate_rows`: rows read for one round of requests, whatever their number.
    `tag_sets_ttl_s`: how long this process trusts its copy of the farm's tag sets. A submit in this
    process that adds a set forgets the copy at once (`forget_tag_keys`); one made by another server
    process is seen within this time (its agents' long polls re-check on their own as often)."""

    candidates_per_node: int = 64
    candidate_rows: int = 512
    tag_sets_ttl_s: float = 2.0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Candidate:
    """A ready task as dispatch sees it: where it belongs and what it needs."""

    task_id: int
    job_id: int
    layer_id: int
    needs: Needs

    @classmethod
    def of(cls, row: Any) -> Candidate:
        """A candidate row as dispatch sees it (`queries.dispatch.CANDIDATES`)."""
        return cls(row.id, row.job_id, row.layer_id, Needs(row.cores, row.memory_mb, row.gpus, tag_set(row.tag_key)))


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    gpu_ids: list[int]


def choose(candidates: Sequence[Candidate], free: Free, node_tags: AbstractSet[str] = frozenset()) -> list[Choice]:
    """Take candidates in order while they fit (`model.fit.fits`); pure, so it is tested without a database."""
    chosen = []
    for c in candidates:
        if fits(c.needs, free, node_tags):
            given, free = take(c.needs, free)
            chosen.append(Choice(c, given))
            if free.cores <= 0:
                break
    return chosen


_tag_key_caches: "weakref.WeakKeyDictionary[Any, tuple[float, list[str]]]" = weakref.WeakKeyDictionary()


def all_tag_keys(conn: Connection, ttl_s: float = DEFAULT_LIMITS.tag_sets_ttl_s) -> list[str]:
    """Every tag set a layer ever asked for (a short list, only ever growing), from a copy in memory:
    each answer to an agent needs it, and re-reading it was one database round trip of a handful."""
    cached = _tag_key_caches.get(conn.engine)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    keys = [r.key for r in conn.execute(q.TAG_KEYS)]
    _tag_key_caches[conn.engine] = (time.monotonic() + ttl_s, keys)
    return keys


def forget_tag_keys(engine: Any) -> None:
    """A new tag set was (or is about to be) committed: read them again at the next dispatch."""
    _tag_key_caches.pop(engine, None)


def usable_tag_keys(all_keys: Sequence[str], node_tags: Sequence[str]) -> list[str]:
    """The stored tag sets a node carries all tags of: the candidate read asks only for those."""
    have = frozenset(node_tags)
    return [key for key in all_keys if tag_set(key) <= have]


def kills_among(live: Sequence[Any]) -> list[int]:
    """Attempts the server wants stopped, from the node's live attempts."""
    return sorted(r.id for r in live if r.state == AttemptState.KILLING)


def may_take_work(node: Any) -> bool:
    return node.state == NodeState.UP and node.admin_state == NodeAdminState.ENABLED


def has_news(conn: Connection, node_id: int, limits: Limits = DEFAULT_LIMITS) -> bool:
    """Read-only look before asking for a write: is there work that fits this node, or a kill for it?"""
    return node_id in nodes_with_news(conn, [node_id], limits)


def nodes_with_news(conn: Connection, node_ids: Sequence[int], limits: Limits = DEFAULT_LIMITS) -> set[int]:
    """Of these (waiting) nodes, those with a kill to do or a ready task that fits them: read-only, a
    handful of statements for any number of nodes (the server's periodic look for work that no
    wake-up announced). A node that found nothing in a candidate read cut at the limit looks alone."""
    if conn.execute(q.ANY_READY).first() is None:  # an idle farm: only kills can be news
        return set(conn.execute(dialects.pick(conn, q.KILLING_ON_NODES), {"node_ids": list(node_ids)}).scalars())
    requests = [r for r in _read_requests(conn, list(dict.fromkeys(node_ids)), limits) if r is not None]
    news = {r.node.id for r in requests if r.kills}
    wanting = [r for r in requests if r.keys and r.node.id not in news]
    rows, cut = _read_candidates(conn, wanting, limits, lock=False)
    candidates = [Candidate.of(row) for row in rows]
    for request in wanting:
        if any(row.tag_key in request.keys and fits(candidate.needs, request.free, request.tags)
               for row, candidate in zip(rows, candidates, strict=True)):
            news.add(request.node.id)
        elif cut and len(wanting) > 1 and nodes_with_news(conn, [request.node.id], limits):
            news.add(request.node.id)
    return news


@dataclass
class Answer:
    """What one agent asking for work gets: assignments to start, attempts to kill, and what the
    dispatch changed besides (an attempt failed because its command could not be built) for the
    caller to announce after the commit."""

    assignments: list[dict[str, Any]] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)


def work_for_nodes(conn: Connection, node_ids: Sequence[int], now: datetime,
                   limits: Limits = DEFAULT_LIMITS) -> list[Answer]:
    """Several agents ask for work at once (one write batch, in its write transaction): each gets the
    answer it would get asking alone, one after the other in this order, for a handful of statements in
    all instead of a handful each. A node that asks twice asks again once its first answer is claimed."""
    return in_rounds(list(node_ids), lambda node_id: node_id,
                     lambda round_ids: _answer_round(conn, round_ids, now, limits))


@dataclass
class _Request:
    node: Any
    free: Free
    keys: set[str]       # the stored tag sets this node carries all tags of
    kills: list[int]
    tags: frozenset[str] = frozenset()
    choices: list[Choice] = field(default_factory=list)


def _read_requests(conn: Connection, node_ids: list[int], limits: Limits) -> list[_Request | None]:
    """The asking nodes (None for an unknown id) with what each has free, may run and should kill:
    two statements for all of them."""
    nodes_by_id = {r.id: r for r in conn.execute(dialects.pick(conn, q.NODES_BY_ID), {"node_ids": node_ids})}
    live: dict[int, list[Any]] = {node_id: [] for node_id in node_ids}
    for row in conn.execute(dialects.pick(conn, qn.LIVE_ON_NODES), {"node_ids": node_ids}):
        live[row.node_id].append(row)
    all_keys = all_tag_keys(conn, limits.tag_sets_ttl_s)
    requests: list[_Request | None] = []
    for node_id in node_ids:
        node = nodes_by_id.get(node_id)
        if node is None:
            requests.append(None)
            continue
        free = node_free(node.cores, node.memory_mb, gpu_indices(node.gpus), live[node_id]) \
            if may_take_work(node) else Free(0, 0)
        keys = set(usable_tag_keys(all_keys, node.tags or [])) if free.cores >= 1 else set()
        requests.append(_Request(node, free, keys, kills_among(live[node_id]), frozenset(node.tags or ())))
    return requests


def _read_candidates(conn: Connection, wanting: list[_Request], limits: Limits,
                     lock: bool) -> tuple[Sequence[Any], bool]:
    """Ready tasks any of these nodes could take, in dispatch order: their tag sets together, the
    largest free resources among them, as many rows as they have free cores together (at most
    `limits.candidate_rows`). Returns the rows and whether the read was cut at its limit."""
    if not wanting:
        return [], False
    limit = min(limits.candidate_rows, sum(min(limits.candidates_per_node, r.free.cores) for r in wanting))
    rows = conn.execute(q.CANDIDATES_LOCKED if lock else q.CANDIDATES, {
        "keys": sorted(set().union(*(r.keys for r in wanting))),
        "free_cores": max(r.free.cores for r in wanting), "free_memory": max(r.free.memory_mb for r in wanting),
        "free_gpus": max(len(r.free.gpu_ids) for r in wanting), "limit": limit}).all()
    return rows, len(rows) == limit


def _answer_round(conn: Connection, node_ids: list[int], now: datetime, limits: Limits) -> list[Answer]:
    """Requests from distinct nodes: the nodes and their live attempts read once, one candidate read
    for all (`_read_candidates`), then each node in turn takes what fits it with `choose`, and one
    statement claims it all. When the candidate read was cut at its limit, a node left with nothing
    it could take asks alone, in case more of the queue fits it."""
    requests = _read_requests(conn, node_ids, limits)
    wanting = [r for r in requests if r is not None and r.keys]
    rows, cut = _read_candidates(conn, wanting, limits, lock=dialects.takes_row_locks(conn))
    candidates = [Candidate.of(row) for row in rows]  # once per round, whatever the number of nodes
    taken: set[int] = set()
    for request in wanting:
        mine = [c for row, c in zip(rows, candidates, strict=True)
                if c.task_id not in taken and row.tag_key in request.keys]
        request.choices = choose(mine, request.free, request.tags)
        taken.update(choice.candidate.task_id for choice in request.choices)
    by_id = {r.id: r for r in rows}
    choices = [(r.node.id, c) for r in wanting for c in r.choices]
    claimed = dialects.claim(conn, [NewAttempt(c.candidate.task_id, c.candidate.job_id, node_id, c.candidate.needs.cores,
                                               c.candidate.needs.memory_mb, c.gpu_ids) for node_id, c in choices], now)
    lifecycle.jobs_started(conn, {c.candidate.job_id for _, c in choices if c.candidate.task_id in claimed})
    answers: list[Answer] = []
    for asked in requests:
        if asked is None:
            answers.append(Answer())
            continue
        answer = Answer(kills=asked.kills)
        _add_assignments(conn, asked.node, [(c, claimed.get(c.candidate.task_id)) for c in asked.choices],
                         by_id, now, answer)
        if asked.keys and not asked.choices and cut and len(wanting) > 1:
            (alone,) = work_for_nodes(conn, [asked.node.id], now, limits)
            answer.assignments = alone.assignments
            answer.changes.merge(alone.changes)
        answers.append(answer)
    return answers


def _add_assignments(conn: Connection, node: Any, claims: list[tuple[Choice, int | None]], rows: dict[int, Any],
                     now: datetime, answer: Answer) -> None:
    """The commands of a node's claimed tasks. A template that cannot build one fails that attempt,
    never the farm (and what that changed goes with the answer, to be announced)."""
    for choice, attempt_id in claims:
        if attempt_id is None:
            continue
        c = choice.candidate
        try:
            answer.assignments.append(_assignment(conn, node, attempt_id, c, choice.gpu_ids, rows[c.task_id]))
        except Exception as exc:  # noqa: BLE001 - reported on the attempt
            answer.changes.merge(lifecycle.fail_attempt(conn, node.id, attempt_id,
                                                        f"cannot build the command: {exc}", now))


@dataclass(frozen=True)
class _LayerCommands:
    """What building a layer's commands needs; layers never change after submission, so it is cached."""

    row: Any
    template: Template
    args: Any
    rules: list[PathRule]


# One cache per database engine: layer ids are only unique within one database.
_layer_caches: "weakref.WeakKeyDictionary[Any, OrderedDict[int, _LayerCommands]]" = weakref.WeakKeyDictionary()
_LAYER_CACHE_SIZE = 4096


def _layer_commands(conn: Connection, layer_id: int) -> _LayerCommands:
    _layer_cache = _layer_caches.setdefault(conn.engine, OrderedDict())
    cached = _layer_cache.get(layer_id)
    if cached is None:
        row = conn.execute(q.LAYER_FOR_COMMANDS, {"layer_id": layer_id}).one()
        template = get_template(row.template)
        rules = [PathRule.model_validate(rule) for rule in (row.path_mapping or [])]
        cached = _LayerCommands(row, template, template.parse_args(row.args), rules)
        _layer_cache[layer_id] = cached
        if len(_layer_cache) > _LAYER_CACHE_SIZE:
            _layer_cache.popitem(last=False)
    return cached


def _assignment(conn: Connection, node: Any, attempt_id: int, c: Candidate, gpu_ids: list[int],
                task: Any) -> dict[str, Any]:
    """The assignment of one claimed task, its command built for this node: paths mapped for its OS,
    executables it declared, the task's tile or wedge value."""
    layer = _layer_commands(conn, c.layer_id)
    chunk = Chunk(task.idx, task.frames, task.frame_start, task.frame_end, task.frame_step, task.frame_count,
                  task.part or None)
    line = layer.template.build(layer.args, chunk, Target(os=node.os, apps=dict(node.apps or {})), layer.rules)
    return {
        "attempt_id": attempt_id, "task_id": c.task_id, "job_id": c.job_id, "job_name": layer.row.job_name,
        "layer": layer.row.name, "frames": chunk.frames, "argv": line.argv, "shell": line.shell,
        "env": {**(layer.row.env or {}), **line.env}, "cwd": layer.row.cwd, "timeout_s": layer.row.timeout,
        "gpus": gpu_ids, "outputs": line.outputs, "progress_patterns": line.progress_patterns,
        "error_patterns": line.error_patterns,
    }
