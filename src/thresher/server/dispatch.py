"""The one place that decides which ready task runs on which node: it reads the farm, applies the rule
and claims what the rule chose.

The rule itself is `thresher.model.dispatch_rule` (pure, tested without a database, read it first):
urgent jobs, then projects below their guarantee in the node's pool, then fair share by weight; within
a project, folder guarantees, folder priority, job priority, submission order; every cap, burst cap,
folder maximum, licence limit and blocklist respected, and a node never idle while a task it may run
is ready. What the rule needs is read here, once per round of asking nodes:

1. the asking nodes, their live attempts (what they have free, the licence units they hold) and the
   jobs whose blocklist names them;
2. each active project's ready tasks these nodes could take (`queries.dispatch.CANDIDATES`: their
   tags and pools, their largest free resources), in the project's dispatch order, off one index; on
   PostgreSQL the rows are locked with SKIP LOCKED so several server processes never hand out the same
   task;
3. the policy (weights, caps, stakes, folders, limits) and the usage counters of everything those
   tasks would book, locked in key order on PostgreSQL (`server/usage.py`) so that two dispatchers
   never both take the last licence.

Then each node in turn takes what the rule gives it, and one statement claims everything: a
compare-and-set on `state = 'ready'` (`db.dialects.claim`), so a task has at most one live attempt
whatever races happen; each attempt keeps what it booked, released when it ends. The jobs of the
claimed tasks are marked running by `lifecycle.jobs_started`: only lifecycle writes job state. Agents
that ask at the same moment are answered together (`work_for_nodes`, called by the write batcher).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import Connection

from thresher.model import dispatch_rule as rule
from thresher.model import round_shut
from thresher.model.dispatch_rule import Choice
from thresher.model.fit import Free, gpu_indices, node_free, placed
from thresher.model.states import AttemptState, NodeAdminState, NodeState
from thresher.server import dispatch_reads as reads
from thresher.server import lifecycle, studio, usage
from thresher.server.clock import as_utc
from thresher.server.db import dialects
from thresher.server.db.batcher import in_rounds
from thresher.server.db.dialects import NewAttempt
from thresher.server.db.queries import dispatch as q
from thresher.server.lifecycle import Changes
from thresher.server.task_commands import assignment, layer_commands


@dataclass(frozen=True)
class Limits:
    """How much dispatch reads at once (the server's settings say; these are the defaults).

    `candidates_per_node`: rows read for one node, no more than its free cores (every task takes at
    least one, so no more could be started) and at most this many. Rows read are rows locked on
    PostgreSQL, which other dispatchers then skip: reading only what can be used keeps them apart.
    `candidate_rows`: rows read for one round of requests, whatever their number.
    `tag_sets_ttl_s`: how long this process trusts its copy of the farm's tag sets. A submit in this
    process that adds a set forgets the copy at once (`forget_tag_keys`), and so does one that hears of
    another process's new job (`ServerContext._heard`); without that news, within this time."""

    candidates_per_node: int = 64
    candidate_rows: int = 512
    tag_sets_ttl_s: float = 2.0


DEFAULT_LIMITS = Limits()


Candidate = rule.Candidate


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


def usable_tag_keys(all_keys: Sequence[str], node_tags: Sequence[str], node_pool: str = studio.DEFAULT_POOL) -> list[str]:
    """The stored placements (tags and pools) a node may serve: the candidate read asks only for those."""
    have = frozenset(node_tags)
    return [key for key in all_keys if placed(key, have, node_pool)]


def kills_among(live: Sequence[Any]) -> list[int]:
    """Attempts the server wants stopped, from the node's live attempts."""
    return sorted(r.id for r in live if r.state == AttemptState.KILLING)


def _say_why_killed(conn: Connection, answers: list[Answer]) -> None:
    """The reasons of the attempts these answers ask to stop ("job killed by ana"), read only when some are
    asked (rare), so the agent's log of the attempt ends with them rather than "killed by server"."""
    ids = sorted({k for answer in answers for k in answer.kills})
    if not ids:
        return
    reasons = {r.id: r.reason for r in conn.execute(q.KILL_REASONS, {"attempt_ids": ids}) if r.reason}
    for answer in answers:
        answer.kill_reasons = {k: reasons[k] for k in answer.kills if k in reasons}


def may_take_work(node: Any) -> bool:
    return node.state == NodeState.UP and node.admin_state == NodeAdminState.ENABLED


def has_news(conn: Connection, node_id: int, limits: Limits = DEFAULT_LIMITS, ahead: int = 0) -> bool:
    """Read-only look before asking for a write: is there work that fits this node (with `ahead` cores'
    worth of tasks waiting on it, `fit.node_free`), or a kill for it?"""
    return node_id in nodes_with_news(conn, [node_id], limits, {node_id: ahead} if ahead else None)


# Per asking node, the cores' worth of tasks its agent keeps waiting (`fit.node_free`); absent: none.
Ahead = Mapping[int, int]


def nodes_with_news(conn: Connection, node_ids: Sequence[int], limits: Limits = DEFAULT_LIMITS,
                    ahead: Ahead | None = None) -> set[int]:
    """Of these (waiting) nodes, those with a kill to do or a ready task the rule would give them:
    read-only, a handful of statements for any number of nodes (the server's periodic look for work
    that no wake-up announced). A node that found nothing in a candidate read cut at its limit looks alone."""
    if conn.execute(q.ANY_READY).first() is None:  # an idle farm: only kills can be news
        return set(conn.execute(dialects.pick(conn, q.KILLING_ON_NODES), {"node_ids": list(node_ids)}).scalars())
    requests = [r for r in _read_requests(conn, list(dict.fromkeys(node_ids)), limits, ahead) if r is not None]
    news = {r.node.id for r in requests if r.kills}
    wanting = [r for r in requests if r.keys and r.node.id not in news]
    cut = _plan(conn, wanting, limits, lock=False, alone=True).cut
    for request in wanting:
        if request.choices:
            news.add(request.node.id)
        elif cut and len(wanting) > 1 and nodes_with_news(conn, [request.node.id], limits, ahead):
            news.add(request.node.id)
    return news


@dataclass
class Answer:
    """What one agent asking for work gets: assignments to start, attempts to kill, and what the
    dispatch changed besides (an attempt failed because its command could not be built) for the
    caller to announce after the commit."""

    assignments: list[dict[str, Any]] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)
    kill_reasons: dict[int, str] = field(default_factory=dict)  # why, for those of `kills` that say (`MARK_KILLING`)
    changes: Changes = field(default_factory=Changes)
    waits: list[float] = field(default_factory=list)  # first attempts: seconds since their job's submit
    bookings: list[tuple[rule.Booking, ...]] = field(default_factory=list)  # what its claimed tasks booked


def work_for_nodes(conn: Connection, node_ids: Sequence[int], now: datetime,
                   limits: Limits = DEFAULT_LIMITS, ahead: Ahead | None = None) -> list[Answer]:
    """Several agents ask for work at once (one write batch, in its write transaction): each gets the
    answer it would get asking alone, one after the other in this order, for a handful of statements in
    all instead of a handful each. A node that asks twice asks again once its first answer is claimed."""
    return in_rounds(list(node_ids), lambda node_id: node_id,
                     lambda round_ids: _answer_round(conn, round_ids, now, limits, ahead))


@dataclass
class _Request:
    node: Any
    ask: rule.Ask
    keys: set[str]       # the stored placements (tags, pools) this node may serve
    kills: list[int]
    choices: list[Choice] = field(default_factory=list)

    @property
    def free(self) -> Free:
        return self.ask.free


def _read_requests(conn: Connection, node_ids: list[int], limits: Limits,
                   ahead: Ahead | None = None) -> list[_Request | None]:
    """The asking nodes (None for an unknown id) with what each has free, may run and should kill:
    three statements for all of them."""
    nodes_by_id = {r.id: r for r in conn.execute(dialects.pick(conn, q.NODES_BY_ID), {"node_ids": node_ids})}
    live: dict[int, list[reads.Holding]] = {node_id: [] for node_id in node_ids}
    for row in conn.execute(dialects.pick(conn, q.LIVE_HOLDINGS), {"node_ids": node_ids}):
        live[row.node_id].append(reads.holding(row))
    blocked: dict[int, set[int]] = {}
    for row in conn.execute(dialects.pick(conn, q.BLOCKED_JOBS), {"node_ids": node_ids}):
        blocked.setdefault(row.node_id, set()).add(row.job_id)
    all_keys = all_tag_keys(conn, limits.tag_sets_ttl_s)
    requests: list[_Request | None] = []
    for node_id in node_ids:
        node = nodes_by_id.get(node_id)
        if node is None:
            requests.append(None)
            continue
        free = node_free(node.cores, node.memory_mb, gpu_indices(node.gpus), live[node_id],
                         ahead.get(node_id, 0) if ahead else 0) if may_take_work(node) else Free(0, 0)
        keys = set(usable_tag_keys(all_keys, node.tags or [], node.pool)) if free.cores >= 1 else set()
        limit_use = rule.units_by_limit(*(attempt.licences for attempt in live[node_id]))
        ask = rule.Ask(node_id, free, node.pool, frozenset(node.tags or ()), limit_use,
                       frozenset(blocked.get(node_id, ())))
        requests.append(_Request(node, ask, keys, kills_among(live[node_id])))
    return requests


@dataclass
class _Seen:
    """What a round's `_plan` read and decided on: the candidate rows by task id, the projects whose read
    was cut at its limit, the policy, the usage counters with the round's choices booked, and the
    candidates built from the rows (by task id)."""

    rows: dict[int, Any] = field(default_factory=dict)
    cut: set[int] = field(default_factory=set)
    policy: rule.Policy = field(default_factory=rule.Policy)
    usage: rule.Usage = field(default_factory=rule.Usage)
    built: dict[int, rule.Candidate] = field(default_factory=dict)


def _plan(conn: Connection, wanting: list[_Request], limits: Limits, lock: bool,
          alone: bool = False) -> _Seen:
    """Read what the rule needs for these nodes and let each, in turn, choose (`request.choices`); or,
    `alone`, only see what each would take first asking alone (a look for news takes nothing).
    Returns what it read (`_Seen`).

    Each project's read starts at a fair slice of what the nodes can start (`_first_read`; rows read are
    rows locked on PostgreSQL). The reads are made longer (up to `limits.candidate_rows`) and the round
    chosen again when the slice may have changed a choice: a project whose read was cut was taken to its
    end (the rule would have gone on in that project), or a node is left with free cores while a read was
    cut (the tasks it may run may be further down a queue). So no node idles, and no project loses its
    turn, because of how much was read.

    The reads leave out the tasks no node may take all round (`model.round_shut`: a project at its cap,
    a folder at its maximum, a licence at its total), read once before them without locks: the rule
    checks every cap again against the counters it reads (locked on PostgreSQL). A longer read reads on
    from the rows it has (`dispatch_reads.ProjectReads`) and leaves out, past them, also what the
    round's own choices shut (a licence they filled): the nodes left wanting could take none of those,
    and a round that filled a licence no longer reads every queue 512 rows deep in that licence's tasks
    (a node earlier in the round that would have passed over the rows it had to reach one of them, while
    the licence had room, now does not see it; the next round does)."""
    if not wanting:
        return _Seen()
    project_ids = sorted(conn.execute(q.ACTIVE_PROJECTS).scalars())
    if not project_ids:
        return _Seen()
    policy = studio.read_policy(conn, project_ids)
    running = usage.read(conn, round_shut.usage_keys(project_ids, policy), lock=False)
    shut = round_shut.shut(project_ids, policy, running)
    open_ids = [p for p in project_ids if shut.read_bounds(p, 1, 0)[0] >= 1]
    if not open_ids:
        return _Seen(policy=policy)
    per_project = _first_read(wanting, len(open_ids), limits)
    built: dict[int, rule.Candidate] = {}  # a longer read reads the shorter one's rows again, unchanged
    read = _project_reads(conn, wanting, lock, shut)
    while True:
        seen, dry = _choose_round(conn, wanting, open_ids, per_project, lock, alone, built, policy, read)
        if per_project >= limits.candidate_rows or not (
                dry or (seen.cut and any(_left_wanting(r, alone) for r in wanting))):
            return seen
        per_project = min(limits.candidate_rows, per_project * 4)
        # what the round's choices shut farm-wide (a licence they filled) is left out of the reads on
        read.leave_out(round_shut.shut(project_ids, policy, rule.Usage({**running.counters, **seen.usage.counters})))


def _first_read(wanting: list[_Request], projects: int, limits: Limits) -> int:
    """How many ready tasks of each project a round reads first: what the nodes can start (at most
    `candidates_per_node` each), shared among the projects with room to spare (twice an even share, and
    never under a quarter of one node's worth), since one project rarely takes it all; when one does, its
    read runs dry and is made longer (`_plan`)."""
    wanted = sum(min(limits.candidates_per_node, r.free.cores) for r in wanting)
    share = -(-2 * wanted // projects)
    return max(1, min(wanted, limits.candidate_rows, max(share, limits.candidates_per_node // 4)))


def _left_wanting(request: _Request, alone: bool) -> bool:
    if alone:
        return not request.choices
    return request.free.cores - sum(c.candidate.needs.cores for c in request.choices) > 0


def _project_reads(conn: Connection, wanting: list[_Request], lock: bool, shut: round_shut.Shut) -> reads.ProjectReads:
    """The candidate reads of one `_plan`: what any of the asking nodes could serve or fit, less what is shut."""
    rooms = reads.read_rooms(reads.Room(frozenset(r.keys), r.free.cores, r.free.memory_mb, len(r.free.gpu_ids))
                             for r in wanting)
    return reads.ProjectReads(conn, rooms, lock, shut)


def _choose_round(conn: Connection, wanting: list[_Request], project_ids: list[int], per_project: int, lock: bool,
                  alone: bool, built: dict[int, rule.Candidate], policy: rule.Policy,
                  read: reads.ProjectReads) -> tuple[_Seen, bool]:
    """One round: each project's first `per_project` ready tasks read, and the rule run for every node.
    `built`: the candidates of rows read before in this transaction's `_plan` (nothing changed since),
    by task id, kept and reused. Returns what it read (`_Seen`, the projects whose read was cut at
    `per_project`), and whether the nodes took one of those to its end (a longer read might have given
    them more of it)."""
    rows: dict[int, Any] = {}
    queues: dict[int, list[rule.Candidate]] = {}
    cut: set[int] = set()
    for project_id in project_ids:
        if read.bounds(project_id)[0] < 1:
            continue
        got = read.rows(project_id, per_project)
        if len(got) == per_project:
            cut.add(project_id)
        if got:
            queues[project_id] = reads.candidates(conn, got, built)
            rows.update((row.id, row) for row in got)
    for request in wanting:
        request.choices = []
    if not queues:
        return _Seen(rows, cut, policy, rule.Usage(), built), False
    pools = {r.ask.pool for r in wanting}
    kinds = {(c.project_id, c.folder_id, c.limits) for queue in queues.values() for c in queue}
    keys = {key for project_id, folder_id, limits in kinds for pool in pools
            for key in rule.booked_keys(project_id, folder_id, limits, pool)}
    now_running = usage.read(conn, keys, lock=lock)
    last_read = {project_id: queues[project_id][-1] for project_id in cut}
    for request in wanting:
        if alone:
            first = rule.would_take(request.ask, queues, now_running, policy)
            request.choices = [] if first is None else [Choice(first, [], ())]
        else:
            request.choices = rule.choose(request.ask, queues, now_running, policy)
    # A cut read taken to its end, by takes and not because its project may take no more (a cap, a
    # licence's total: `farm_refusal`), left tasks further down unseen.
    dry = not alone and any(not queues.get(project_id) and rule.farm_refusal(last, now_running, policy) is None
                            for project_id, last in last_read.items())
    return _Seen(rows, cut, policy, now_running, built), dry


def _answer_round(conn: Connection, node_ids: list[int], now: datetime, limits: Limits,
                  ahead: Ahead | None, known: list[_Request] | None = None) -> list[Answer]:
    """Requests from distinct nodes: the nodes and their live attempts read once, what the rule needs
    read once for all (`_plan`), each node in turn takes what the rule gives it, and one statement
    claims it all. When a project's candidate read was cut at its limit, a node left with nothing it
    could take asks alone, in case more of the queue fits it. `known`: these nodes' requests as read
    already in this transaction (nodes a round left with nothing: nothing of theirs changed since)."""
    requests: list[_Request | None] = list(known) if known is not None else _read_requests(conn, node_ids, limits,
                                                                                             ahead)
    wanting = [r for r in requests if r is not None and r.keys]
    seen = _plan(conn, wanting, limits, lock=dialects.takes_row_locks(conn))
    cut = seen.cut
    choices = [(r.node.id, c) for r in wanting for c in r.choices]
    claimed = dialects.claim(conn, [
        NewAttempt(c.candidate.task_id, c.candidate.job_id, node_id, c.candidate.needs.cores,
                   c.candidate.needs.memory_mb, c.gpu_ids, [list(held) for held in c.booking])
        for node_id, c in choices], now)
    usage.move(conn, [c.booking for _, c in choices if c.candidate.task_id in claimed], 1)
    lifecycle.jobs_started(conn, {c.candidate.job_id for _, c in choices if c.candidate.task_id in claimed})
    frames = _frames(conn, claimed)
    answers: list[Answer] = []
    for asked in requests:
        if asked is None:
            answers.append(Answer())
            continue
        answer = Answer(kills=asked.kills, bookings=[c.booking for c in asked.choices if c.candidate.task_id in claimed])
        _add_assignments(conn, asked.node, [(c, claimed.get(c.candidate.task_id)) for c in asked.choices],
                         frames, now, answer)
        answers.append(answer)
    left = [(i, r) for i, r in enumerate(requests) if r is not None and r.keys and not r.choices]
    _say_why_killed(conn, answers)
    if cut and len(wanting) > 1 and left:
        for i, again in _ask_again(conn, left, len(wanting), now, limits, _Read(seen), ahead):
            answers[i].assignments = again.assignments
            answers[i].bookings = again.bookings
            answers[i].changes.merge(again.changes)
    return answers


def _ask_again(conn: Connection, left: list[tuple[int, _Request]], asked: int, now: datetime,
               limits: Limits, read: "_Read", ahead: Ahead | None) -> Iterator[tuple[int, Answer]]:
    """The nodes a cut read left with nothing ask again, after the claims of the others: together, as
    one more round, while the round before gave some node work (each round claims what it read, so
    this ends); else one by one, each reading as deep as it must. Nodes that ask alike (the same
    placements, pool, free room, licences held and blocklists) get alike: once one of them got nothing
    alone, so would the others (what the others claim never adds work), and they do not read again.
    Nor does a node whose own read would hold only rows the round read already (`_Read.covers`). Their
    requests are not read again: a node given nothing holds, may run and should kill what it did."""
    if len(left) < asked:
        yield from zip((i for i, _ in left), _answer_round(conn, [r.node.id for _, r in left], now, limits, ahead,
                                                            [r for _, r in left]), strict=True)
        return
    fruitless: set[tuple[Any, ...]] = set()
    for i, request in left:
        alike = _alike(request)
        if alike in fruitless or read.covers(request, limits.candidate_rows):
            continue
        (answer,) = _answer_round(conn, [request.node.id], now, limits, ahead, [request])
        if not answer.assignments:
            fruitless.add(alike)
        read.taken(answer)
        yield i, answer


class _Read:
    """The candidate rows of a round that gave no node anything, to tell which of its nodes could find
    more asking alone. A node asking alone reads, in each project, the first rows in dispatch order that
    fit its own placements and free room (`queries.dispatch.CANDIDATES`), at most `candidate_rows`. Where
    the round read a project to its end, or read that many rows fitting the node, that node's own read
    holds only rows the round read (less those claimed since): none of them was allowed for it then, and
    none is now (within a transaction usage only grows and the node's room and licences do not change),
    so asking alone would give it nothing, and it is not asked. The node's read leaves out what is
    refused farm-wide by then (`model.round_shut`), so reaches further: the rows refused farm-wide by
    the usage now (the round's choices and the claims since booked) do not count. An answer that
    changed the farm otherwise (an attempt failed, a task ready again) ends the shortcut: the rows may
    no longer be all."""

    def __init__(self, seen: _Seen) -> None:
        self._by_project: dict[int, list[Any]] = {project_id: [] for project_id in seen.cut}
        for row in seen.rows.values():
            if row.project_id in self._by_project:
                self._by_project[row.project_id].append(row)
        self._seen = seen
        self._claimed: set[int] = set()
        self._valid = True
        self._known: dict[tuple[Any, ...], bool] = {}

    def taken(self, answer: Answer) -> None:
        if answer.changes != Changes():
            self._valid = False
        if answer.assignments:
            self._claimed.update(a["task_id"] for a in answer.assignments)
            for held in answer.bookings:
                self._seen.usage.book(held)
            self._known.clear()

    def _open(self, row: Any) -> bool:
        seen = self._seen
        return rule.farm_refusal(seen.built.get(row.id) or reads.candidate_of(row), seen.usage, seen.policy) is None

    def covers(self, request: _Request, candidate_rows: int) -> bool:
        if not self._valid:
            return False
        free = request.free
        reads = (frozenset(request.keys), free.cores, free.memory_mb, len(free.gpu_ids))
        known = self._known.get(reads)
        if known is None:
            keys, cores, memory_mb, gpus = reads
            known = self._known[reads] = all(
                sum(1 for r in rows if r.id not in self._claimed and r.tag_key in keys and r.cores <= cores
                    and r.memory_mb <= memory_mb and r.gpus <= gpus and self._open(r)) >= candidate_rows
                for rows in self._by_project.values())
        return known


def _alike(request: _Request) -> tuple[Any, ...]:
    """What decides the work a node gets asking alone, but its name."""
    ask = request.ask
    return (frozenset(request.keys), ask.pool, frozenset(ask.tags), ask.free.cores, ask.free.memory_mb,
            len(ask.free.gpu_ids), frozenset(ask.limit_use.items()), frozenset(ask.blocked_jobs))


def _frames(conn: Connection, claimed: dict[int, int]) -> dict[int, Any]:
    """The frames of the claimed tasks (`queries.dispatch.TASK_FRAMES`), by task id: the candidate read
    leaves them out, since a round passes over most of the rows it reads."""
    if not claimed:
        return {}
    return {row.id: row for row in conn.execute(dialects.pick(conn, q.TASK_FRAMES), {"task_ids": sorted(claimed)})}


def _add_assignments(conn: Connection, node: Any, claims: list[tuple[Choice, int | None]], rows: dict[int, Any],
                     now: datetime, answer: Answer) -> None:
    """The commands of a node's claimed tasks. A template that cannot build one fails that attempt,
    never the farm (and what that changed goes with the answer, to be announced)."""
    for choice, attempt_id in claims:
        if attempt_id is None:
            continue
        c = choice.candidate
        try:
            answer.assignments.append(assignment(conn, node, attempt_id, c, choice.gpu_ids, rows[c.task_id]))
            if c.tries == 0:  # for the submit-to-start histogram (server/metrics.py); layer rows are cached
                submitted = as_utc(layer_commands(conn, c.layer_id).row.job_submitted_at)
                answer.waits.append((now - submitted).total_seconds() if submitted else 0.0)
        except Exception as exc:  # noqa: BLE001 - reported on the attempt
            answer.changes.merge(lifecycle.fail_attempt(conn, node.id, attempt_id,
                                                        f"cannot build the command: {exc}", now))
