"""The API documentation pages (`/docs`: Swagger UI, `/redoc`: ReDoc), served without a CDN.

FastAPI's default pages load Swagger UI and ReDoc from cdn.jsdelivr.net, which a farm behind a
firewall cannot reach. The same assets ship in the `fastapi-offline` package (Swagger UI 5, which
reads the OpenAPI 3.1 documents FastAPI writes; the `swagger-ui-bundle` package stops at 4.x and
cannot). We only borrow its static folder and render FastAPI's own `get_swagger_ui_html` /
`get_redoc_html` with local URLs, so the pages work offline.

They are behind login (a dashboard session or a bearer token) unless the server's `public_api_docs`
opens them: the document lists every call a farm answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_STATIC = "/docs-static"
OPENAPI_URL = "/openapi.json"

Guard = Callable[[Request], Awaitable[bool]]
"""Whether a request may read the API's documentation (a session, a token, or `public_api_docs`)."""


async def _open(_request: Request) -> bool:
    return True


def _login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path, safe='')}", status_code=303)


def assets_dir() -> Path:
    """Where the Swagger UI / ReDoc bundles are installed."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def mount_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc", allowed: Guard = _open) -> None:
    """Add `/docs`, `/redoc` and `/openapi.json` to an app created with `docs_url=None, redoc_url=None,
    openapi_url=None`; `allowed` says who may read them (the pages send others to the login form, the
    document answers 401)."""
    app.mount(DOCS_STATIC, StaticFiles(directory=str(assets_dir())), name="docs-static")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document(request: Request) -> Response:
        if not await allowed(request):
            return JSONResponse({"detail": "log in (or send a token) to read the API document", "errors": []},
                                status_code=401)
        return JSONResponse(app.openapi())

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        if not await allowed(request):
            return _login(request)
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{OPENAPI_URL}", title=f"{app.title} API",
                                   oauth2_redirect_url=f"{root}{oauth2_redirect}",
                                   swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/static/favicon.svg",
                                   swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> Response:
        if not await allowed(request):
            return _login(request)
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{OPENAPI_URL}", title=f"{app.title} API",
                              redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}/static/favicon.svg", with_google_fonts=False)
