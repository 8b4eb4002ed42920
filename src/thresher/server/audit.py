"""The audit log: every state-changing call (POST, PUT, PATCH, DELETE), recorded after its answer with
who made it, from where, what (the operation and its path parameters), the status and, for a refusal,
its reason. Append-only: nothing changes an entry; the housekeeping leader deletes entries older than
`audit_keep_days`, in bounded deletes.

Cheap by construction: the middleware (`AuditLog`, around the whole app) only appends a row to a
buffer; one thread (`AuditRecorder`) writes what waits in one INSERT every `FLUSH_S` (sooner when
`MAX_ROWS` wait) - never a transaction per request - and writes the rest at shutdown. The agents'
hot-path calls (`audit_rule.HOT`: work, finish, heartbeat, log chunks, thousands a second on a big farm) are
recorded only when refused: their effects are recorded in attempts already (the rule:
`model/audit_rule.py`).

Who and what come from what the request left behind in its scope: the caller `current_caller` set
(`request.state.caller`; none: no valid credential) and the route that matched (`scope["route"]`,
`scope["path_params"]`), so no route has to do anything to be audited.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thresher.model.audit_rule import CHANGING, REFUSED, allowed, recorded
from thresher.model.forwarded import Network
from thresher.server.addresses import scope_address
from thresher.server.auth import Caller
from thresher.server.clock import utcnow
from thresher.server.db.engine import Database
from thresher.server.db.queries import audit as q
from thresher.wire.audit import AuditEntry, AuditFilter

log = logging.getLogger("thresher.server")

FLUSH_S = 0.5      # the longest a row waits in the buffer
MAX_ROWS = 1000    # this many waiting are written at once
PRUNE_BATCH = 5000  # entries one prune statement deletes at most


def kind_of(caller: Caller | None) -> str:
    """user | node | enroll | anonymous: the kind of credential an entry names."""
    if caller is None:
        return "anonymous"
    if caller.kind in ("node", "enroll"):
        return caller.kind
    return "user" if caller.role is not None else "anonymous"


def entry(caller: Caller | None, *, at: datetime, address: str | None, method: str, operation: str,
          target: dict[str, Any], status: int, reason: str | None) -> dict[str, Any]:
    """One row of the `audit` table."""
    return {"at": at, "who": caller.name if caller else None, "kind": kind_of(caller),
            "role": caller.role if caller else None, "address": address, "method": method,
            "operation": operation[:100], "target": target, "status": status, "allowed": allowed(status),
            "reason": reason}


class AuditRecorder:
    """The buffer and its one writer thread. `record` is called on the event loop (any thread works):
    it appends and returns; the thread writes each batch in one transaction of one INSERT."""

    def __init__(self, db: Database, flush_s: float = FLUSH_S, max_rows: int = MAX_ROWS) -> None:
        self.db = db
        self.flush_s = flush_s
        self.max_rows = max_rows
        self._rows: list[dict[str, Any]] = []
        self._wake = threading.Condition()
        self._writing = threading.Lock()  # held by whoever writes a batch
        self._thread: threading.Thread | None = None
        self._closed = False
        self.flushes = 0   # transactions written (for tests and curiosity)
        self.written = 0   # rows written

    def record(self, row: dict[str, Any]) -> None:
        with self._wake:
            if self._closed:  # after shutdown: written at once rather than lost
                self._write([row])
                return
            self._rows.append(row)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
                self._thread.start()
            if len(self._rows) >= self.max_rows:
                self._wake.notify()

    def _take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        return rows

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._closed and len(self._rows) < self.max_rows:
                    self._wake.wait(self.flush_s)
                closed = self._closed
            self.flush()
            if closed:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(q.INSERT_AUDIT, rows)
            self.flushes += 1
            self.written += len(rows)
        except Exception:  # the log must never take the server down; what failed is said in its log
            log.exception("writing %d audit entries failed", len(rows))

    def flush(self) -> None:
        """Write what waits now; once it returns, every row recorded before is committed (a write the
        thread had under way included: one writer at a time)."""
        with self._writing:
            with self._wake:
                rows = self._take()
            if rows:
                self._write(rows)

    def close(self) -> None:
        """Stop the thread after it wrote everything that waits."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()


@dataclass
class _Answer:
    status: int = 0
    body: bytes = b""


class AuditLog:
    """ASGI middleware: after each state-changing call's answer, its entry into the recorder."""

    def __init__(self, app: ASGIApp, recorder: AuditRecorder, proxies: Sequence[Network] = ()) -> None:
        self.app = app
        self.recorder = recorder
        self.proxies = tuple(proxies)  # whose X-Forwarded-For names the address (`trusted_proxies`)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        answer = _Answer()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = int(message["status"])
            elif message["type"] == "http.response.body" and answer.status in REFUSED and len(answer.body) < 4096:
                answer.body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._note(scope, state, answer)

    def _note(self, scope: Scope, state: Any, answer: _Answer) -> None:
        route = scope.get("route")
        operation = getattr(route, "operation_id", None) or getattr(route, "name", None)
        if route is None or not operation:  # no route took it (404 of an unknown path): nothing was done
            return
        status = answer.status or 500
        if not recorded(scope["method"], str(operation), status):
            return
        caller = state.get("caller") if isinstance(state, dict) else getattr(state, "caller", None)
        address = scope_address(scope, self.proxies)
        try:
            self.recorder.record(entry(
                caller if isinstance(caller, Caller) else None, at=utcnow(),
                address=None if address == "unknown" else address,
                method=scope["method"], operation=str(operation),
                target={**{k: str(v) for k, v in (scope.get("path_params") or {}).items()}, **_named(state)},
                status=status, reason=_reason(answer) if status in REFUSED else None))
        except Exception:  # never fail the answer already sent
            log.exception("recording an audit entry failed")


def name_target(request: Any, **ids: object) -> None:
    """What a call made, for its audit entry's target, when its path does not name it (a submit names
    the job it created: `thresher audit --job 12` then finds who submitted job 12)."""
    request.state.audit_target = {k: str(v) for k, v in ids.items()}


def _named(state: Any) -> dict[str, str]:
    named = state.get("audit_target") if isinstance(state, dict) else getattr(state, "audit_target", None)
    return dict(named) if isinstance(named, dict) else {}


def _reason(answer: _Answer) -> str | None:
    try:
        detail = json.loads(answer.body).get("detail")
    except (ValueError, AttributeError):
        return None
    return str(detail)[:1000] if detail is not None else None


def list_entries(conn: Any, chosen: AuditFilter, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
    """One page of entries (the newest first) and how many match."""
    args = (chosen.who, chosen.operation, chosen.job, chosen.allowed, chosen.since, chosen.until)
    rows = conn.execute(q.list_audit(*args, limit, offset)).mappings().all()
    total = int(conn.execute(q.count_audit(*args)).scalar_one())
    return [AuditEntry.model_validate(dict(row)) for row in rows], total


def prune(db: Database, keep_days: float, now: datetime, most: int = PRUNE_BATCH) -> int:
    """Delete at most `most` entries older than `keep_days` (0: keep for ever), in one bounded
    statement; returns how many went (a full batch: call again soon)."""
    if keep_days <= 0:
        return 0
    with db.write() as conn:
        return int(conn.execute(q.prune_before(now - timedelta(days=keep_days), most)).rowcount or 0)
