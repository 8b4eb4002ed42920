"""What an open tab costs the server while work runs, measured in a real chromium on a real farm.

The issue's promise: pages update from the server's own event stream, and an open tab does not mean
a database query per second per tab. Each tab's requests are counted with Playwright's request
events (the long-lived /events stream and static files aside) while a 400-task job runs.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from tests.browser.conftest import Dash

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WINDOW_S = 6.0


def _counted(url: str) -> bool:
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return not (path.startswith("static/") or path.startswith("events"))


def _legend_count(page: Any, state: str) -> int:
    text = page.text_content("#grid-legend") or ""
    for item in text.split(state + " ")[1:2]:
        digits = "".join(ch for ch in item if ch.isdigit() or ch == " ").split()
        return int(digits[0]) if digits else 0
    return 0


def test_open_tabs_cost_less_than_one_request_per_second_while_a_job_runs(dash: Dash) -> None:
    api = dash.farm.api
    done = dash.submit({"name": "finished", "layers": [{"name": "r", "frames": "1", "args": {
        "command": [sys.executable, "-c", "print('a line of log\\n' * 200)"]}}]})
    dash.wait_api(lambda: api.get(f"/jobs/{done}")["state"] == "succeeded", message="the first job to finish")
    finished_task = api.get(f"/jobs/{done}/tasks")["items"][0]["id"]
    busy = dash.submit({"name": "busy", "layers": [{"name": "render", "frames": "1-400", "retries": 0,
                                                    "args": {"command": ["sleep", "0.25"]}}]})
    dash.wait_api(lambda: api.get(f"/jobs/{busy}")["counts"]["succeeded"] >= 4, message="the busy job to get going")

    requests: dict[str, list[str]] = {}
    tabs: dict[str, Any] = {}
    for name, path in (("job", f"/jobs/{busy}"), ("task", f"/tasks/{finished_task}"), ("jobs", "/jobs"),
                       ("overview", "/")):
        page = dash.page if name == "job" else dash.context.new_page()
        requests[name] = []
        page.on("request", lambda request, name=name: requests[name].append(request.url)
                if _counted(request.url) else None)
        page.goto(dash.url + path)
        page.wait_for_selector("#live-dot.on")
        tabs[name] = page
    job_tab, task_tab, list_tab = tabs["job"], tabs["task"], tabs["jobs"]
    job_tab.wait_for_function("() => document.querySelector('#grid-legend').textContent.includes('succeeded')")
    task_tab.wait_for_function("() => document.querySelector('#log-follow').textContent === 'complete'")
    list_tab.evaluate("window.__sameDocument = true")
    time.sleep(1.5)  # let every tab settle after its first load and its first event

    for urls in requests.values():
        urls.clear()
    before = _legend_count(job_tab, "succeeded")
    row_done = f"tr[data-job='{busy}'] .bar-legend .k-done"
    listed_before = int(list_tab.text_content(row_done) or 0)
    started = time.monotonic()
    job_tab.wait_for_timeout(WINDOW_S * 1000)
    elapsed = time.monotonic() - started
    after = _legend_count(job_tab, "succeeded")
    listed_after = int(list_tab.text_content(row_done) or 0)
    seen = {name: list(urls) for name, urls in requests.items()}

    # the pages followed the running job...
    assert api.get(f"/jobs/{busy}")["state"] == "running"
    assert after > before + 5, f"the task grid did not follow the job ({before} -> {after})"
    assert listed_after > listed_before, "the jobs list did not repaint the job's progress"
    assert list_tab.evaluate("window.__sameDocument") is True
    # ...without a request per second per tab: the grid is patched from events (never reloaded),
    # a finished task's complete log is not read again, the lists repaint from the events' counts
    assert not [u for u in seen["job"] if "/grid" in u], seen["job"]
    assert len(seen["job"]) <= 1, seen["job"]
    assert seen["task"] == [], seen["task"]
    assert len(seen["jobs"]) <= 1, seen["jobs"]
    assert len(seen["overview"]) < elapsed, seen["overview"]  # from the shared summary, no query of its own
