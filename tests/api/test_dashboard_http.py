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
