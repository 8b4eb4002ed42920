"""The address a request comes from, for the audit log and the per-address login lockout."""

from __future__ import annotations

from fastapi import Request


def client_address(request: Request) -> str:
    """The peer's address ("unknown" when the server cannot tell)."""
    return request.client.host if request.client else "unknown"
