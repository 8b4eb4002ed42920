"""The one HTTP layer under every Thresher client: CLI, Python API, agents, dashboard tests, benches.

It knows the base URL, the bearer token and the shape of error answers, so that each caller deals
with `ApiError` (a status and a readable message) instead of raw HTTP.
"""

from __future__ import annotations

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


class ServerUnreachable(Exception):
    """The server could not be reached at all (refused, timed out, DNS)."""


class TlsFailed(ServerUnreachable):
    """No TLS connection to the server: its certificate failed verification, the CA file is unusable, or
    one side speaks plain HTTP. Retrying does not help; a person must fix the setup (README: TLS)."""


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
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
        except httpx.TransportError as exc:
            problem = tls.explain(exc, self.server, self.ca_file)
            if problem is not None:
                raise TlsFailed(problem) from exc
            raise ServerUnreachable(f"cannot reach Thresher server at {self.server}: {exc}") from exc
        _raise_for_error(response)
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
