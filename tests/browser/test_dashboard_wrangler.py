"""The dashboard a wrangler lives in, in a real chromium against a real farm with no running agents (an
agent is played over the API, so every state is predictable): layer actions, a selection on the task
grid acted on, a job cloned with changes, a node's tags edited, and a log searched and downloaded."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.browser.conftest import csp_violations, login, new_page
from tests.browser.test_dashboard_pages import _confirm

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _cell_centre(page: Any, k: int) -> tuple[float, float]:
    """Where the k-th cell of the first layer is on the page (the grid's own layout for a few tasks: 18 px
    cells, 2 px gaps, under a 20 px label when the job has several layers)."""
    page.locator("#task-grid").scroll_into_view_if_needed()
    box = page.locator("#task-grid").bounding_box()
    return box["x"] + 9 + 20 * k, box["y"] + 20 + 9


def test_layers_grid_selection_clone_node_tags_and_log_search(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    api = farm.api
    job = api.post("/jobs", {"name": "wrangle", "project": "default", "layers": [
        {"name": "render", "frames": "1-6", "args": {"command": ["echo", "{frame}"]}},
        {"name": "comp", "frames": "1-2", "args": {"command": ["true"]}}]})
    job_id = job["id"]
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(f"{farm.server_url}/jobs/{job_id}")
        page.wait_for_selector("#live-dot.on")

        # layer actions: pause and resume one layer; kill another (asks first)
        row = page.locator('[data-layer-actions="comp"]')
        row.locator("button", has_text="Pause").click()
        page.locator(".toast", has_text="Layer comp paused").wait_for()
        farm.wait_for(lambda: api.get(f"/jobs/{job_id}")["layers"][1]["counts"].get("paused") == 2)
        page.locator('[data-layer-actions="comp"] button', has_text="Resume").click()
        page.locator(".toast", has_text="Layer comp resumed").wait_for()
        _confirm(page, page.locator('[data-layer-actions="comp"] button', has_text="Kill"),
                 "Kill the 2 unfinished tasks of layer comp?")
        page.locator(".toast", has_text="Layer comp killed").wait_for()
        assert api.get(f"/jobs/{job_id}")["layers"][1]["counts"].get("killed") == 2
        page.locator('[data-layer-actions="comp"] button', has_text="Retry failed").wait_for()

        # the grid: drag across three cells of render, then Shift-click a fourth; skip them
        page.locator("#task-grid").wait_for()
        page.wait_for_function("() => document.querySelector('#task-grid').style.height !== ''")  # drawn
        x0, y0 = _cell_centre(page, 0)
        x2, _ = _cell_centre(page, 2)
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x2, y0, steps=4)
        page.mouse.up()
        page.locator("#grid-count", has_text="3 selected").wait_for()
        x4, _ = _cell_centre(page, 4)
        page.keyboard.down("Shift")
        page.mouse.click(x4, y0)
        page.keyboard.up("Shift")
        page.locator("#grid-count", has_text="5 selected").wait_for()
        _confirm(page, page.locator("[data-grid-act=skip]"), "Mark the 5 selected tasks done")
        page.locator(".toast", has_text="skip: 5 tasks done").wait_for()
        states = [t["state"] for t in api.get(f"/jobs/{job_id}/tasks", layer="render")["items"]]
        assert states == ["skipped"] * 5 + ["ready"]
        assert page.locator("#grid-select").is_hidden()

        # clone with changes: new name, priority and frames
        page.locator("#clone summary").click()
        page.locator('#clone-layers input[aria-label="render frames"]').wait_for()
        page.fill("#clone-name", "wrangle v2")
        page.fill("#clone-priority", "70")
        page.fill('#clone-layers input[aria-label="render frames"]', "1-3")
        page.fill('#clone-layers input[aria-label="render chunk"]', "3")
        page.click("#clone-submit")
        link = page.locator("#clone-link")
        link.wait_for()
        clone_id = int(link.get_attribute("href").rsplit("/", 1)[1])
        clone = api.get(f"/jobs/{clone_id}")
        assert clone["name"] == "wrangle v2" and clone["priority"] == 70 and clone_id != job_id
        assert (clone["layers"][0]["frames"], clone["layers"][0]["chunk"], clone["layers"][0]["total_tasks"]) == \
            ("1-3", 3, 1)

        # a node played over the API runs one task with a log; its tags are edited on its page
        node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1,
                                                                             "memory_mb": 2048})
        agent = farm.client(token=node["token"])
        page.goto(f"{farm.server_url}/nodes/n1")
        page.fill("#node-tags input[name=tags]", "gpu, big")
        page.click("#node-tags button[type=submit]")
        page.locator(".toast", has_text="Tags of n1 changed").wait_for()
        assert api.get("/nodes/n1")["tags"] == ["big", "gpu"]

        (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
        log = "".join(f"line {i}: {'ERROR disk' if i in (3, 7) else 'ok'}\n" for i in range(10))
        agent.post(f"/agent/attempts/{a['attempt_id']}/log", {"offset": 0, "data": log})
        agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "succeeded",
                                                  "exit_code": 0, "log_size": len(log)}]})
        page.goto(f"{farm.server_url}/tasks/{a['task_id']}")
        page.locator("#log", has_text="line 9").wait_for()
        page.locator("[data-command]", has_text="echo").wait_for()
        page.fill("#log-search", "error")
        page.locator("#log-matches", has_text="1 of 2").wait_for()
        assert page.locator("#log mark").count() == 2
        page.press("#log-search", "Enter")
        page.locator("#log-matches", has_text="2 of 2").wait_for()
        page.uncheck("#log-wrap")
        assert "nowrap" in (page.get_attribute("#log", "class") or "")
        page.check("#log-times")  # a time column: when each line arrived (one chunk here: one time for all)
        page.wait_for_function("() => document.querySelectorAll('#log .log-time').length === 10")
        stamps = page.locator("#log .log-time").all_text_contents()
        assert len(set(stamps)) == 1 and re.fullmatch(r"\d\d:\d\d:\d\d", stamps[0]), stamps
        assert page.locator("#log mark").count() == 2  # the search still marks its matches
        with page.expect_download() as got:
            page.click("#log-download")
        path = got.value.path()
        assert got.value.suggested_filename == f"task-{a['task_id']}-attempt-1.log"
        assert open(path, encoding="utf-8").read() == log
        assert csp_violations(page) == []
    finally:
        context.close()
