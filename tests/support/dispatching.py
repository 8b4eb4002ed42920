"""Test shorthands over dispatch and lifecycle: one node asking alone, one report alone.

The server always goes through the batched calls (`dispatch.work_for_nodes`, `lifecycle.finish_reports`);
tests that drive a single node read better with these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from thresher.server import dispatch, lifecycle


def work_for(conn: Connection, node_id: int, now: datetime) -> dispatch.Answer:
    """What one node asking alone gets (inside the caller's write transaction)."""
    (answer,) = dispatch.work_for_nodes(conn, [node_id], now)
    return answer


def assign(conn: Connection, node_id: int, now: datetime) -> list[dict[str, Any]]:
    """The assignments one node asking alone gets."""
    return work_for(conn, node_id, now).assignments


def kill_list(conn: Connection, node_id: int, now: datetime) -> list[int]:
    """The attempts the server wants this node to stop (what its next ask for work is told to kill)."""
    return work_for(conn, node_id, now).kills


def finish_attempt(conn: Connection, node_id: int, report: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One report, settled at once; the result carries its `changes`."""
    (result,), changes = lifecycle.finish_attempts(conn, node_id, [report], now)
    return {**result, "changes": changes}
