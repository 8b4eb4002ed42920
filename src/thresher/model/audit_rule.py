"""**The** rule for which calls the audit log records (`server/audit.py`): every state-changing call
(POST, PUT, PATCH, DELETE), refusals (401, 403) included; of the agents' hot path (work, finish,
heartbeat, log chunks: thousands a second on a big farm, their effects recorded in attempts) only the
refusals. Reads are never recorded. Pure: no I/O."""

from __future__ import annotations

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOT = frozenset({"ask_for_work", "report_finished", "heartbeat", "append_log"})
REFUSED = frozenset({401, 403})


def recorded(method: str, operation: str, status: int) -> bool:
    """Whether a call (its HTTP method, the route's operation id, the status answered) is recorded."""
    if method not in CHANGING:
        return False
    return operation not in HOT or status in REFUSED


def allowed(status: int) -> bool:
    """An entry's `allowed`: false for a refusal (no or a bad credential, or a permission refused)."""
    return status not in REFUSED
