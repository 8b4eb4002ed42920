"""Real-browser fixtures: Debian's chromium driven by Playwright against a real farm.

The browser is `/usr/bin/chromium` (never a Playwright browser download). Tests that need it are
skipped, loudly, when chromium or the playwright package is missing; ./scripts/test.sh installs both.

- `browser` (session): one headless chromium.
- `dash`: a real server (SQLite) with two real agents, plus a fresh logged-in page on it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

CHROMIUM = os.environ.get("THRESHER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000



@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                      headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Dash:
    """A farm plus a logged-in browser page on its dashboard."""

    farm: Any
    page: Any
    context: Any

    @property
    def url(self) -> str:
        return self.farm.server_url

    def goto(self, path: str) -> Any:
        self.page.goto(self.url + path)
        self.page.wait_for_selector("#live-dot.on", timeout=TIMEOUT_MS)  # the event stream is connected
        return self.page

    def submit(self, spec: dict[str, Any]) -> int:
        return int(self.farm.api.post("/jobs", spec)["id"])

    def wait_api(self, predicate: Callable[[], Any], timeout: float = 60, message: str = "") -> Any:
        return self.farm.wait_for(predicate, timeout=timeout, interval=0.1, message=message)


def login(page: Any, url: str, token: str) -> None:
    page.goto(url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def new_page(browser: Any, width: int = 1440, height: int = 900) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme="dark",
                                  bypass_csp=True)  # lets Playwright evaluate its wait expressions
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a native dialog opened: {dialog.type} {dialog.message!r}"))
    return context, page


@pytest.fixture
def dash(browser: Any, make_farm: Callable[..., Any]) -> Iterator[Dash]:
    farm = make_farm()
    farm.start_agent("node-a", cores=2)
    farm.start_agent("node-b", cores=2)
    context, page = new_page(browser)
    login(page, farm.server_url, farm.admin_token)
    try:
        yield Dash(farm, page, context)
    finally:
        context.close()
