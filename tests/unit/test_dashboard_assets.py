"""The dashboard and the API docs ship everything they load: a farm is often offline, no CDN."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from thresher.server.app import create_app
from thresher.server.dashboard import pages
from thresher.server.main import prepare
from thresher.server.settings import ServerSettings

URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*""", re.I)
ALLOWED = {"http://www.w3.org/2000/svg"}  # an XML namespace name, never fetched


def _external(text: str) -> set[str]:
    return {u for u in URL.findall(text) if u not in ALLOWED}


def test_templates_and_static_files_reference_no_external_url() -> None:
    files = [p for p in (pages.WEB / "templates").rglob("*") if p.is_file()] + \
            [p for p in pages.STATIC_DIR.rglob("*") if p.is_file()]
    assert any(p.name == "app.js" for p in files) and any(p.suffix == ".html" for p in files)
    found = {str(p.relative_to(pages.WEB)): _external(p.read_text("utf-8")) for p in files}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_url_check_would_catch_a_cdn() -> None:
    assert _external('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>') == {"https://cdn.jsdelivr.net/npm/x.js"}
    assert _external('<link href="//fonts.googleapis.com/css?family=x">') == {"//fonts.googleapis.com/css?family=x"}
    assert _external('<svg xmlns="http://www.w3.org/2000/svg"><a href="/jobs">x</a></svg>') == set()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    server = prepare(f"sqlite:///{tmp_path / 'docs.db'}", tmp_path / "data", ServerSettings(public_api_docs=True))
    yield TestClient(create_app(server))  # no lifespan: no broadcaster needed here
    server.db.dispose()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_only_from_the_server(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and "cdn." not in page.text
    assert _external(page.text) == set(), _external(page.text)
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 100, asset
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_api_docs_are_behind_login_unless_opened(tmp_path: Path) -> None:
    server = prepare(f"sqlite:///{tmp_path / 'closed.db'}", tmp_path / "data")
    try:
        client = TestClient(create_app(server))
        token = (tmp_path / "data" / "admin.token").read_text().strip()
        for path in ("/docs", "/redoc"):
            page = client.get(path, follow_redirects=False)
            assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
            assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers={"Authorization": "Bearer thr_admin_forged"}).status_code == 401
        assert client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()["openapi"]
    finally:
        server.db.dispose()


def test_swagger_ui_reads_openapi_3_1(client: TestClient) -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI reads from version 5 on."""
    bundle = client.get("/docs-static/swagger-ui-bundle.js").text
    versions = [tuple(int(x) for x in v.split(".")) for v in re.findall(r'"(5\.\d+\.\d+)"', bundle)]
    assert versions and max(versions) >= (5, 0, 0)
