"""The wrangler's daily dashboard, in a real chromium against a real farm with no running agents (an agent
is played over the API): a node removed from its page (and the refusal while it is up), only the job
actions that do something, plural wording, the jobs list filtered by sequence and shot, keyboard
shortcuts and the light / dark theme."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser.conftest import csp_violations, login, new_page
from tests.browser.test_dashboard_pages import _confirm

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _layer(frames: str = "1", **more: Any) -> dict[str, Any]:
    return {"name": "render", "frames": frames, "args": {"command": ["true"]}, **more}


def _submit(api: Any, name: str, **more: Any) -> int:
    return int(api.post("/jobs", {"name": name, "project": "default", "layers": [_layer()], **more})["id"])


def test_remove_a_node_and_only_the_actions_that_do_something(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    api = farm.api
    failing = int(api.post("/jobs", {"name": "fails", "project": "default",
                                     "layers": [_layer(retries=0)]})["id"])
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1,
                                                                         "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed", "exit_code": 1,
                                              "log_size": 0}]})
    farm.wait_for(lambda: api.get(f"/jobs/{failing}")["state"] == "failed")
    queued = _submit(api, "waits")
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)

        # a failed job with nothing left to run: retry (and its priority for then), but no kill, pause or urgent
        page.goto(f"{farm.server_url}/jobs/{failing}")
        page.wait_for_selector("#live-dot.on")
        page.locator("#retry-job").wait_for()
        for gone in ("#kill-job", "#pause-job", "#resume-job", "#urgent-job"):
            assert page.locator(gone).count() == 0, gone
        _confirm(page, page.locator("#retry-job"), f"Retry the 1 failed and killed task of job {failing}?")
        page.locator(".toast", has_text=f"Job {failing}: tasks requeued").wait_for()
        page.locator("#kill-job").wait_for()  # requeued: now there is something to kill
        # a queued job: pause and kill, nothing to retry or resume
        page.goto(f"{farm.server_url}/jobs/{queued}")
        page.locator("#kill-job").wait_for()
        assert page.locator("#pause-job").count() == 1 and page.locator("#retry-job").count() == 0
        assert page.locator("#resume-job").count() == 0

        # a node that is up cannot be removed: the page says why; once down, it is removed
        page.goto(f"{farm.server_url}/nodes/n1")
        page.locator("#remove-node").wait_for()
        assert page.locator("#remove-node").is_disabled()
        assert "only a node that is down can be removed" in page.text_content("#remove-why")
        agent.post("/agent/goodbye")
        page.locator(".page-head .badge.s-down").wait_for()
        page.locator("#remove-node:not([disabled])").wait_for()
        _confirm(page, page.locator("#remove-node"), "Remove node n1 from the farm?", cancel_first=True)
        page.wait_for_url(f"{farm.server_url}/nodes")
        assert [n["name"] for n in api.get("/nodes")["items"]] == []
        assert page.locator('a[href="/nodes/n1"]').count() == 0

        # the jobs list asks about "1 job", not "1 job(s)"
        page.goto(f"{farm.server_url}/jobs")
        page.wait_for_selector("#live-dot.on")
        page.check(f'input.pick[value="{queued}"]')
        page.click("#bulk [data-bulk=kill]")
        assert "Kill 1 job?" in page.text_content("#confirm-text")
        page.click("#confirm button[value=cancel]")
        assert csp_violations(page) == []
    finally:
        context.close()


def test_sequence_and_shot_filters_keyboard_shortcuts_and_the_theme(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    api = farm.api
    a = _submit(api, "sq010 sh010", sequence="sq010", shot="sh010")
    b = _submit(api, "sq010 sh020", sequence="sq010", shot="sh020")
    c = _submit(api, "sq020 sh010", sequence="sq020", shot="sh010")
    assert [j["id"] for j in api.get("/jobs", sequence="sq010", sort="id")["items"]] == [a, b]
    assert [j["id"] for j in api.get("/jobs", shot="sh010", sort="id")["items"]] == [a, c]
    assert [j["id"] for j in api.get("/jobs", sequence="sq020", shot="sh010")["items"]] == [c]
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(f"{farm.server_url}/jobs?shot=sh010")
        page.wait_for_selector("#live-dot.on")
        shown = lambda: [int(r.get_attribute("data-job")) for r in page.locator("tr[data-job]").all()]  # noqa: E731
        assert sorted(shown()) == [a, c] and page.input_value('input[name="shot"]') == "sh010"
        page.locator(f'tr[data-job="{c}"] .shot-of a', has_text="sq020").click()  # a job's sequence: only it
        page.wait_for_url("**/jobs?*sequence=sq020*")
        assert shown() == [c] and "shot=" not in page.url
        page.goto(f"{farm.server_url}/jobs?sequence=sq010")
        page.wait_for_selector("#live-dot.on")
        assert sorted(shown()) == [a, b]

        # keys: ? lists them; j moves to the first job, x selects it, p pauses it
        page.keyboard.press("?")
        page.locator("#keys[open]").wait_for()
        assert "pause, resume, kill the selected jobs" in page.text_content("#keys")
        page.click("#keys-close")
        page.wait_for_function("() => !document.querySelector('#keys').open")
        page.keyboard.press("j")
        first = shown()[0]
        assert page.locator(f'tr[data-job="{first}"].current').count() == 1
        page.keyboard.press("j")
        second = shown()[1]
        assert page.locator(f'tr[data-job="{second}"].current').count() == 1
        page.keyboard.press("x")
        assert page.is_checked(f'input.pick[value="{second}"]') and page.is_visible("#bulk")
        page.keyboard.press("p")
        page.locator(".toast", has_text="pause: 1 job done").wait_for()
        assert api.get(f"/jobs/{second}")["paused"] is True and api.get(f"/jobs/{first}")["paused"] is False
        page.keyboard.press("Shift+K")  # kill asks first; no answer, nothing killed
        assert "Kill 1 job?" in page.text_content("#confirm-text")
        page.click("#confirm button[value=cancel]")
        assert api.get(f"/jobs/{second}")["state"] != "killed"
        page.fill('.filters input[name="name"]', "")
        page.keyboard.press("Escape")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.name") == "name"  # typing there is not a shortcut
        page.keyboard.type("jxp")
        assert api.get(f"/jobs/{first}")["paused"] is False
        page.keyboard.press("Escape")

        # the theme: t (or the button) switches auto -> light -> dark, kept across pages
        assert page.evaluate("document.documentElement.dataset.theme") is None
        bg = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
        dark_bg = bg()
        page.keyboard.press("t")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert bg() != dark_bg and page.text_content("#theme") == "Theme: light"
        page.goto(f"{farm.server_url}/nodes")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        page.click("#theme")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark" and bg() == dark_bg
        page.keyboard.press("g")
        page.keyboard.press("j")
        page.wait_for_url(f"{farm.server_url}/jobs")

        # a narrow screen: a long name wraps, but not a character a line
        api.post("/jobs", {"name": "sq010_sh010_lighting_beauty_v003_final", "project": "default",
                           "layers": [_layer()]})
        page.set_viewport_size({"width": 420, "height": 800})
        page.goto(f"{farm.server_url}/jobs")
        page.wait_for_selector("#live-dot.on")
        # measured in one go on the row as it is drawn: the live redraw may replace it between two calls
        width, char = page.wait_for_function("""() => {
            const td = [...document.querySelectorAll('td.name')].find(t => t.textContent.includes('sq010_sh010_lighting'));
            const width = td ? td.getBoundingClientRect().width : 0;
            const char = td ? parseFloat(getComputedStyle(td).fontSize) : 0;
            return width > 0 && char > 0 ? [width, char] : null;
        }""").json_value()
        assert width >= 8 * char, (width, char)
        assert csp_violations(page) == []
    finally:
        context.close()
