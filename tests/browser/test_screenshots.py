"""Screenshots of the main dashboard pages, taken on a real farm with real work in several states.

Run with `THRESHER_SCREENSHOTS=docs/screenshots` to (re)write the committed images that the README
shows; without it the pictures go to the test's temporary folder, so the run still checks that every
page renders with a realistic farm behind it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import login, new_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

RENDER = r"""
import math, sys, time
from PIL import Image, ImageDraw
frame, out, pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
print(f"rendering frame {frame}", flush=True)
w, h = 320, 180
img = Image.new("RGB", (w, h))
px = img.load()
t = frame / 24.0
for y in range(h):
    for x in range(w):
        v = math.sin(x / 23.0 + t) + math.sin(y / 17.0 - t) + math.sin((x + y) / 31.0 + 2 * t)
        px[x, y] = (int(60 + 50 * math.sin(v)), int(90 + 60 * math.sin(v + 2)), int(150 + 90 * math.sin(v + 4)))
d = ImageDraw.Draw(img)
d.ellipse((130 + 60 * math.cos(t * 3), 60 + 30 * math.sin(t * 3), 190 + 60 * math.cos(t * 3), 120 + 30 * math.sin(t * 3)), fill=(240, 200, 90))
for i in range(5):
    print(f"sample pass {i + 1}/5", flush=True)
    time.sleep(pause / 5)
img.save(out % frame)
print(f"wrote {out % frame}", flush=True)
"""


def _layer(name: str, frames: str, out: Path, pause: float, **extra: Any) -> dict[str, Any]:
    pattern = str(out / f"{name}.%04d.png")
    return {"name": name, "frames": frames, "chunk": 1, "retries": 0,
            "args": {"command": [sys.executable, "-c", RENDER, "{frame}", pattern, str(pause)],
                     "outputs": [str(out / f"{name}.####.png")]}, **extra}


def test_screenshots_of_the_main_pages(browser: Any, make_farm: Any, tmp_path: Path) -> None:
    target = Path(os.environ.get("THRESHER_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "renders"
    out.mkdir()
    farm = make_farm(env={"THRESHER_SERVER_USAGE_SAMPLE_S": "1"})  # the projects page's chart fills in
    farm.start_agent("render-01", cores=4, memory=16384, tags=["linux", "blender"])
    farm.start_agent("render-02", cores=4, memory=16384, tags=["linux", "blender"])
    farm.start_agent("render-03", cores=2, memory=8192, tags=["linux"])
    api = farm.api
    api.post("/projects", {"name": "ferryman", "weight": 3, "max_cores": 8})
    api.post("/projects", {"name": "harbour", "weight": 1})
    api.post("/projects/ferryman/folders", {"name": "sq010", "priority": 10, "min_cores": 2, "max_cores": 6})
    api.request("PUT", "/projects/ferryman/pools/default", json={"guaranteed_cores": 4, "max_cores": 8})
    api.request("PUT", "/projects/harbour/pools/default", json={"guaranteed_cores": 2})
    api.post("/limits", {"name": "blender", "max_total": 6, "max_per_node": 2})
    done = api.post("/jobs", {"name": "sq010 sh020 lighting v003", "project": "ferryman", "sequence": "sq010",
                              "shot": "sh020", "owner": "maya", "priority": 60,
                              "layers": [_layer("beauty", "1-12", out, 0.1)]})["id"]
    farm.wait_for(lambda: api.get(f"/jobs/{done}")["state"] == "succeeded", timeout=120, message="first job")
    failing = api.post("/jobs", {"name": "sq020 fx sim cache", "project": "ferryman", "owner": "tom", "layers": [
        {"name": "sim", "frames": "1-6", "retries": 0,
         "args": {"command": [sys.executable, "-c", "import sys; f=int(sys.argv[1]); print('simulating', f);"
                                                    "sys.exit(3 if f % 3 == 0 else 0)", "{frame}"]}}]})["id"]
    farm.wait_for(lambda: api.get(f"/jobs/{failing}")["state"] == "failed", timeout=60, message="failing job")
    paused = api.post("/jobs", {"name": "sq030 comp precomp", "project": "harbour", "owner": "ana", "priority": 40,
                                "layers": [{"name": "comp", "frames": "1-40", "args": {"command": ["true", "{frame}"]}}]})["id"]
    api.post(f"/jobs/{paused}/pause")
    running = api.post("/jobs", {"name": "sq010 sh040 beauty + denoise", "project": "ferryman", "sequence": "sq010",
                                 "shot": "sh040", "owner": "maya", "priority": 80, "folder": "sq010", "layers": [
                                     _layer("beauty", "1-120", out, 6.0, tags=["blender"], limits={"blender": 1}),
                                     _layer("denoise", "1-120", out, 0.5, depends_on=["beauty"])]})["id"]
    api.post("/jobs", {"name": "sq040 layout playblast", "project": "harbour", "owner": "ana", "priority": 20,
                       "layers": [{"name": "playblast", "frames": "1-200", "chunk": 10,
                                   "args": {"command": ["true", "{start}", "{end}"]}}]})
    farm.wait_for(lambda: api.get(f"/jobs/{running}")["counts"]["succeeded"] >= 8, timeout=120,
                  message="the running job to finish some frames")
    api.post("/nodes/render-03/drain")
    task = next(t for t in api.get(f"/jobs/{running}/tasks?state=running")["items"])

    context, page = new_page(browser, width=1440, height=900)
    try:
        page.goto(farm.server_url + "/login")
        page.screenshot(path=str(target / "login.png"))
        login(page, farm.server_url, farm.admin_token)
        shots = [("/", "overview.png"), ("/jobs", "jobs.png"), (f"/jobs/{running}", "job.png"),
                 (f"/tasks/{task['id']}", "task.png"), ("/nodes", "nodes.png"), ("/nodes/render-01", "node.png"),
                 (f"/jobs/{done}", "job-previews.png"), ("/projects", "projects.png")]
        for path, name in shots:
            page.goto(farm.server_url + path)
            page.wait_for_selector("#live-dot.on")
            if path.startswith("/jobs/"):
                page.wait_for_function("() => document.querySelector('#grid-legend').textContent.length > 0")
                page.wait_for_function("() => [...document.querySelectorAll('.thumb img')].every(i => i.complete)")
            if path.startswith("/tasks/"):
                page.wait_for_function("() => document.querySelector('#log').textContent.includes('rendering')")
            page.screenshot(path=str(target / name), full_page=name in ("job-previews.png", "projects.png"))
            assert (target / name).stat().st_size > 10_000
    finally:
        context.close()
