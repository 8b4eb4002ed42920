"""`GET /metrics`: this server's Prometheus metrics (server/metrics.py), in the text exposition format.

At the root, where Prometheus looks by default, and out of the OpenAPI document (it answers text, not a
wire model). Rule 5 holds: the caller sends the `metrics_token` setting as a bearer token (what a
scraper is given: it reads nothing else) or is an admin (a token or a dashboard session).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from thresher.server.context import ctx, current_caller, require_admin

router = APIRouter(tags=["meta"])


def _metrics_token_sent(request: Request) -> bool:
    """Does the request carry the configured metrics token (compared in constant time)?"""
    expected = ctx(request).settings.metrics_token
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
        secret.strip().encode(), str(expected).encode())


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not _metrics_token_sent(request):
        await require_admin(await current_caller(request))  # 401 or 403 in the problem shape otherwise
    body = await run_in_threadpool(ctx(request).metrics.scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
