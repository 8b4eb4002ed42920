"""Deliver what the node produced: log bytes of running attempts and spooled finish reports.

One thread, driven by a short interval (`report_interval_s`) and by nudges (a task finished,
`log_wake_bytes` of output are waiting), so that a finished task is reported at once: the server frees
the node's resources only when it hears of the finish, and every millisecond here is dispatch latency.

Logs are sent from the local log files by UTF-8 byte offset; the server ignores what it already has
and answers a gap with 409 + `next_offset`, so resending is always safe. A finish report is sent only
after its log; when the server says it lacks log bytes (`accepted: false, next_offset`), the rest of
the log goes first and the report again. While the server is unreachable the thread backs off and
keeps everything on disk. A report the server refuses (4xx) goes once more with how the attempt ended
alone (`wire.outcome_only`), so one value it cannot take does not cost the result; only a report refused
in that form too, or one the server says is not this node's, is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from thresher.agent import timeline
from thresher.agent.connectivity import Connectivity, is_outage, retry_backoff
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool, file_key, write_json_atomic
from thresher.agent.wire import OUTCOME_KEYS, outcome_only
from thresher.client.http import ApiError, HttpClient
from thresher.wire.agent import FinishAnswer, FinishResult, LogAccepted, LogGap

log = logging.getLogger("thresher.agent")

_BATCH = 200  # finish reports per call, well below the server's limit of 10,000
M = TypeVar("M", bound=BaseModel)


def _read(model: type[M], answer: Any) -> M | None:
    """The server's answer as its wire model, or None when it is not one (the caller then carries on
    as if unanswered: what is spooled is sent again)."""
    try:
        return model.model_validate(answer)
    except ValidationError:
        return None


_GATHER_LOOK_S = 0.002  # how often a gathering report looks whether tasks still wait on the node
_MAX_REFUSALS = 5  # "not accepted" answers without a reason before a report is dropped


def utf8_complete_len(raw: bytes) -> int:
    """Length of the longest prefix of `raw` that does not end inside a UTF-8 sequence.

    Log chunks are cut by size; a chunk must not end in the middle of a character, because `data`
    travels as a JSON string and its UTF-8 length is what moves the offset."""
    n = len(raw)
    for back in range(1, min(4, n) + 1):
        b = raw[n - back]
        if b & 0xC0 == 0x80:
            continue  # continuation byte: keep looking for the lead byte
        if b < 0x80:
            return n
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return n if back >= need else n - back
    return n


class Reporter:
    """The log and finish-report delivery thread."""

    def __init__(self, client: HttpClient, spool: Spool, connectivity: Connectivity,
                 settings: AgentSettings | None = None) -> None:
        settings = settings or AgentSettings()
        self.client = client
        self.spool = spool
        self.conn = connectivity
        self.interval = settings.report_interval_s
        self.wake_bytes = settings.log_wake_bytes
        self.chunk_bytes = settings.log_chunk_bytes
        self._lock = threading.Lock()
        self._live: dict[str, tuple[Any, Path]] = {}  # running attempts whose log we stream
        self._offsets: dict[str, int] = {}  # what the server holds, where known
        self._unsent: dict[str, int] = {}
        self._dead_logs: set[str] = set()  # the server refuses this log (unknown attempt)
        self._refusals: dict[str, int] = {}
        self._event = threading.Event()
        self._urgent = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = retry_backoff(settings)
        self._auth_warned = False
        # Set by the daemon while it takes work: finish reports then ask for work too (`?work=1`), and
        # what the answer assigns goes here, as the work poll's answer would.
        self.on_work: Callable[[dict[str, Any]], None] | None = None
        # The query of a finish report that asks for work (passed as params: a query written into the
        # path is dropped by httpx when params are given, and the call then asks for nothing).
        self._work_params: dict[str, Any] = {"work": 1, **({"ahead": settings.tasks_ahead} if settings.tasks_ahead else {})}
        # Set by the daemon where tasks wait on the node: whether one waits now, so that a finish report
        # may wait `report_gather_s` for others to go in the same call.
        self.tasks_waiting: Callable[[], bool] | None = None
        self._gather_s = settings.report_gather_s
        self._finished = False  # a finish report was spooled since the last pass

    # -- called by the daemon --

    def track(self, attempt_id: Any, log_path: Path) -> None:
        """Start streaming a new attempt's log; the server holds nothing of it yet."""
        key = file_key(attempt_id)
        with self._lock:
            self._live[key] = (attempt_id, Path(log_path))
            self._offsets.setdefault(key, 0)

    def note_output(self, attempt_id: Any, nbytes: int) -> None:
        """A runner wrote output; nudge the thread once enough is waiting."""
        key = file_key(attempt_id)
        with self._lock:
            waiting = self._unsent.get(key, 0) + nbytes
            self._unsent[key] = waiting
        if waiting >= self.wake_bytes:
            self._event.set()

    def wake(self, urgent: bool = False, finished: bool = False) -> None:
        """Something is ready to send (`finished`: a finish report): go now (during an outage: at the next
        retry, unless urgent)."""
        if urgent:
            self._urgent = True
        if finished:
            self._finished = True
        self._event.set()

    def _gather(self) -> None:
        """A finish report waits a moment for the reports of tasks ending right after it, while the
        node's freed cores have tasks waiting for them (see `report_gather_s`)."""
        waiting = self.tasks_waiting
        if self._finished and self._gather_s and waiting is not None:
            end = time.monotonic() + self._gather_s
            while waiting() and time.monotonic() < end and not self._stop.wait(_GATHER_LOOK_S):
                pass  # ends early once no task waits: a core would soon have nothing to start
        self._finished = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reporter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Try to deliver every spooled report within `timeout` seconds (used at shutdown)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.spool.pending():
                return True
            self.wake(urgent=True)
            time.sleep(0.05)
        return not self.spool.pending()

    # -- the thread --

    def _loop(self) -> None:
        next_try = 0.0
        failing = False
        while not self._stop.is_set():
            self._event.wait(max(0.0, next_try - time.monotonic()))
            if self._stop.is_set():
                break
            if failing and time.monotonic() < next_try and not self._urgent:
                # Woken during an outage's backoff: a nudge does not shorten the retry delay.
                self._event.clear()
                continue
            self._event.clear()
            self._urgent = False
            self._gather()
            try:
                self.run_once()
            except Exception as exc:
                if is_outage(exc):
                    self.conn.failed("reporting", exc)
                elif isinstance(exc, ApiError) and exc.status in (401, 403):
                    if not self._auth_warned:
                        log.error("server refused the node credential while reporting: %s", exc.detail)
                        self._auth_warned = True
                else:
                    log.exception("reporter: unexpected error (will retry)")
                next_try = time.monotonic() + self._backoff.next_delay()
                failing = True
                continue
            failing = False
            self._backoff.reset()
            self._auth_warned = False
            next_try = time.monotonic() + self.interval

    def run_once(self) -> None:
        """One delivery pass: live logs, then finish reports (a few rounds, for log catch-up)."""
        with self._lock:
            live = list(self._live.items())
        for key, (attempt_id, path) in live:
            if key not in self._dead_logs:
                self._send_log(attempt_id, key, path, upto=None)
        for _ in range(3):
            if not self._deliver_reports():
                break

    # -- logs --

    def _post(self, path: str, body: dict[str, Any], **params: Any) -> Any:
        answer = self.client.post(path, body, **params)
        self.conn.ok()
        return answer

    def _send_log(self, attempt_id: Any, key: str, path: Path, upto: int | None) -> None:
        """Send the log from the server's offset up to `upto` bytes (or the end of the file)."""
        offset = self._offsets.get(key, 0)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        limit = size if upto is None else min(size, upto)
        with self._lock:
            self._unsent[key] = 0
        rounds = 0
        while offset < limit and rounds < 256:
            rounds += 1
            with open(path, "rb") as f:
                f.seek(offset)
                raw = f.read(min(self.chunk_bytes, limit - offset))
            if not raw:
                break
            used = utf8_complete_len(raw)
            if used == 0:
                break  # the writer is in the middle of a character; next pass
            text = raw[:used].decode("utf-8", errors="replace")
            try:
                answer = self._post(f"/agent/attempts/{attempt_id}/log", {"offset": offset, "data": text})
            except ApiError as exc:
                if is_outage(exc) or exc.status in (401, 403):
                    raise
                gap = _read(LogGap, exc.body) if exc.status == 409 else None
                if gap is not None:
                    offset = max(0, min(gap.next_offset, size))
                    self._offsets[key] = offset
                    continue
                log.warning("server refused the log of attempt %s (%s); not sending more of it",
                            attempt_id, exc.detail)
                self._dead_logs.add(key)
                return
            accepted = _read(LogAccepted, answer)
            offset = accepted.next_offset if accepted is not None and accepted.next_offset > offset else offset + used
            self._offsets[key] = offset

    # -- finish reports --

    def _deliver_reports(self) -> bool:
        """Send spooled reports; returns True when some need another round (log catch-up)."""
        reports = self.spool.pending()
        if not reports:
            return False
        ready = []
        for report in reports:
            key = file_key(report["attempt_id"])
            log_size = int(report.get("log_size") or 0)
            if key in self._offsets and key not in self._dead_logs and self._offsets[key] < log_size:
                self._send_log(report["attempt_id"], key, self.spool.log_path(report["attempt_id"]), log_size)
            ready.append(report)
        again = False
        for i in range(0, len(ready), _BATCH):
            again |= self._finish_batch(ready[i:i + _BATCH])
        return again

    def _finish_batch(self, batch: list[dict[str, Any]]) -> bool:
        for report in batch:
            timeline.mark("report_sent", report["attempt_id"])
        on_work = self.on_work
        try:
            answer = self._post("/agent/finish", {"reports": batch}, **({} if on_work is None else self._work_params))
        except ApiError as exc:
            if is_outage(exc) or exc.status in (401, 403):
                raise
            if len(batch) > 1:  # find the one report the server objects to
                again = False
                for report in batch:
                    again |= self._finish_batch([report])
                return again
            return self._refused(batch[0], f"HTTP {exc.status}: {exc.detail}")
        finished = _read(FinishAnswer, answer)
        if finished is None:  # not an answer this agent can read: the reports stay spooled, sent again
            log.warning("the server's answer to a finish report cannot be read: %r", answer)
        if on_work is not None and finished is not None and (finished.assignments or finished.kill):
            try:  # the accepted reports below are forgotten either way: a bad assignment must not resend them
                on_work(answer)
            except Exception:
                log.exception("reporter: could not start the work that came with a finish answer")
        results = finished.results if finished is not None else []
        by_id = {str(r.attempt_id): r for r in results}
        again = False
        for report in batch:
            result = by_id.get(str(report["attempt_id"]))
            if result is None:
                continue  # not answered: try again next pass
            if self._handle_result(report, result):
                again = True
        return again

    def _handle_result(self, report: dict[str, Any], result: FinishResult) -> bool:
        attempt_id = report["attempt_id"]
        key = file_key(attempt_id)
        if result.accepted:
            timeline.mark("report_accepted", attempt_id)
            log.info("attempt %s reported: %s", attempt_id, report.get("status"))
            self._forget(attempt_id)
            return False
        next_offset = result.next_offset
        if result.reason and next_offset is None:  # e.g. the attempt is not ours
            self._give_up(report, result.reason)
            return False
        if next_offset is not None:
            self._offsets[key] = next_offset
            path = self.spool.log_path(attempt_id)
            try:
                have = path.stat().st_size
            except FileNotFoundError:
                have = 0
            log_size = int(report.get("log_size") or 0)
            if have < log_size or key in self._dead_logs:
                # The local log is gone (or refused): report what the server has, say so, move on.
                fixed = dict(report, log_size=next_offset)
                fixed["reason"] = ((report.get("reason") or "") + " (log incomplete)").strip()
                write_json_atomic(self.spool.spool_dir / f"{key}.json", fixed)
                log.warning("attempt %s: local log incomplete, reporting %d bytes", attempt_id, next_offset)
            return True
        refusals = self._refusals.get(key, 0) + 1
        self._refusals[key] = refusals
        if refusals >= _MAX_REFUSALS:
            self._give_up(report, "report not accepted")
        return False

    def _refused(self, report: dict[str, Any], why: str) -> bool:
        """The server refused this report (4xx): send how the attempt ended alone, once (`outcome_only`);
        refused again, give it up. True when it goes again."""
        if set(report) <= OUTCOME_KEYS:
            self._give_up(report, why)
            return False
        key = file_key(report["attempt_id"])
        write_json_atomic(self.spool.spool_dir / f"{key}.json", outcome_only(report, why))
        log.warning("server refused the report of attempt %s (%s); sending how it ended alone",
                    report["attempt_id"], why)
        return True

    def _give_up(self, report: dict[str, Any], why: str) -> None:
        log.error("server refused the report of attempt %s for good (%s); dropping it: %s",
                  report["attempt_id"], why, report)
        self._forget(report["attempt_id"])

    def _forget(self, attempt_id: Any) -> None:
        key = file_key(attempt_id)
        self.spool.remove_report(attempt_id)
        self.spool.remove_log(attempt_id)
        with self._lock:
            self._live.pop(key, None)
            self._unsent.pop(key, None)
        self._offsets.pop(key, None)
        self._dead_logs.discard(key)
        self._refusals.pop(key, None)

    def pending_ids(self) -> list[Any]:
        return self.spool.pending_ids()
