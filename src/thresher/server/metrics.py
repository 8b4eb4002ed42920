"""Prometheus metrics of one server process, served at `GET /metrics` (`api/metrics.py`, docs/metrics.md).

Cheap by construction, because the agents' hot path must not pay for being watched:
- what the farm holds (jobs, tasks and nodes by state, cores and GPUs in use) is read only when a
  scraper asks, with one statement (`queries/metrics.FARM_BY_STATE`), never kept up per request;
- what happens (assignments, reports, log bytes, write batches, request times) is counted where it
  happens, with a few additions under a lock (`Tally`, `Spread`: a fraction of what prometheus_client's
  own instruments cost per call); database time is the sum the `Database` keeps of its transactions
  (`db.engine.TransactionTimes`). prometheus_client writes the text at a scrape.
Each `ServerContext` has its own `CollectorRegistry`, so several servers in one process (the tests)
never share or clash over a series. Counters are this process's since it started; with several server
processes, scrape each (the farm gauges are the same in all).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Receive, Scope, Send

from thresher.model.states import JobState, NodeState, TaskState
from thresher.server.db.engine import Database
from thresher.server.db.queries import metrics as q

# Request methods kept as a label; anything else a client sends is counted as OTHER (bounded labels).
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "(unmatched)"  # the route label of requests no route took (404s, probes)

# A long poll for work lasts up to 30 s and a dashboard event stream as long as its tab: the top buckets
# are for them, the low ones for everything else.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Tally:
    """A counter: one addition under a lock (prometheus_client's own `Counter.inc` costs microseconds)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name, self.doc, self.value = name, doc, 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1) -> None:
        with self._lock:
            self.value += amount

    def family(self) -> Metric:
        return CounterMetricFamily(self.name, self.doc, value=self.value)


class Spread:
    """A histogram with labels: a bisect and two additions per observation (prometheus_client's
    `Histogram.observe` walks its buckets in Python under a lock per value: about ten times as long)."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.bounds = tuple(float(b) for b in buckets)
        self._series: dict[tuple[str, ...], list[Any]] = {}  # labels -> [counts per bucket (+Inf last), sum]
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        index = bisect_left(self.bounds, value)  # the first bound >= value: Prometheus' `le`
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [[0] * (len(self.bounds) + 1), 0.0]
            series[0][index] += 1
            series[1] += value

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        with self._lock:
            copied = [(labels, list(counts), total) for labels, (counts, total) in sorted(self._series.items())]
        for labels, counts, total in copied:
            cumulative = list(accumulate(counts))
            buckets = [(floatToGoString(b), float(n)) for b, n in zip(self.bounds, cumulative[:-1], strict=True)]
            family.add_metric(list(labels), buckets + [("+Inf", float(cumulative[-1]))], total)
        return family


class Metrics:
    """The instruments of one server process and its private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.assignments = Tally("thresher_assignments", "Tasks handed to agents (attempts started).")
        self.reports = Tally("thresher_reports", "Finish reports of attempts received from agents.")
        self.log_bytes = Tally("thresher_log_bytes", "Bytes of task logs received from agents (UTF-8).")
        self.submit_to_start = Spread(
            "thresher_submit_to_start_seconds", "Seconds from a job's submit to the start of each of its tasks' "
            "first attempt (queueing, dependencies and scouts included).", _WAIT_BUCKETS)
        self.requests = Spread(
            "thresher_http_request_duration_seconds", "Seconds from a request's arrival to its answer's end, by "
            "method and route template (long polls for work and event streams included).", _REQUEST_BUCKETS,
            ("method", "route"))
        self.batch_operations = Spread(
            "thresher_write_batch_operations", "Operations (agent calls) applied per committed write batch "
            "(db/batcher.py), by writer.", _BATCH_BUCKETS, ("writer",))
        self.batch_seconds = Spread(
            "thresher_write_batch_seconds", "Seconds a committed write batch took (on SQLite with the wait for the "
            "write lock), by writer.", _BATCH_SECONDS_BUCKETS, ("writer",))
        self.registry.register(_Instruments([self.assignments, self.reports, self.log_bytes, self.submit_to_start,
                                             self.requests, self.batch_operations, self.batch_seconds]))

    def watch(self, db: Database) -> None:
        """Read the farm's figures and the database time from `db` at each scrape."""
        self.registry.register(FarmCollector(db))

    # -- where things happen (cheap: a few additions) --

    def work_answered(self, assignments: int, waits: list[float]) -> None:
        """An agent got `assignments` tasks; `waits` are the first attempts' seconds since their job's submit."""
        if assignments:
            self.assignments.inc(assignments)
        for wait in waits:
            self.submit_to_start.observe(max(0.0, wait))

    def batch_done(self, writer: str, operations: int, seconds: float) -> None:
        self.batch_operations.observe(operations, writer)
        self.batch_seconds.observe(seconds, writer)

    def request_done(self, method: str, route: str, seconds: float) -> None:
        self.requests.observe(seconds, method if method in _METHODS else "OTHER", route)

    def scrape(self) -> bytes:
        """The text exposition format (blocking: reads the database once)."""
        return generate_latest(self.registry)


class _Instruments(Collector):
    """What this process counted, as metric families at each scrape."""

    def __init__(self, instruments: list[Tally | Spread]) -> None:
        self.instruments = instruments

    def collect(self) -> Iterator[Metric]:
        for instrument in self.instruments:
            yield instrument.family()


class FarmCollector(Collector):
    """Jobs, tasks and nodes by state, cores and GPUs in use, database time: read at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.peek() as conn:
            rows = conn.execute(q.FARM_BY_STATE).all()
        counts = {(row.kind, row.state): row for row in rows}
        for kind, states, what in (("job", list(JobState), "Jobs (not archived)"),
                                   ("task", list(TaskState), "Tasks of jobs not archived"),
                                   ("node", list(NodeState), "Nodes (not removed)")):
            family = GaugeMetricFamily(f"thresher_{kind}s", f"{what} by state.", labels=["state"])
            known = [str(s) for s in states]
            for state in known + sorted(s for k, s in counts if k == kind and s not in known):
                row = counts.get((kind, state))
                family.add_metric([state], row.n if row else 0)
            yield family
        in_use = counts.get(("usage", "in_use"))
        up = counts.get(("node", NodeState.UP.value))
        yield GaugeMetricFamily("thresher_cores_in_use", "Cores reserved by running attempts.",
                                value=in_use.cores if in_use else 0)
        yield GaugeMetricFamily("thresher_gpus_in_use", "GPUs reserved by running attempts.",
                                value=in_use.gpus if in_use else 0)
        yield GaugeMetricFamily("thresher_cores_up", "Cores offered by nodes that are up.", value=up.cores if up else 0)
        seconds = CounterMetricFamily("thresher_database_seconds", "Seconds spent in database transactions by "
                                      "this process, by kind (write, read, peek: reads outside a transaction).",
                                      labels=["kind"])
        count = CounterMetricFamily("thresher_database_transactions", "Database transactions of this process, by "
                                    "kind.", labels=["kind"])
        for kind, (n, total) in sorted(self.db.times.snapshot().items()):
            seconds.add_metric([kind], total)
            count.add_metric([kind], n)
        yield seconds
        yield count


class RequestTimer:
    """ASGI middleware: each HTTP request's duration into `Metrics.requests`, labelled with the template of
    the route that took it (`/api/v1/jobs/{job_id}`, never the raw path: the labels stay few)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # id(route) -> its whole template, found at its first request (routes live as long as the app)
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            template = UNMATCHED if route is None else self._templates.get(id(route))
            if template is None:
                template = self._templates.setdefault(id(route), whole_template(route, scope.get("path", "")))
            self.metrics.request_done(scope["method"], template, time.perf_counter() - start)


def whole_template(route: Any, path: str) -> str:
    """The route's template with the prefix it was included under (`/api/v1` + `/jobs/{job_id}`): the
    route knows only its own part, so the prefix is the start of the path its pattern does not match
    (prefixes hold no parameters here)."""
    template = getattr(route, "path", None)
    regex = getattr(route, "path_regex", None)
    if not isinstance(template, str) or regex is None:
        return UNMATCHED
    for cut in [0] + [i for i, char in enumerate(path) if char == "/" and i]:
        if regex.match(path[cut:]):
            return path[:cut] + template
    return template
