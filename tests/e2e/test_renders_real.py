"""Real renders on a real farm: Blender and POV-Ray frames rendered in chunks on two local agents, a
2x2 tiled POV-Ray frame stitched back together, and path mapping from a Windows-style submission.

Blender and POV-Ray come from Debian's packages (the README test command installs them). Scenes are
tiny (64x48, 4 samples) so the renders take seconds on a 2-core machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

SCENES = Path(__file__).resolve().parent / "scenes"


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: run ./scripts/test.sh (scripts/setup.sh installs it)", pytrace=False)
    return path


def _wait_job(farm: Any, job_id: int, timeout: float = 240) -> dict[str, Any]:
    return farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job_id}"))["state"] in ("succeeded", "failed", "killed") and j,
                         timeout=timeout, interval=0.2, message=f"job {job_id} to finish")


def _assert_png(path: Path, size: tuple[int, int]) -> Image.Image:
    assert path.stat().st_size > 0, path
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.size == size, (path, image.format, image.size)
        return image.copy()


@pytest.fixture(scope="module")
def blend_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    blender = _need("blender")
    out = tmp_path_factory.mktemp("blend") / "cube.blend"
    done = subprocess.run([blender, "-b", "--factory-startup", "--python", str(SCENES / "make_blend.py"), "--", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_blender_frames_1_to_6_in_chunks_of_2_on_two_agents(make_farm, blend_file: Path, tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("a1", cores=1)
    farm.start_agent("a2", cores=1)
    out = tmp_path / "renders"
    job = farm.api.post("/jobs", {"name": "blender", "layers": [{
        "name": "render", "template": "blender", "frames": "1-6", "chunk": 2, "retries": 0,
        "args": {"scene": str(blend_file), "output": str(out / "cube.####.png"), "engine": "cycles",
                 "samples": 4, "width": 64, "height": 48, "camera": "Main", "denoise": False}}]})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == 100.0 and done["layers"][0]["progress"] == 100.0
    tasks = farm.api.get(f"/jobs/{job['id']}/tasks")["items"]
    assert [t["frames"] for t in tasks] == ["1-2", "3-4", "5-6"]
    assert {t["node"] for t in tasks} == {"a1", "a2"}
    images = [_assert_png(out / f"cube.{f:04d}.png", (64, 48)) for f in range(1, 7)]
    assert images[0].tobytes() != images[5].tobytes()  # the cube turned
    log = farm.api.get(f"/attempts/{tasks[0]['attempt_id']}/log")["data"]
    assert "Sample 4/4" in log and "Saved:" in log


def test_povray_animation_submitted_with_windows_paths(make_farm, tmp_path: Path) -> None:
    _need("povray")
    farm = make_farm()
    farm.start_agent("a1", cores=1)
    farm.start_agent("a2", cores=1)
    shot = tmp_path / "projects" / "sh010"
    shot.mkdir(parents=True)
    shutil.copy(SCENES / "anim.pov", shot / "anim.pov")
    job = farm.api.post("/jobs", {
        "name": "povray", "path_mapping": [{"from": "Z:/projects", "to": {"linux": str(tmp_path / "projects")}}],
        "layers": [{"name": "render", "template": "povray", "frames": "1-6", "chunk": 2, "retries": 0,
                    "args": {"scene": "Z:\\projects\\sh010\\anim.pov", "output": "Z:/projects/sh010/out/anim.####.png",
                             "width": 64, "height": 48}}]})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", done
    images = [_assert_png(shot / "out" / f"anim.{f:04d}.png", (64, 48)) for f in range(1, 7)]
    assert images[0].tobytes() != images[1].tobytes()  # the ball moved with the frame number
    tasks = farm.api.get(f"/jobs/{job['id']}/tasks")["items"]
    assert [t["progress"] for t in tasks] == [100.0, 100.0, 100.0]
    assert "Rendered 3072 of 3072 pixels" in farm.api.get(f"/attempts/{tasks[0]['attempt_id']}/log")["data"]


def test_povray_clock_runs_0_to_1_over_the_layer_and_warnings_pass(make_farm, tmp_path: Path) -> None:
    _need("povray")
    farm = make_farm()
    farm.start_agent("a1", cores=2)
    job = farm.api.post("/jobs", {"name": "clock", "layers": [{
        "name": "render", "template": "povray", "frames": "1-5", "chunk": 2, "retries": 0,
        "resources": {"cores": 2},
        "args": {"scene": str(SCENES / "clock.pov"), "output": str(tmp_path / "c.####.png"), "width": 32, "height": 24}}]})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", done  # POV-Ray's gamma and #version warnings fail nothing
    tasks = farm.api.get(f"/jobs/{job['id']}/tasks")["items"]
    logs = "".join(farm.api.get(f"/attempts/{t['attempt_id']}/log")["data"] for t in tasks)
    for frame, clock in ((1, "0.000000"), (2, "0.250000"), (3, "0.500000"), (5, "1.000000")):
        assert f"CLOCK={clock} FRAME={frame}" in logs, logs[-3000:]
    assert "assumed_gamma" in logs


def test_povray_2x2_tiles_stitch_into_the_untiled_frame(make_farm, tmp_path: Path) -> None:
    _need("povray")
    farm = make_farm()
    farm.start_agent("a1", cores=1)
    farm.start_agent("a2", cores=1)
    args = {"scene": str(SCENES / "anim.pov"), "width": 64, "height": 48}
    job = farm.api.post("/jobs", {"name": "tiles", "layers": [
        {"name": "whole", "template": "povray", "frames": "3", "retries": 0,
         "args": {**args, "output": str(tmp_path / "whole" / "f.####.png")}},
        {"name": "tiled", "template": "povray", "frames": "3", "tiles": [2, 2], "retries": 0,
         "args": {**args, "output": str(tmp_path / "tiled" / "f.####.png")}}]})
    assert [layer["name"] for layer in job["layers"]] == ["whole", "tiled", "tiled-stitch"]
    assert job["layers"][2]["depends_on"] == ["tiled"]
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", done
    tiles = farm.api.get(f"/jobs/{job['id']}/tasks", layer="tiled")["items"]
    assert sorted(tuple(t["part"]["tile"]) for t in tiles) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    whole = _assert_png(tmp_path / "whole" / "f.0003.png", (64, 48))
    stitched = _assert_png(tmp_path / "tiled" / "f.0003.png", (64, 48))
    assert stitched.convert("RGB").tobytes() == whole.convert("RGB").tobytes()
    assert sorted(p.name for p in (tmp_path / "tiled").iterdir()) == ["f.0003.png"]  # tiles cleaned up


def test_blender_tiles_stitch_into_a_full_frame(make_farm, blend_file: Path, tmp_path: Path) -> None:
    farm = make_farm()
    farm.start_agent("a1", cores=2)
    job = farm.api.post("/jobs", {"name": "blender tiles", "layers": [{
        "name": "render", "template": "blender", "frames": "2", "tiles": "2x1", "retries": 0,
        "args": {"scene": str(blend_file), "output": str(tmp_path / "t.####.png"), "samples": 4,
                 "width": 64, "height": 48}}]})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", done
    image = _assert_png(tmp_path / "t.0002.png", (64, 48)).convert("RGB")
    # both halves were rendered: no column of the frame is left black
    for x in (2, 30, 33, 61):
        assert any(image.getpixel((x, y)) != (0, 0, 0) for y in range(48)), x
