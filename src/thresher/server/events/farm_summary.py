"""The farm summary the overview and node pages render from, and the nodes' CPU and memory history.

The summary (node and job counts, cores, GPUs and memory in use, the node list) is read once for all
tabs, at most every `summary_s` after something it shows changed and at least every `10 * summary_s`
while somebody watches; a page asks `current` and gets the cached one unless it is too old. Each
read also samples every up node's CPU and memory use into a ring of the last hour, at most once per
`sample_s`: the sparklines of the nodes pages. A restart loses only that history.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from thresher.model.node_chips import NODE_CHIPS, counts_as
from thresher.model.states import JobState, NodeState
from thresher.server import views
from thresher.server.db.queries import events as q
from thresher.server.events.reads import CountedReads, Source

HISTORY_SPAN_S = 3600.0     # node CPU/memory history kept this long
SUMMARY_JOB_STATES = (JobState.RUNNING, JobState.QUEUED, JobState.WAITING, JobState.BLOCKED, JobState.PAUSED, JobState.FAILED,
                      JobState.KILLED, JobState.SUCCEEDED)

Sample = tuple[float, float | None, int | None]  # (epoch s, CPU %, memory used MiB)


class NodeHistory:
    """A ring of samples per node over the last `HISTORY_SPAN_S`."""

    def __init__(self) -> None:
        self.rings: dict[int, deque[Sample]] = {}

    def add(self, node_list: list[dict[str, Any]]) -> None:
        stamp = time.time()
        for node in node_list:
            if node["state"] == NodeState.UP:
                ring = self.rings.setdefault(node["id"], deque())
                ring.append((stamp, node["cpu_percent"], node["memory_used_mb"]))
                while ring and stamp - ring[0][0] > HISTORY_SPAN_S:
                    ring.popleft()

    def of(self, node_id: int) -> list[Sample]:
        return list(self.rings.get(node_id, ()))


class FarmSummary:
    """The cached summary, its version (events say when it changed) and the node history."""

    def __init__(self, read: CountedReads, summary_s: float, sample_s: float) -> None:
        self._read = read
        self.summary_s = summary_s
        self.sample_s = sample_s
        self.summary: dict[str, Any] | None = None
        self.version = 0
        self.history = NodeHistory()
        self._read_at = 0.0
        self._sampled_at = 0.0
        self._dirty = False  # something the summary shows may have changed since the last read
        self._lock = threading.Lock()

    def mark_dirty(self) -> None:
        self._dirty = True

    def sample_due(self, now: float) -> bool:
        return now - self._sampled_at >= self.sample_s

    def refresh_if_due(self, source: Source, now: float, sample_due: bool) -> bool:
        """The broadcaster's look: read again when changed and `summary_s` passed, when it is
        `10 * summary_s` old whatever happened, or when a history sample is due; whether it changed."""
        if (self._dirty and now - self._read_at >= self.summary_s) or \
                now - self._read_at >= 10 * self.summary_s or sample_due:
            self._dirty = False
            return self.refresh(source)
        return False

    def current(self, source: Source, max_age: float | None = None) -> dict[str, Any]:
        """The cached summary; read from the database only when none is fresh enough."""
        age = time.monotonic() - self._read_at
        limit = max_age if max_age is not None else 10 * self.summary_s
        if self.summary is None or age > limit or (self._dirty and age > self.summary_s):
            self._dirty = False
            self.refresh(source)
        assert self.summary is not None
        return self.summary

    def refresh(self, source: Source) -> bool:
        """Read the farm summary (a few small queries); returns whether it changed."""
        with self._lock:
            with self._read(source) as conn:
                node_list = [node.model_dump(mode="json") for node in views.all_nodes(conn)]
                job_states = {r.state: r.n for r in conn.execute(q.JOBS_BY_STATE)}
            now = time.monotonic()
            self._read_at = now
            if self.sample_due(now):
                self._sampled_at = now
                self.history.add(node_list)
            summary = build_summary(node_list, job_states)
            changed = summary != self.summary
            if changed:
                self.summary = summary
                self.version += 1
            return changed


def node_is(node: dict[str, Any], chip: str) -> bool:
    """Whether a node of the summary's list counts under a chip (`model/node_chips.py`)."""
    return counts_as(chip, state=node["state"], admin_state=node["admin_state"], running=len(node["running"]))


def build_summary(node_list: list[dict[str, Any]], job_states: dict[str, int]) -> dict[str, Any]:
    """Counts the overview shows, from the node list and job counts by state."""
    counts = {chip: sum(1 for node in node_list if node_is(node, chip)) for chip in NODE_CHIPS}
    cores_total = cores_used = gpus_total = gpus_used = 0
    mem_total = mem_used = 0
    for node in node_list:
        if node["state"] != NodeState.UP:
            continue
        cores_total += node["cores"]
        cores_used += node["cores"] - node["free"]["cores"]
        gpus_total += len(node["gpus"])
        gpus_used += len(node["gpus"]) - node["free"]["gpus"]
        mem_total += node["memory_mb"]
        mem_used += node["memory_mb"] - node["free"]["memory_mb"]
    return {
        "nodes": {str(key): n for key, n in counts.items()}, "node_count": len(node_list),
        "cores": {"used": cores_used, "total": cores_total},
        "gpus": {"used": gpus_used, "total": gpus_total},
        "memory_mb": {"used": mem_used, "total": mem_total},
        "jobs": {str(state): job_states.get(state, 0) for state in SUMMARY_JOB_STATES},
        "node_list": node_list,
    }
