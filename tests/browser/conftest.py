"""Real-browser fixtures: Debian's chromium driven by Playwright against a real farm.

The browser is `/usr/bin/chromium` (never a Playwright browser download). Tests that need it fail,
never skip, when chromium or the playwright package is missing: ./scripts/test.sh installs both.
Pages run under the dashboard's real Content-Security-Policy (no `bypass_csp`).

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
        pytest.fail("the playwright package is not installed (./scripts/setup.sh, or pip install -e '.[test]')",
                    pytrace=False)
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail(f"no chromium at {CHROMIUM} (./scripts/setup.sh, or apt-get install chromium)", pytrace=False)
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
    page.click("#token-login button")
    page.wait_for_url(url + "/")


def new_page(browser: Any, width: int = 1440, height: int = 900) -> tuple[Any, Any]:
    """A fresh browser context and page under the pages' own Content-Security-Policy. Whatever the
    policy blocks is reported on the console; `csp_violations(page)` lists it."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme="dark")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a native dialog opened: {dialog.type} {dialog.message!r}"))
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.csp_blocked = blocked
    return context, page


def csp_violations(page: Any) -> list[str]:
    return list(getattr(page, "csp_blocked", []))


@pytest.fixture
def dash(browser: Any, make_farm: Callable[..., Any]) -> Iterator[Dash]:
    farm = make_farm()
    farm.start_agent("node-a", cores=2)
    farm.start_agent("node-b", cores=2)
    context, page = new_page(browser)
    login(page, farm.server_url, farm.admin_token)
    try:
        yield Dash(farm, page, context)
        assert csp_violations(page) == [], "the Content-Security-Policy blocked something the page needs"
    finally:
        context.close()
