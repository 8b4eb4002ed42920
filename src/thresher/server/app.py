"""The FastAPI application: routes, error shapes, and the start of the background loops (server/housekeeping.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from thresher import __version__
from thresher.server import housekeeping, permits
from thresher.server.api import agents, blocklist, dependencies, meta, people, retention, services, studio, wrangler
from thresher.server.api import audit as audit_route
from thresher.server.api import enrollment as enrollment_route
from thresher.server.api import metrics as metrics_route
from thresher.server.api import sessions as sessions_route
from thresher.server.api import users as people_users
from thresher.server.audit import AuditLog
from thresher.server.body_limit import BodyLimit
from thresher.server.context import ServerContext
from thresher.server.dashboard import pages as dashboard
from thresher.server.dashboard.docs import mount_docs
from thresher.server.dashboard.session import COOKIE
from thresher.server.errors import ApiProblem, database_value_problem
from thresher.server.metrics import RequestTimer

log = logging.getLogger("thresher.server")
API_PREFIX = "/api/v1"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":  # its loc is ("body", <character position>), not a field
            position = error.get("loc", ("body", "?"))[-1]
            reason = (error.get("ctx") or {}).get("error", "cannot be decoded")
            out.append({"field": "(body)", "message": f"invalid JSON at character {position}: {reason}"})
            continue
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")]
        message = str(error.get("msg", "invalid"))
        out.append({"field": _sendable(".".join(loc) or "(body)"),
                    "message": _sendable(message.removeprefix("Value error, "))})
    return out


def _sendable(text: str) -> str:
    """Text the JSON answer can carry: a lone surrogate (from a refused key) written as its escape."""
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


# The bearer scheme of the OpenAPI document: /docs shows an Authorize button, and "Try it out" sends
# the token. Tokens are still checked by the routes' own dependencies (server/context.py).
SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer",
                               "description": "a person's, enroll or node token (`thr_<kind>_...`)"}}


def _set_up_openapi(app: FastAPI, schemas: dict[str, Any]) -> None:
    """Finish the OpenAPI document FastAPI writes: the schemas that routes refer to by hand, the bearer
    scheme (every call needs it unless its operation says `security: []`), and no trace of FastAPI's own
    validation error shape, which this server never sends (see `_invalid`: it answers `Problem`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(schemas)
            components["securitySchemes"] = SECURITY_SCHEMES
            document["security"] = [{"bearer": []}]
            text = json.dumps(document["paths"])
            for unused in ("HTTPValidationError", "ValidationError"):
                if f"#/components/schemas/{unused}" not in text:
                    components["schemas"].pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(server: ServerContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.notifier.bind(asyncio.get_running_loop())
        await run_in_threadpool(server.start_peers)
        task = asyncio.create_task(housekeeping.liveness_loop(server))
        news = asyncio.create_task(housekeeping.news_loop(server))
        history = asyncio.create_task(housekeeping.usage_history_loop(server))
        kept = asyncio.create_task(housekeeping.retention_loop(server))
        broadcaster = asyncio.create_task(server.events.run(server))
        yield
        task.cancel()
        news.cancel()
        history.cancel()
        kept.cancel()
        broadcaster.cancel()
        await run_in_threadpool(server.stop_peers)
        server.events.close()
        server.batcher.close()
        server.settle_checker.close()
        server.refresher.close()
        server.audit.close()  # what waits in the audit buffer is written

    app = FastAPI(title="Thresher", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,  # served by mount_docs, behind login
                  description="Render farm manager API. Every call needs `Authorization: Bearer <token>`.")
    app.state.ctx = server

    # Every error answer has the shape of `thresher.wire.common.Problem`: {"detail", "errors": [{field, message}]}.
    @app.exception_handler(ApiProblem)
    async def _problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "errors": exc.errors, **exc.extra}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid request", "errors": _validation_errors(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not UTF-8 (rule 4)
            return JSONResponse({"detail": "invalid request", "errors": [
                {"field": "(body)", "message": "the body is not JSON text: it must be UTF-8"}]}, status_code=422)
        return JSONResponse({"detail": str(exc.detail), "errors": []}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}", "errors": []}, status_code=500)

    async def _database_value(request: Request, exc: Exception) -> JSONResponse:
        """Last line: a value the routes did not check and the database refused is still the caller's
        mistake (422), when the error can only mean that; anything else stays a 500."""
        problem = database_value_problem(exc)
        if problem is None:
            log.error("unexpected error", exc_info=exc)
            return JSONResponse({"detail": f"internal error: {type(exc).__name__}", "errors": []}, status_code=500)
        log.warning("%s %s: refused a value the database cannot hold: %s", request.method, request.url.path,
                    str(exc).splitlines()[0])
        return await _problem(request, problem)

    app.add_exception_handler(DataError, _database_value)
    app.add_exception_handler(OverflowError, _database_value)

    # Agents first: their calls are most of the traffic, and routes are matched in order.
    for router in (agents.router, meta.router, people.router, studio.router, services.router, blocklist.router,
                   dependencies.router, wrangler.router, retention.router, people_users.router,
                   audit_route.router, sessions_route.router, enrollment_route.router):
        permits.mark(router)  # each operation's permission as `x-permission` (server/permits.py)
        app.include_router(router, prefix=API_PREFIX)
    _set_up_openapi(app, people.openapi_components())
    app.include_router(metrics_route.router)  # GET /metrics for Prometheus (server/metrics.py)
    app.add_middleware(RequestTimer, metrics=server.metrics)  # request durations, by route template
    app.include_router(dashboard.router)  # the web dashboard at / (server/dashboard/pages.py)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    mount_docs(app, allowed=lambda request: _docs_allowed(server, request))  # /docs, /redoc: no CDN (dashboard/docs.py)
    app.add_middleware(BodyLimit, default=server.settings.max_body_bytes, limits={  # server/body_limit.py
        ("POST", f"{API_PREFIX}/jobs"): (server.settings.max_submit_body_bytes, "max_submit_body_bytes")})
    app.add_middleware(AuditLog, recorder=server.audit,  # every state-changing call (server/audit.py)
                       proxies=server.settings.trusted_networks)
    return app


async def _docs_allowed(server: ServerContext, request: Request) -> bool:
    """The API's documentation: for a dashboard session or any valid token, unless `public_api_docs`."""
    if server.settings.public_api_docs:
        return True
    if COOKIE in request.cookies:
        if await run_in_threadpool(server.sessions.check, server.db, request.cookies.get(COOKIE)) is not None:
            return True
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return False
    return await run_in_threadpool(server.caller_for, secret.strip()) is not None
