"""The address a request comes from, for the audit log and the per-address login lockout: the peer's,
or whom a trusted proxy says it forwards (the rule `model/forwarded.py`, `trusted_proxies`)."""

from __future__ import annotations

from typing import Sequence

from fastapi import Request
from starlette.types import Scope

from thresher.model.forwarded import Network, trusted
from thresher.model.forwarded import client_address as forwarded_client


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers") or () if k.lower() == name]
    return ",".join(values) if values else None


def scope_address(scope: Scope, proxies: Sequence[Network]) -> str:
    """The client's address for an ASGI scope ("unknown" when the server cannot tell)."""
    client = scope.get("client")
    return forwarded_client(client[0] if client else None, _header(scope, b"x-forwarded-for"), proxies)


def client_address(request: Request) -> str:
    from thresher.server.context import ctx

    return scope_address(request.scope, ctx(request).settings.trusted_networks)


def forwarded_https(request: Request) -> bool:
    """A trusted proxy says the browser spoke HTTPS to it (`X-Forwarded-Proto: https`)."""
    from thresher.server.context import ctx

    client = request.scope.get("client")
    proto = (request.headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower()
    return proto == "https" and trusted(client[0] if client else None, ctx(request).settings.trusted_networks)
