"""The dashboard over plain HTTP against a real server: login, session cookie, CSRF, escaping, events."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest


def _session(farm: Any, token: str | None = None, next_path: str = "/") -> httpx.Client:
    client = httpx.Client(base_url=farm.server_url, timeout=10, follow_redirects=False)
    form = client.get("/login").text
    nonce = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"token": token or farm.admin_token, "csrf": nonce, "next": next_path})
    assert answer.status_code == 303, answer.text
    return client


def _csrf(client: httpx.Client) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/jobs").text).group(1)  # type: ignore[union-attr]


def test_nothing_without_login_and_cookie_flags(farm: Any) -> None:
    with httpx.Client(base_url=farm.server_url, timeout=10) as anon:
        for path in ("/", "/jobs", "/jobs/1", "/tasks/1", "/nodes", "/nodes/x"):
            answer = anon.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
        for path in ("/ui/jobs/1/grid", "/ui/thumb/1/0", "/events", "/jobs?fragment=1"):
            assert anon.get(path).status_code == 401, path
        form = anon.get("/login")
        assert form.status_code == 200 and "Content-Security-Policy" in form.headers
        bad = anon.post("/login", data={"token": farm.admin_token, "csrf": "forged", "next": "/"})
        assert bad.status_code == 401 and "expired" in bad.text and "thresher_session" not in bad.headers.get("set-cookie", "")
    client = _session(farm, next_path="//evil.example/steal")
    cookie = client.cookies.jar
    assert any(c.name == "thresher_session" for c in cookie)
    # the login answer redirected to "/", never to another site
    with httpx.Client(base_url=farm.server_url, timeout=10) as again:
        nonce = re.search(r'name="csrf" value="([^"]+)"', again.get("/login").text).group(1)  # type: ignore[union-attr]
        answer = again.post("/login", data={"token": farm.admin_token, "csrf": nonce, "next": "//evil.example"})
        assert answer.headers["location"] == "/"
        set_cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
        assert farm.admin_token not in set_cookie
    client.close()


def test_session_cookie_authenticates_api_calls_with_csrf(farm: Any) -> None:
    client = _session(farm)
    assert client.get("/api/v1/whoami").json()["kind"] == "admin"
    job_id = farm.api.post("/jobs", {"name": "x", "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]})["id"]
    refused = client.post(f"/api/v1/jobs/{job_id}/pause")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    token = _csrf(client)
    assert client.post(f"/api/v1/jobs/{job_id}/pause", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post(f"/api/v1/jobs/{job_id}/pause", headers={"X-CSRF-Token": token}).json()["state"] == "paused"
    # the cookie is not a node token
    assert client.post("/api/v1/agent/heartbeat", json={}, headers={"X-CSRF-Token": token}).status_code == 403
    # a logout form without its CSRF field is refused; with it, the cookie is dropped
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    client.cookies.clear()
    assert client.get("/jobs").status_code == 303
    # a forged cookie is not a session
    client.cookies.set("thresher_session", "v1.1.9999999999.abc.forged")
    assert client.get("/api/v1/whoami").status_code == 401
    client.close()


def test_rotating_the_secret_ends_sessions_in_the_running_server(farm: Any) -> None:
    """`thresher secret rotate` writes the data folder's secret; the server process notices the new
    file at the next request, without a restart. API tokens keep working."""
    import stat
    import subprocess

    secret = farm.data_dir / "session.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    client = _session(farm)
    assert client.get("/api/v1/whoami").json()["kind"] == "admin"
    assert "thresher_session" not in client.get("/jobs").headers.get("set-cookie", "")  # fresh: not sent again
    rotated = subprocess.run([sys.executable, "-m", "thresher.cli", "secret", "rotate", "--data", str(farm.data_dir)],
                             capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    assert client.get("/api/v1/whoami").status_code == 401
    assert client.get("/jobs").status_code == 303
    assert farm.api.get("/whoami")["kind"] == "admin"
    client.close()
    again = _session(farm)
    assert again.get("/api/v1/whoami").json()["kind"] == "admin"
    again.close()


def test_user_text_is_escaped_in_every_page(farm: Any) -> None:
    evil = "<script>alert(1)</script>"
    job_id = farm.api.post("/jobs", {"name": evil, "project": "<b>p</b>", "layers": [
        {"name": "r", "frames": "1-3", "args": {"command": ["true", "{frame}"]}}]})["id"]
    client = _session(farm)
    for path in ("/jobs", f"/jobs/{job_id}", f"/jobs?name={evil}"):
        html = client.get(path).text
        assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<b>p</b>" not in html
    grid = client.get(f"/ui/jobs/{job_id}/grid").json()
    assert grid["frames"] == ["1", "2", "3"] and grid["layers"] == ["r"]
    assert grid["states"][grid["state"][0]] == "ready"
    assert client.get("/jobs/99999").status_code == 404
    client.close()


def test_thumbnails_only_for_declared_outputs(farm: Any, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (800, 400), (10, 200, 30)).save(out / "f.0001.png")
    (out / "notes.txt").write_text("secret")
    job_id = farm.api.post("/jobs", {"name": "t", "layers": [{"name": "r", "frames": "1-2", "args": {
        "command": ["true"], "outputs": [str(out / "f.####.png"), str(out / "notes.txt")]}}]})["id"]
    tasks = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    client = _session(farm)
    thumb = client.get(f"/ui/thumb/{tasks[0]['id']}/0")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    from io import BytesIO

    assert Image.open(BytesIO(thumb.content)).size == (480, 240)
    assert client.get(f"/ui/thumb/{tasks[1]['id']}/0").status_code == 404  # declared, not written yet
    assert client.get(f"/ui/thumb/{tasks[0]['id']}/1").status_code == 415  # declared, but not an image
    assert client.get(f"/ui/thumb/{tasks[0]['id']}/2").status_code == 404  # not declared at all
    page = client.get(f"/tasks/{tasks[0]['id']}").text
    assert "f.0001.png" in page and "notes.txt" in page
    client.close()


def test_event_stream_tells_about_changes(farm: Any) -> None:
    client = _session(farm)
    farm.start_agent("ev-1", cores=2)
    with client.stream("GET", "/events", timeout=30) as stream:
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert json.loads(first[5:])["hello"] is True
        job_id = farm.api.post("/jobs", {"name": "ev", "layers": [
            {"name": "r", "frames": "1", "args": {"command": [sys.executable, "-c", "print('hi')"]}}]})["id"]
        seen: dict[str, Any] = {"new": False, "job": False, "log": False, "summary": False}
        deadline = time.monotonic() + 30
        for line in lines:
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            seen["new"] |= bool(event.get("new_jobs"))
            seen["job"] |= job_id in event.get("jobs", [])
            seen["log"] |= bool(event.get("logs"))
            seen["summary"] |= "summary" in event
            if all(seen.values()) or time.monotonic() > deadline:
                break
        assert all(seen.values()), seen
    client.close()


@pytest.mark.parametrize("path", ["/static/app.js", "/static/app.css", "/static/favicon.svg"])
def test_static_files_ship_in_the_package(farm: Any, path: str) -> None:
    answer = httpx.get(farm.server_url + path, timeout=10)
    assert answer.status_code == 200 and len(answer.content) > 100


# ---------------------------------------------------------------- pages with a realistic farm behind them

def _rows(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-job="(\d+)"', html)]


def test_jobs_list_filters_sorts_and_pages(make_farm: Any) -> None:
    farm = make_farm()
    ids: dict[int, dict[str, Any]] = {}
    for i in range(53):
        spec = {"name": f"shot {i:02d}", "project": "alpha" if i < 30 else "beta", "owner": "ann" if i % 2 else "bob",
                "priority": (i * 37) % 100, "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]}
        ids[farm.api.post("/jobs", spec)["id"]] = spec
    newest = sorted(ids, reverse=True)
    paused = newest[3:5]
    for job_id in paused:
        farm.api.post(f"/jobs/{job_id}/pause")
    client = _session(farm)

    first = client.get("/jobs").text
    assert _rows(first) == newest[:50] and "53 jobs" in first and "page 1 of 2" in first
    assert 'href="/jobs?page=2"' in first
    second = client.get("/jobs?page=2").text
    assert _rows(second) == newest[50:] and "page 2 of 2" in second and "Next" not in second
    past = client.get("/jobs?page=999")  # past the end: the last page, said as such
    assert past.status_code == 200 and _rows(past.text) == newest[50:] and "page 2 of 2" in past.text
    assert _rows(client.get("/jobs?page=nonsense").text) == newest[:50]
    assert _rows(client.get("/jobs?state=bogus").text) == newest[:50]  # an unknown state filters nothing

    assert sorted(_rows(client.get("/jobs?state=paused").text)) == sorted(paused)
    beta = client.get("/jobs?project=beta").text
    assert sorted(_rows(beta)) == sorted(j for j, s in ids.items() if s["project"] == "beta") and "23 jobs" in beta
    ann_alpha = _rows(client.get("/jobs?project=alpha&owner=ann").text)
    assert sorted(ann_alpha) == sorted(j for j, s in ids.items() if s["project"] == "alpha" and s["owner"] == "ann")
    assert 'id="my-jobs" href="/jobs?owner=admin"' in first  # "Mine": the logged-in user's jobs
    assert 'id="my-jobs"' not in client.get("/jobs?owner=admin").text
    by_priority = _rows(client.get("/jobs?project=beta&sort=-priority").text)
    assert [ids[j]["priority"] for j in by_priority] == sorted((ids[j]["priority"] for j in by_priority), reverse=True)
    by_name = _rows(client.get("/jobs?project=beta&sort=name").text)
    assert [ids[j]["name"] for j in by_name] == sorted(ids[j]["name"] for j in by_name)
    assert _rows(client.get("/jobs?sort=id&page=2").text) == sorted(ids)[50:]
    nothing = client.get("/jobs?project=nope&page=3").text
    assert _rows(nothing) == [] and "No jobs match." in nothing and "0 jobs" in nothing
    fragment = client.get("/jobs?state=paused&fragment=1").text  # what a live refresh swaps in
    assert not fragment.lstrip().startswith("<!doctype") and sorted(_rows(fragment)) == sorted(paused)
    client.close()


def test_overview_chart_and_node_pages_follow_the_work(make_farm: Any) -> None:
    farm = make_farm(env={"THRESHER_NODE_SAMPLE_S": "0.3"})
    farm.start_agent("worker", cores=2)
    client = _session(farm)

    def chart(html: str) -> list[int]:
        return [int(n) for n in re.findall(r"<title>\d+ min ago: (\d+) frames</title>", html)]

    assert sum(chart(client.get("/").text)) == 0  # the chart is now cached for a few seconds at most
    fail_on_3 = "import sys; sys.exit(3 if int(sys.argv[1]) == 3 else 0)"
    job_id = farm.api.post("/jobs", {"name": "chart", "layers": [{"name": "r", "frames": "1-5", "retries": 0, "args": {
        "command": [sys.executable, "-c", fail_on_3, "{frame}"]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["state"] == "failed", timeout=60, message="the job to end")
    started = time.monotonic()
    farm.wait_for(lambda: sum(chart(client.get("/").text)) == 4, timeout=15, interval=0.5,
                  message="the overview chart to count the 4 finished frames")
    assert time.monotonic() - started < 10
    assert len(chart(client.get("/").text)) == 60

    # nodes page: CPU and memory lines drawn from the samples the server keeps
    def spark_points(html: str, kind: str) -> list[str]:
        return [p for p in re.findall(rf'<polyline class="{kind}" points="([^"]*)"', html) if p]

    farm.wait_for(lambda: spark_points(client.get("/nodes").text, "cpu") and spark_points(client.get("/nodes").text, "mem"),
                  timeout=20, interval=0.3, message="CPU and memory lines on the nodes page")
    nodes_html = client.get("/nodes").text
    assert 'data-node="worker"' in nodes_html and re.search(r'class="k-cpu">\d+%', nodes_html)
    assert len(spark_points(nodes_html, "cpu")[0].split()) >= 2

    # node page: the line, recent attempts and the failures apart
    node_html = client.get("/nodes/worker").text
    assert spark_points(node_html, "cpu") and "Not enough samples yet" not in node_html
    failures = node_html.split("<h2>Recent failures</h2>")[1].split("<h2>Recent attempts</h2>")[0]
    recent = node_html.split("<h2>Recent attempts</h2>")[1]
    assert failures.count("<tr>") == 2  # header + the one failed attempt
    assert ">3<" in failures and "s-failed" in failures and f'href="/jobs/{job_id}"' in failures
    assert recent.count("s-succeeded") == 4 and recent.count("s-failed") == 1
    assert client.get("/nodes/nobody").status_code == 404

    # what a node runs reads as the job's name, the layer and the frames, on the overview and the node pages
    long_id = farm.api.post("/jobs", {"name": "sh010 <beauty>", "layers": [{"name": "beauty", "frames": "7-8",
                                                                            "chunk": 2, "args": {"command": ["sleep", "30"]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{long_id}")["counts"]["running"] == 1, timeout=30,
                  message="the long task to run")
    shown = "sh010 &lt;beauty&gt; · beauty · 7-8</a>"
    assert shown in client.get("/nodes/worker").text
    farm.wait_for(lambda: shown in client.get("/").text and shown in client.get("/nodes").text, timeout=15,
                  interval=0.5, message="the overview and the nodes page (a farm summary cached a moment) to show it")
    farm.api.post(f"/jobs/{long_id}/kill")
    client.close()


# ---------------------------------------------------------------- previews of EXR outputs

def _write_exr(path: Path, rgb: Any) -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": rgb}) as exr:
        exr.write(str(path))


def test_exr_outputs_preview_as_srgb_thumbnails(make_farm: Any, tmp_path: Path) -> None:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    out = tmp_path / "out"
    out.mkdir()
    rgb = np.zeros((400, 960, 3), dtype=np.float32)
    rgb[:, :480] = (0.18, 0.18, 0.18)      # middle grey, linear
    rgb[:, 480:] = (4.0, 1.0, 0.0)         # over-bright red clips to full red; green 1.0 stays full
    _write_exr(out / "beauty.0001.exr", rgb)
    (out / "beauty.0002.exr").write_bytes(b"not an exr at all")
    farm = make_farm()
    job_id = farm.api.post("/jobs", {"name": "exr", "layers": [{"name": "r", "frames": "1-2", "args": {
        "command": ["true"], "outputs": [str(out / "beauty.####.exr")]}}]})["id"]
    tasks = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    client = _session(farm)
    thumb = client.get(f"/ui/thumb/{tasks[0]['id']}/0")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    image = Image.open(BytesIO(thumb.content)).convert("RGB")
    assert image.size == (480, 200)
    grey = image.getpixel((100, 100))
    assert isinstance(grey, tuple)  # an RGB pixel
    assert all(abs(c - 118) <= 3 for c in grey), grey  # 0.18 linear is 118 in sRGB
    red = image.getpixel((380, 100))
    assert isinstance(red, tuple)
    assert red[0] >= 250 and red[1] >= 250 and red[2] <= 6, red
    broken = client.get(f"/ui/thumb/{tasks[1]['id']}/0")
    assert broken.status_code == 415 and broken.json()["detail"].startswith("cannot preview EXR beauty.0002.exr")
    assert str(out) not in broken.json()["detail"]
    client.close()


def test_without_an_exr_reader_the_server_says_so(tmp_path: Path) -> None:
    """The reason a preview is missing comes from the server (the job page shows it)."""
    import builtins

    from thresher.server.dashboard import thumbs

    path = tmp_path / "f.exr"
    path.write_bytes(b"\x76\x2f\x31\x01")
    real_import = builtins.__import__

    def no_openexr(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "OpenEXR":
            raise ImportError("no OpenEXR here")
        return real_import(name, *args, **kwargs)

    builtins.__import__ = no_openexr
    try:
        with pytest.raises(ValueError, match="cannot preview EXR: the server has no EXR reader"):
            thumbs.ThumbnailCache().get(str(path))
    finally:
        builtins.__import__ = real_import


def test_job_page_shows_the_eta_and_node_page_the_speed(make_farm: Any) -> None:
    farm = make_farm()
    farm.start_agent("worker", cores=1)
    client = _session(farm)
    slow_after_2 = "import sys, time; time.sleep(0.2 if int(sys.argv[1]) <= 2 else 60)"
    job_id = farm.api.post("/jobs", {"name": "eta", "layers": [{"name": "r", "frames": "1-4", "args": {
        "command": [sys.executable, "-c", slow_after_2, "{frame}"]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["counts"]["succeeded"] == 2, timeout=60,
                  message="two tasks to finish")
    job = farm.api.get(f"/jobs/{job_id}")
    assert job["estimate"]["confidence"] == "rough" and job["estimate"]["samples"] == 2
    assert job["estimate"]["eta_at"] and job["layers"][0]["estimate"]["task_s"] < 30
    html = client.get(f"/jobs/{job_id}").text
    assert "ETA <time" in html and "from 2 finished tasks, rough" in html and "s/task" in html
    node_html = client.get("/nodes/worker").text
    assert "data-node-speed" in node_html and "unknown" in node_html  # no other node ran the layer
    assert farm.api.get("/nodes/worker")["speed"] is None
    farm.api.post(f"/jobs/{job_id}/kill")
    client.close()


def test_a_failed_job_page_offers_only_what_would_do_something(farm: Any) -> None:
    """Its comp waits on the failed render: kill (ends the waiters) and retry, but no pause ("job 3 already
    failed: nothing to pause") nor urgent (it runs nothing until a retry); its failed layer's ETA says so."""
    job_id = farm.api.post("/jobs", {"name": "fails", "layers": [
        {"name": "render", "frames": "1", "retries": 0, "args": {"command": ["false"]}},
        {"name": "comp", "frames": "1-2", "depends_on": ["render"], "args": {"command": ["true"]}}]})["id"]
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 1, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed", "exit_code": 1,
                                              "log_size": 0}]})
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["state"] == "failed", message="the job to fail")
    client = _session(farm)
    html = client.get(f"/jobs/{job_id}").text
    client.close()
    assert 'id="kill-job"' in html and 'id="retry-job"' in html
    assert 'id="pause-job"' not in html and 'id="urgent-job"' not in html
    assert "ended: 1 task failed" in html and "none: the job failed" in html
    # archived, its tasks are gone: nothing left to act on, and its layers still say how they ended
    farm.api.post("/jobs/archive", {"ids": [job_id]})
    client = _session(farm)
    html = client.get(f"/jobs/{job_id}").text
    client.close()
    assert "archived" in html and "ended: 1 task failed" in html
    for gone in ('id="kill-job"', 'id="retry-job"', 'id="job-priority"', f"/jobs/{job_id}/layers/"):
        assert gone not in html, gone
