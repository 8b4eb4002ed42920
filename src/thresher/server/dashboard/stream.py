"""`/events`: the live event stream every dashboard tab listens to (server-sent events).

One JSON message per broadcaster tick that changed something (server/events/). The tab names what
it shows, so that events carry what it needs and nothing is read for what nobody shows.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from thresher.server.context import ServerContext, ctx, current_caller, require_admin
from thresher.server.dashboard.access import DashboardRoute, OptionalSession

STREAM_MAX_S = 3600.0       # a stream ends after this; the browser reconnects on its own
KEEP_ALIVE_S = 15.0         # a comment line this often when nothing happens, so proxies keep the stream open
MOST_WATCHED = 20           # job or task pages one stream may name

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _ids(values: list[str], most: int = MOST_WATCHED) -> list[int]:
    return [int(v) for v in values[:most] if v.isascii() and v.isdigit()]


@router.get("/events")
async def events(request: Request, session: OptionalSession) -> Response:
    """Server-sent events. `?job=ID` / `?task=ID` name the job or task page the tab shows: events
    then carry that job's changed grid cells, or that task's new state. `?counts=0`: the tab shows
    no job progress, so changed jobs' counts need not be read for it."""
    server: ServerContext = ctx(request)
    if session is None:
        await require_admin(await current_caller(request))  # a tool with a bearer token may listen too
    queue = server.events.subscribe(jobs=_ids(request.query_params.getlist("job")),
                                    tasks=_ids(request.query_params.getlist("task")),
                                    job_info=request.query_params.get("counts") != "0")

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: 2000\ndata: {json.dumps({'hello': True, 'summary': server.events.summary_version})}\n\n"
            started = time.monotonic()
            while time.monotonic() - started < STREAM_MAX_S:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=KEEP_ALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    break
                yield f"data: {json.dumps(event)}\n\n"
        finally:
            server.events.unsubscribe(queue)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
