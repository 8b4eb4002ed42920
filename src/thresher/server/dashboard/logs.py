"""An attempt's whole log as a file (the task page's Download), `GET /ui/attempts/{id}/log.txt`.

Read in pages of `log_page_max_bytes` through `views.read_log`, the reader the API's log route uses, and
streamed, so a long log is never held whole in memory (one page per database round trip). The file is
the log's text only; the lines' arrival times (`LogPiece.times`, `model/log_times.py`) are the task
page's time column.
"""

from __future__ import annotations

from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from thresher.server import views
from thresher.server.context import ServerContext, ctx
from thresher.server.dashboard.access import DashboardRoute, DataSession
from thresher.server.db.queries import dashboard as q
from thresher.server.errors import NotFound

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _pieces(server: ServerContext, attempt_id: int) -> Iterator[bytes]:
    offset = 0
    while True:
        with server.db.read() as conn:
            piece = views.read_log(conn, attempt_id, offset=offset, limit=server.settings.log_page_max_bytes)
        if piece.data:
            yield piece.data.encode("utf-8")
        if piece.next_offset <= offset:
            return
        offset = piece.next_offset


@router.get("/ui/attempts/{attempt_id}/log.txt")
def download_log(request: Request, attempt_id: int, session: DataSession) -> StreamingResponse:
    server = ctx(request)
    with server.db.read() as conn:
        row = conn.execute(q.ATTEMPT_NAME, {"attempt_id": attempt_id}).first() if 1 <= attempt_id < 2**31 else None
    if row is None:
        raise NotFound(f"no attempt with id {attempt_id}")
    name = f"task-{row.task_id}-attempt-{row.number}.log"
    return StreamingResponse(_pieces(server, attempt_id), media_type="text/plain; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
