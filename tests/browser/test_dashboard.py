"""The dashboard in a real chromium, against a real server with real agents running real processes.

Every wait is for a condition in the page or in the API; nothing is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.browser.conftest import Dash, login, new_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _py_job(name: str, code: str, frames: str = "1", chunk: int = 1, **layer: Any) -> dict[str, Any]:
    return {"name": name, "project": "browser", "layers": [{
        "name": "render", "frames": frames, "chunk": chunk, "retries": 0,
        "args": {"command": [sys.executable, "-c", code, "{frame}"], **layer.pop("args", {})}, **layer}]}


def test_nothing_is_visible_without_logging_in(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    context, page = new_page(browser)
    try:
        page.goto(farm.server_url + "/jobs?state=failed")
        assert "/login" in page.url
        page.fill("#token", "thr_admin_not-a-real-token")
        page.click("#token-login button")
        assert "not a valid admin token" in page.text_content("[role=alert]")
        page.fill("#token", farm.enroll_token)  # a real token, but not an admin one
        page.click("#token-login button")
        assert "not a valid admin token" in page.text_content("[role=alert]")
        page.fill("#token", farm.admin_token)
        page.click("#token-login button")
        page.wait_for_url(farm.server_url + "/jobs?state=failed")  # back where we wanted to go
        page.click("header form button")  # log out
        page.wait_for_url(farm.server_url + "/login")
        page.goto(farm.server_url + "/")
        assert "/login" in page.url
        # a user name and password (the same check as the API's login), then logging out ends the session
        farm.api.post("/users", {"name": "bea", "role": "wrangler", "password": "bea-password"})
        page.fill("#user", "bea")
        page.fill("#password", "not-her-password")
        page.click("#password-login button")
        page.wait_for_selector("text=Wrong user name or password")
        page.fill("#password", "bea-password")
        page.click("#password-login button")
        page.wait_for_url(farm.server_url + "/")
        assert page.text_content("header .who").split() == ["bea", "wrangler"]
        page.click("#logout-everywhere button")
        page.wait_for_url(farm.server_url + "/login")
        sessions = farm.api.get("/users/bea/sessions")["items"]
        assert [s["end_reason"] for s in sessions] == ["everywhere"]
    finally:
        context.close()


def test_submitted_job_progresses_to_done_without_reloading(dash: Dash, tmp_path: Path) -> None:
    page = dash.goto("/jobs")
    page.evaluate("window.__sameDocument = true")
    job_id = dash.submit(_py_job("live progress", "import time; time.sleep(0.4); print('ok')", frames="1-6"))
    row = page.locator(f"tr[data-job='{job_id}']")
    row.wait_for()
    row.locator(".badge.s-succeeded").wait_for()
    assert row.locator(".bar-legend .k-done").text_content() == "6"
    assert page.evaluate("window.__sameDocument") is True

    # a second job, watched from its own page: badge and task grid follow without a reload
    gate = tmp_path / "gate"
    code = f"import os,time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"
    second = dash.submit(_py_job("second", code, frames="1-4"))
    page.click(f"a[href='/jobs/{second}']")
    page.wait_for_url(f"**/jobs/{second}")
    page.wait_for_selector("#live-dot.on")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_function("() => document.querySelector('#grid-legend').textContent.includes('running 4')")
    page.locator(".page-head .badge.s-running").wait_for()
    gate.write_text("go")
    page.locator(".page-head .badge.s-succeeded").wait_for()
    page.wait_for_function("() => document.querySelector('#grid-legend').textContent.includes('succeeded 4')")
    assert page.locator(".job-progress .k-done").text_content() == "4"
    assert page.evaluate("window.__sameDocument") is True


def test_kill_a_running_job_from_its_page_stops_it_on_the_agent(dash: Dash, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); print('sleeping', flush=True); time.sleep(300)"
    job_id = dash.submit(_py_job("long one", code))
    dash.wait_api(lambda: pidfile.exists() and pidfile.read_text(), message="the task to start")
    pid = int(pidfile.read_text())
    assert psutil.pid_exists(pid)
    page = dash.goto(f"/jobs/{job_id}")
    page.locator(".page-head .badge.s-running").wait_for()
    page.click("#kill-job")
    assert "Kill job" in page.text_content("#confirm-text")
    page.click("#confirm-ok")
    page.locator(".page-head .badge.s-killed").wait_for()
    page.locator(".toast", has_text=f"Job {job_id} killed").wait_for()

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    dash.wait_api(gone, message="the task's process to stop on the agent")
    attempts = dash.farm.api.get(f"/tasks/{dash.farm.api.get(f'/jobs/{job_id}/tasks')['items'][0]['id']}/attempts")["items"]
    dash.wait_api(lambda: dash.farm.api.get(f"/tasks/{attempts[0]['task_id']}/attempts")["items"][0]["state"] == "killed",
                  message="the agent to report the attempt killed")


def test_read_a_task_log_that_follows_live(dash: Dash, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    code = ("import os,sys,time\nprint('first line <b>not bold</b>', flush=True)\n"
            f"while not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
            "print('second line after the gate', flush=True)")
    job_id = dash.submit(_py_job("log reader", code))
    task_id = dash.farm.api.get(f"/jobs/{job_id}/tasks")["items"][0]["id"]
    dash.wait_api(lambda: dash.farm.api.get(f"/tasks/{task_id}")["state"] == "running", message="the task to run")
    page = dash.goto(f"/tasks/{task_id}")
    log = page.locator("#log")
    page.wait_for_function("() => document.querySelector('#log').textContent.includes('first line <b>not bold</b>')")
    assert log.locator("b").count() == 0  # log text is text, never markup
    assert "following live" in page.text_content("#log-follow")
    gate.write_text("go")
    page.wait_for_function("() => document.querySelector('#log').textContent.includes('second line after the gate')")
    page.locator(".page-head .badge.s-succeeded").wait_for()
    page.locator("tr[data-attempt] .badge.s-succeeded").wait_for()
    page.wait_for_function("() => document.querySelector('#log-follow').textContent === 'complete'")


def test_disable_and_enable_a_node(dash: Dash) -> None:
    page = dash.goto("/nodes")
    row = page.locator("tr[data-node='node-b']")
    row.locator(".badge.s-idle").wait_for()
    row.locator("button", has_text="Disable").click()
    assert "Disable node node-b" in page.text_content("#confirm-text")
    page.click("#confirm-ok")
    row.locator(".badge.s-disabled").wait_for()
    assert dash.farm.api.get("/nodes/node-b")["admin_state"] == "disabled"
    # the disabled node takes no work: a job runs on node-a only
    job_id = dash.submit(_py_job("after disable", "print('x')", frames="1-3"))
    dash.wait_api(lambda: dash.farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", message="the job to finish")
    assert {t["node"] for t in dash.farm.api.get(f"/jobs/{job_id}/tasks")["items"]} == {"node-a"}
    row.locator("button", has_text="Enable").click()  # not destructive: no confirmation
    row.locator(".badge.s-idle").wait_for()
    assert dash.farm.api.get("/nodes/node-b")["admin_state"] == "enabled"
    # an admin makes a one-time enrollment token: its secret is shown once, outside the live redraw
    form = page.locator("#enroll-create")
    form.locator("input[name=name]").fill("browser room")
    form.locator("input[name=one_time]").check()
    form.locator("input[name=pool]").fill("browser-pool")
    form.locator("button[type=submit]").click()
    page.locator("#enroll-secret code.secret", has_text="thr_enroll_").wait_for()
    secret = page.text_content("#enroll-secret code.secret") or ""
    made = page.locator("#enroll-tokens tr", has_text="browser room")
    made.locator("td", has_text="one-time").wait_for()  # the live part redrawn with the new token
    (listed,) = [t for t in dash.farm.api.get("/enroll-tokens")["items"] if t["name"] == "browser room"]
    assert listed["one_time"] and listed["pool"] == "browser-pool"
    assert dash.farm.client(secret).post("/agent/register", {"name": "node-c", "cores": 1, "memory_mb": 512})["token"]
    made.locator("td", has_text="used").wait_for()
    assert dash.farm.api.get("/nodes/node-c")["pool"] == "browser-pool"


def test_user_text_renders_as_text_and_refusals_say_why(dash: Dash) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    job_id = dash.submit({"name": evil, "project": "p<i>x</i>", "layers": [
        {"name": "render", "frames": "1", "args": {"command": [sys.executable, "-c", "print('<script>alert(3)</script>')"]}}]})
    dash.wait_api(lambda: dash.farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", message="the job to finish")
    page = dash.goto("/jobs")
    assert page.locator(f"tr[data-job='{job_id}'] td.name a").text_content() == evil
    page.goto(f"{dash.url}/jobs/{job_id}")
    assert page.text_content(".job-name") == evil
    assert evil in page.text_content("pre.code")
    assert page.evaluate("document.querySelectorAll('main script, main img[src=x]').length") == 0
    assert page.evaluate("[...document.querySelectorAll('main i')].filter(e => e.textContent === 'x').length") == 0
    # killing a finished job is refused, and the page says why
    page.evaluate(f"fetch('/api/v1/jobs/{job_id}/priority', {{method: 'POST'}}).then(r => window.__noCsrf = r.status)")
    page.wait_for_function("() => window.__noCsrf !== undefined")
    assert page.evaluate("window.__noCsrf") == 403  # a cookie alone cannot change anything
    assert page.locator("#job-priority").count() == 0  # a finished job offers no priority: it would do nothing
    # the buttons go into <body>: live refreshes redraw the page's own action bar and would detach them
    page.evaluate(f"document.body.insertAdjacentHTML('beforeend', '<input id=late-priority "
                  f"value=5000><button id=late-prio class=btn data-action=/api/v1/jobs/{job_id}/priority "
                  f"data-priority-from=late-priority>p</button>')")
    page.click("#late-prio")
    page.locator(".toast.bad", has_text="Refused (422)").wait_for()
    page.evaluate(f"document.body.insertAdjacentHTML('beforeend', "
                  f"'<button id=late-kill class=btn data-action=/api/v1/jobs/{job_id}/kill>k</button>')")
    page.click("#late-kill")
    page.locator(".toast.bad", has_text="already succeeded").wait_for()


def test_bulk_actions_on_the_jobs_list(dash: Dash) -> None:
    gate_code = "import time; time.sleep(300)"
    dash.farm.api.post("/nodes/node-a/disable")
    dash.farm.api.post("/nodes/node-b/disable")
    ids = [dash.submit(_py_job(f"bulk {i}", gate_code)) for i in range(3)]
    page = dash.goto("/jobs?name=bulk")
    for job_id in ids[:2]:
        page.check(f"input.pick[value='{job_id}']")
    assert page.text_content("#bulk-count") == "2 selected"
    page.click("[data-bulk=pause]")
    page.locator(".toast", has_text="pause: 2 jobs done").wait_for()
    for job_id in ids[:2]:
        page.locator(f"tr[data-job='{job_id}'] .badge.s-paused").wait_for()
    page.locator(f"tr[data-job='{ids[2]}'] .badge.s-queued").wait_for()
    assert page.is_checked(f"input.pick[value='{ids[0]}']")  # the selection survives live refreshes
    page.fill("#bulk-priority", "700")
    page.click("[data-bulk=priority]")
    page.locator(".toast", has_text="priority: 2 jobs done").wait_for()
    assert [dash.farm.api.get(f"/jobs/{i}")["priority"] for i in ids] == [700, 700, 50]
    page.click("#check-all")
    page.click("[data-bulk=kill]")
    page.click("#confirm-ok")
    for job_id in ids:
        page.locator(f"tr[data-job='{job_id}'] .badge.s-killed").wait_for()


def test_task_grid_and_output_previews(dash: Dash, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    out.mkdir()
    code = ("import sys, numpy, OpenEXR; from PIL import Image; f=int(sys.argv[1]); "
            f"Image.new('RGB', (64, 36), (f*40 % 256, 120, 200)).save({str(out)!r} + '/img.%04d.png' % f); "
            "rgb = numpy.full((36, 64, 3), 0.18, numpy.float32); "
            "exr = OpenEXR.File({'compression': OpenEXR.ZIP_COMPRESSION, 'type': OpenEXR.scanlineimage}, {'RGB': rgb}); "
            f"exr.write({str(out)!r} + '/img.%04d.exr' % f)")
    job_id = dash.submit(_py_job("previews", code, frames="1-4",
                                 args={"outputs": [str(out / "img.####.png"), str(out / "img.####.exr")]}))
    dash.wait_api(lambda: dash.farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", message="the job to finish")
    page = dash.goto(f"/jobs/{job_id}")
    page.wait_for_function("() => document.querySelector('#grid-legend').textContent.includes('succeeded 4')")
    page.wait_for_function("() => [...document.querySelectorAll('.thumb img')].length === 4 && "
                           "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    # hover a cell: frames and node; click it: the task page
    canvas = page.locator("#task-grid")
    canvas.hover(position={"x": 3, "y": 3})
    tip = page.locator("#tip")
    assert "frames 1" in tip.text_content() and "node-" in tip.text_content()
    canvas.click(position={"x": 3, "y": 3})
    page.wait_for_url("**/tasks/*")
    page.wait_for_function("() => document.querySelectorAll('.thumb img').length === 2 && "
                           "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".thumb img[alt$='.exr']").count() == 1  # the EXR output, previewed too
    # only declared outputs are served
    status = page.evaluate("fetch('/ui/thumb/' + document.body.dataset.taskId + '/5').then(r => r.status)")
    assert status == 404


def test_a_job_with_ten_thousand_tasks_stays_usable(browser: Any, make_farm: Any) -> None:
    farm = make_farm()
    job_id = farm.api.post("/jobs", {"name": "big", "layers": [
        {"name": "render", "frames": "1-10000", "args": {"command": ["true", "{frame}"]}}]})["id"]
    context, page = new_page(browser)
    try:
        login(page, farm.server_url, farm.admin_token)
        page.goto(f"{farm.server_url}/jobs/{job_id}")
        page.wait_for_function("() => document.querySelector('#grid-legend').textContent.includes('10000')")
        box = page.locator("#task-grid").bounding_box()
        assert box and box["height"] > 100
        page.locator("#task-grid").hover(position={"x": box["width"] - 20, "y": 20})
        assert "frames" in page.text_content("#tip")
    finally:
        context.close()


def test_go_to_the_task_of_a_frame_from_the_job_page(dash: Dash) -> None:
    """"Frame 7 looks wrong": the job page opens the task that renders it; where two layers render it,
    both are offered as links; a frame no task renders is said so."""
    stepped = dash.submit(_py_job("stepped", "print('x')", frames="1-9x2", chunk=2))
    page = dash.goto(f"/jobs/{stepped}")
    page.fill("#frame-find input[name=frame]", "7")
    page.click("#frame-find button")
    page.wait_for_url("**/tasks/*")
    (task,) = dash.farm.api.get(f"/jobs/{stepped}/tasks?frame=7")["items"]
    assert page.url.endswith(f"/tasks/{task['id']}") and task["frames"] == "5-7x2"

    page = dash.goto(f"/jobs/{stepped}")
    page.fill("#frame-find input[name=frame]", "4")
    page.click("#frame-find button")
    page.locator("#frame-found", has_text="no task renders frame 4").wait_for()

    two = dash.submit({"name": "two layers", "project": "browser", "layers": [
        {"name": name, "frames": "1-3", "args": {"command": ["true"]}} for name in ("beauty", "mask")]})
    page = dash.goto(f"/jobs/{two}")
    page.fill("#frame-find input[name=frame]", "2")
    page.click("#frame-find button")
    page.locator("#frame-found a", has_text="mask · 2").wait_for()
    assert page.locator("#frame-found a").count() == 2 and "is in 2 tasks" in page.text_content("#frame-found")
    page.click("#frame-found a >> text=mask · 2")
    page.wait_for_url("**/tasks/*")

    wedged = dash.submit({"name": "wedge", "project": "browser", "layers": [
        {"name": "sim", "frames": "1-2", "wedge": [16, 64], "args": {"command": ["true"]}}]})
    page = dash.goto(f"/jobs/{wedged}")
    page.fill("#frame-find input[name=frame]", "1")
    page.click("#frame-find button")
    page.locator("#frame-found a", has_text="sim · 1 · wedge 64").wait_for()
