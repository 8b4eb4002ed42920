"""The one HTTP layer under every Thresher client: CLI, Python API, agents, dashboard tests, benches.

It knows the base URL, the bearer token and the shape of error answers, so that each caller deals
with `ApiError` (a status and a readable message) instead of raw HTTP.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from thresher.client import tls

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The server answered with an error status; `detail` and `errors` come from its JSON body."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.body = body or {}
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{self.detail} (HTTP {self.status})"]
        lines += [f"  {e.get('field') or '-'}: {e.get('message')}" for e in self.errors]
        return "\n".join(lines)


class NotSendable(ApiError, ValueError):
    """A request holding what JSON cannot carry (a number that is infinite or NaN: `timeout=float('inf')`),
    refused before it is sent, the way the server refuses a bad value: 422 with the field it is at
    (`layers.0.timeout`). Where it was a bare "Out of range float values are not JSON compliant"."""

    def __init__(self, field: str, value: float) -> None:
        super().__init__(422, "invalid request: not sent", [
            {"field": field, "message": f"{value} is no number JSON can carry: give a finite number"}])

    def __str__(self) -> str:
        return "\n".join([self.detail] + [f"  {e['field']}: {e['message']}" for e in self.errors])


def non_finite(value: Any) -> tuple[str, float] | None:
    """The first infinite or NaN number in a JSON value and its place (`layers.0.timeout`; `(body)` for the
    value itself), walked without recursion; None when it has none."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or "(body)", item
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in reversed(list(enumerate(item))))
    return None


class ServerUnreachable(Exception):
    """The server could not be reached at all (refused, timed out, DNS)."""


class TlsFailed(ServerUnreachable):
    """No TLS connection to the server: its certificate failed verification, the CA file is unusable, or
    one side speaks plain HTTP. Retrying does not help; a person must fix the setup (README: TLS)."""


# What Thresher answers for a path it has no route for (`app._http`); its own 404s name what is missing.
_NO_ROUTE = "Not Found"


def _not_thresher(response: httpx.Response, body: Any) -> bool:
    """A 404 that is no Thresher answer about a thing (a job, a node): another web server's page, or
    Thresher's own answer for a path it has no route for. On a client's first call, that means the
    address is not the server's base (a proxy's path, a typo), which a bare "Not Found" did not say."""
    if response.status_code != 404:
        return False
    detail = body.get("detail") if isinstance(body, dict) else None
    return not isinstance(detail, str) or detail == _NO_ROUTE


def _raise_for_error(response: httpx.Response, first_at: str | None = None) -> None:
    """ApiError for an error answer; `first_at`, the server's address when this is its first answer."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if first_at is not None and _not_thresher(response, body):
        raise ApiError(404, f"no Thresher API at {first_at}: give the server's base address, as "
                            f"http://host:8642")
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        detail = response.reason_phrase or "request failed"
    errors = body.get("errors") if isinstance(body, dict) else None
    raise ApiError(response.status_code, detail, errors if isinstance(errors, list) else None,
                   body if isinstance(body, dict) else None)


class HttpClient:
    """Synchronous JSON calls against one Thresher server with one token."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0,
                 ca_file: str | Path | None = None) -> None:
        """`ca_file`: the CA certificate(s) an https server's certificate is checked against (else
        `$THRESHER_CA_FILE`, the saved client config's `ca_file`, or the public CAs: `client/tls.py`)."""
        self.server = server.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            verify = tls.verify_for(ca_file) if self.server.startswith("https://") else True
        except tls.TlsProblem as exc:
            raise TlsFailed(str(exc)) from None
        self._http = httpx.Client(base_url=self.server + API_PREFIX, headers=headers, timeout=timeout,
                                  verify=verify)
        self._answered = False  # a first answer that is no Thresher's says so (`_not_thresher`)

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """Send one call; return the decoded JSON body, raise ApiError or ServerUnreachable. A query
        written into `path` (`/jobs/1/tasks?frame=7`) is kept: httpx drops it when params are passed,
        which every call does (the agent's finish reports once lost their `?work=1` that way), so it is
        moved into the params here, those given by name winning."""
        path, _, query = path.partition("?")
        clean_params = {**dict(parse_qsl(query, keep_blank_values=True)),
                        **{k: v for k, v in (params or {}).items() if v is not None}}
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            response = self._http.request(method, path, json=json, params=clean_params, **extra)
        except ValueError:  # httpx's JSON encoding refuses inf and NaN: said at their field instead
            found = non_finite(json)
            if found is None:
                raise
            raise NotSendable(*found) from None
        except httpx.TransportError as exc:
            problem = tls.explain(exc, self.server, self.ca_file)
            if problem is not None:
                raise TlsFailed(problem) from exc
            raise ServerUnreachable(f"cannot reach Thresher server at {self.server}: {exc}") from exc
        first, self._answered = not self._answered, True
        _raise_for_error(response, self.server if first else None)
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **params: Any) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, params=params)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
