"""The request body limit: a body past it is refused with 413 before any route reads it.

Without one, a 50 MB spec was accepted, stored, and sent again in every assignment of its tasks; any
caller could make the server hold as much memory as it cared to send. The limit is enforced while the
body is read, for a declared `Content-Length` and for a chunked body alike, so nothing past it is ever
held: a pure ASGI middleware reads the body (as every route would), counting, and hands the route what
it read. The submit route may have a larger limit (`ServerSettings.max_submit_body_bytes`: a spec that
lists a million frames one by one is about 7 MB); every other route has `max_body_bytes`.

A refused body is read to its end and dropped (up to `DRAIN_BYTES` more), so that the client, which
sends its whole body before it reads an answer, hears the 413 instead of a reset connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Bytes past the limit read and dropped before the 413 is sent; a client sending more is cut off.
DRAIN_BYTES = 64 * 1024 * 1024


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}".replace(".0 ", " ")
    return f"{n:,} bytes"


def too_large(method: str, path: str, size: int | None, limit: int, setting: str) -> dict[str, Any]:
    """The 413 answer (the `Problem` shape): what is too big, the limit, and the setting that sets it."""
    said = f"{_size(size)}" if size is not None else f"more than {_size(limit)}"
    message = f"the request body is {said}; the limit is {_size(limit)} for {method} {path} (`{setting}`)"
    return {"detail": f"request body too large: {message}", "errors": [{"field": "(body)", "message": message}]}


class BodyLimit:
    """ASGI middleware: `limits` maps (method, path) to a limit and its setting's name; other requests
    get `default` (with `default_setting`)."""

    def __init__(self, app: App, default: int, default_setting: str = "max_body_bytes",
                 limits: Mapping[tuple[str, str], tuple[int, str]] | None = None) -> None:
        self.app = app
        self.default = (default, default_setting)
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit, setting = self.limits.get((method, path), self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= limit + DRAIN_BYTES:
                await _drain(receive, DRAIN_BYTES + limit)
            await _refuse(send, too_large(method, path, declared, limit, setting))
            return
        chunks: list[bytes] = []
        total = 0
        first: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: the route hears it
                first = message
                break
            body = message.get("body", b"")
            total += len(body)
            if total > limit:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_BYTES)
                await _refuse(send, too_large(method, path, None, limit, setting))
                return
            if body:
                chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: Message = first or {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        handed = False

        async def replayed() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return replay
            return await receive()  # after the body: a disconnect, which long polls wait for

        await self.app(scope, replayed, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed one before we see it
    return None


async def _drain(receive: Receive, most: int) -> None:
    """Read and drop the rest of a refused body, up to `most` bytes."""
    dropped = 0
    while dropped <= most:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(send: Send, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
