"""Page actions that ask first, previews that say why they are missing, and the API docs offline,
in a real chromium against a real farm. Every wait is for a condition in the page or the API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import Dash, csp_violations, login, new_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _confirm(page: Any, button: Any, expect: str, *, cancel_first: bool = False) -> None:
    """Click an action that asks first; check the question; optionally say no once, then yes."""
    if cancel_first:
        button.click()
        assert expect in page.text_content("#confirm-text")
        page.click("#confirm button[value=cancel]")
        page.wait_for_function("() => !document.querySelector('#confirm').open")
    button.click()
    assert expect in page.text_content("#confirm-text")
    page.click("#confirm-ok")


def test_node_task_and_job_actions_ask_first_and_act(dash: Dash, tmp_path: Path) -> None:
    api = dash.farm.api
    api.post("/nodes/node-b/disable")  # all work on node-a (2 cores): states stay predictable
    gate = tmp_path / "gate"
    code = f"import os,time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"
    job_id = dash.submit({"name": "steer", "layers": [{"name": "render", "frames": "1-3", "retries": 0,
                                                       "args": {"command": [sys.executable, "-c", code, "{frame}"]}}]})
    dash.wait_api(lambda: api.get(f"/jobs/{job_id}")["counts"]["running"] == 2, message="two tasks to run")
    tasks = {t["frames"]: t for t in api.get(f"/jobs/{job_id}/tasks")["items"]}
    running, ready = tasks["1"]["id"], tasks["3"]["id"]
    assert tasks["3"]["state"] == "ready"

    # drain the node from its page: a "no" changes nothing, a "yes" drains it
    page = dash.goto("/nodes/node-a")
    _confirm(page, page.locator(".page-head button", has_text="Drain"), "Drain node node-a?", cancel_first=True)
    page.locator(".page-head .badge.s-draining").wait_for()
    assert api.get("/nodes/node-a")["admin_state"] == "draining"

    # skip the waiting task, kill a running one
    page = dash.goto(f"/tasks/{ready}")
    _confirm(page, page.locator(".page-head button", has_text="Skip"), f"Mark task {ready} (frames 3) as done")
    page.locator(".page-head .badge.s-skipped").wait_for()
    page = dash.goto(f"/tasks/{running}")
    _confirm(page, page.locator(".page-head button", has_text="Kill"), f"Kill task {running}?", cancel_first=True)
    page.locator(".page-head .badge.s-killed").wait_for()
    dash.wait_api(lambda: api.get(f"/tasks/{running}")["state"] == "killed", message="the task to be killed")

    # job page: retry what failed or was killed; pause and resume (not destructive: no question)
    page = dash.goto(f"/jobs/{job_id}")
    _confirm(page, page.locator(".page-head button", has_text="Retry failed"),
             f"Retry the 1 failed and killed task of job {job_id}?")
    page.locator(".toast", has_text=f"Job {job_id}: tasks requeued").wait_for()
    dash.wait_api(lambda: api.get(f"/tasks/{running}")["state"] == "ready", message="the killed task to be requeued")
    page.locator(".page-head button", has_text="Pause").click()
    page.locator(".toast", has_text=f"Job {job_id} paused").wait_for()
    assert api.get(f"/jobs/{job_id}")["paused"] is True  # its running task goes on; nothing new starts
    page.locator(".page-head button", has_text="Resume").click()
    page.locator(".toast", has_text=f"Job {job_id} resumed").wait_for()
    page.locator(".page-head button", has_text="Pause").wait_for()
    assert api.get(f"/jobs/{job_id}")["paused"] is False

    # mark it urgent (a question first: it goes ahead of fair share), then not
    _confirm(page, page.locator("#urgent-job"), f"Mark job {job_id} urgent?")
    page.locator(".toast", has_text=f"Job {job_id} marked urgent").wait_for()
    assert api.get(f"/jobs/{job_id}")["urgent"] is True
    page.locator("#urgent-job", has_text="Not urgent").click()
    page.locator(".toast", has_text=f"Job {job_id} is no longer urgent").wait_for()
    assert api.get(f"/jobs/{job_id}")["urgent"] is False

    # retry the skipped task from its page: it runs again
    page = dash.goto(f"/tasks/{ready}")
    _confirm(page, page.locator(".page-head button", has_text="Retry"), f"Run task {ready} (frames 3) again?")
    page.locator(".page-head .badge.s-ready").wait_for()

    # resume the node: the requeued tasks run, and the job finishes
    page = dash.goto("/nodes/node-a")
    page.locator(".page-head button", has_text="Enable").click()
    page.locator(".page-head .badge.s-busy").wait_for()
    gate.write_text("go")
    dash.wait_api(lambda: api.get(f"/jobs/{job_id}")["state"] == "succeeded", message="the job to finish")


def test_a_preview_the_server_cannot_make_says_why(browser: Any, make_farm: Any, tmp_path: Path) -> None:
    """A server without the EXR reader: the job page shows its reason, not "no preview yet"."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "OpenEXR.py").write_text("raise ImportError('OpenEXR is hidden by this test')\n")
    farm = make_farm(env={"PYTHONPATH": str(shim)})
    farm.start_agent("exr-node", cores=2)
    out = tmp_path / "out"
    out.mkdir()
    code = f"import sys; open({str(out)!r} + '/img.%04d.exr' % int(sys.argv[1]), 'wb').write(b'v/1')"
    job_id = farm.api.post("/jobs", {"name": "exr", "layers": [{"name": "r", "frames": "1", "args": {
        "command": [sys.executable, "-c", code, "{frame}"], "outputs": [str(out / "img.####.exr")]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", timeout=60, message="the job")
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(f"{farm.server_url}/jobs/{job_id}")
        note = page.locator(".thumb .nopreview.bad")
        note.wait_for()
        assert note.text_content().startswith("cannot preview EXR: the server has no EXR reader")
        assert csp_violations(page) == []
    finally:
        context.close()


def test_api_docs_render_offline_and_try_calls_with_a_token(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    context, page = new_page(browser)
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(farm.server_url) else None)
    try:
        page.goto(farm.server_url + "/docs")
        assert "/login" in page.url  # behind login (public_api_docs is off)
        login(page, farm.server_url, farm.admin_token)
        page.goto(farm.server_url + "/docs")
        page.locator(".opblock-summary-path", has_text="/api/v1/jobs").first.wait_for()
        assert "OAS 3.1" in page.text_content("h2.title, .info .title")
        # Authorize with a token, then "Try it out": the call carries the bearer token and is answered.
        page.click("button.authorize")
        page.fill("div.modal-ux input", farm.admin_token)
        page.click("div.modal-ux button.authorize")
        page.click("div.modal-ux button.close-modal")
        operation = page.locator("#operations-nodes-list_nodes")
        operation.locator("button.opblock-summary-control").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody td.response-col_status").first
        status.wait_for()
        assert status.inner_text().strip() == "200"
        body = operation.locator(".live-responses-table tbody .response-col_description").first.inner_text()
        assert '"total": 0' in body
        assert elsewhere == []
    finally:
        context.close()


def test_projects_page_draws_its_chart(browser: Any, make_farm: Any) -> None:
    farm = make_farm(env={"THRESHER_SERVER_USAGE_SAMPLE_S": "0.2"})
    farm.api.post("/projects", {"name": "show", "weight": 2, "max_cores": 12})
    farm.api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": 4, "max_cores": 8})
    farm.wait_for(lambda: farm.api.get("/projects/show/usage")["series"][0]["points"], timeout=20)
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(farm.server_url + "/projects")
        chart = page.locator('[data-project="show"] svg.usage-chart')
        chart.wait_for()
        assert chart.bounding_box()["width"] > 300
        assert chart.locator("polyline.run").get_attribute("points")
        assert chart.locator("line.guarantee").count() == 1 and chart.locator("line.cap").count() == 1
        page.click("nav a[href='/projects']")
        assert page.locator("nav a[aria-current=page]").inner_text() == "Projects"
        assert csp_violations(page) == []
    finally:
        context.close()


def test_projects_and_limits_are_added_and_changed_on_the_projects_page(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(farm.server_url + "/projects")
        add = page.locator("form[aria-label='add a project']")
        add.locator("input[name=name]").fill("comms")
        add.locator("input[name=weight]").fill("3")
        add.locator("button[type=submit]").click()
        farm.wait_for(lambda: any(p["name"] == "comms" for p in farm.api.get("/projects")["items"]), timeout=30)
        change = page.locator("form[aria-label='change project comms']")
        change.wait_for()
        change.locator("input[name=max_cores]").fill("12")
        change.locator("button[type=submit]").click()
        farm.wait_for(lambda: farm.api.get("/projects/comms")["max_cores"] == 12, timeout=30)
        assert farm.api.get("/projects/comms")["weight"] == 3
        page.wait_for_timeout(300)
        change.locator("input[name=max_cores]").fill("")  # an empty cap is no cap
        change.locator("button[type=submit]").click()
        farm.wait_for(lambda: farm.api.get("/projects/comms")["max_cores"] is None, timeout=30)

        limit = page.locator("form[aria-label='add a licence limit']")
        limit.locator("input[name=name]").fill("nuke")
        limit.locator("input[name=max_total]").fill("20")
        limit.locator("button[type=submit]").click()
        edit = page.locator("form[aria-label='change limit nuke']")
        edit.wait_for()
        limit.locator("input[name=name]").fill("nuke")  # taken: refused, and the toast says why
        limit.locator("input[name=max_total]").fill("3")
        limit.locator("button[type=submit]").click()
        page.locator(".toast.bad", has_text="409").first.wait_for()
        edit.locator("input[name=max_total]").fill("15")
        edit.locator("button[type=submit]").click()
        farm.wait_for(lambda: [lim["max_total"] for lim in farm.api.get("/limits")["items"]] == [15], timeout=30)
        assert csp_violations(page) == []
    finally:
        context.close()
