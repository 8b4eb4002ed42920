"""A deliberately tiny HTTP/1.1 keep-alive client for simulated agents.

A thousand simulated agents on the same 2-core machine as the server must cost far less CPU than the
server they measure; httpx spends several times the server's own CPU per call. This client only does
what the bench needs: POST a JSON body on one kept-alive connection and read a Content-Length reply.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class RawConnection:
    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: Any, timeout: float = 60.0) -> tuple[int, Any]:
        """POST JSON; returns (status, decoded JSON or None). Reconnects once if the connection dropped."""
        payload = json.dumps(body).encode()
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload
        for attempt in (1, 2):
            if self._writer is None:
                await self._connect()
            try:
                assert self._writer is not None and self._reader is not None
                self._writer.write(request)
                return await asyncio.wait_for(self._read_response(), timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    async def _read_response(self) -> tuple[int, Any]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        data = await self._reader.readexactly(length) if length else b""
        return status, (json.loads(data) if data else None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
