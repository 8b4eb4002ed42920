"""Applications that cannot be installed here, on a real farm through stand-in executables (tests/fakes):
command building per node, executables found through PATH, `--app` and THRESHER_APP_*, progress that
reaches the API while tasks run, a movie layer after the render layer, and renderers that lie (exit 0
without a frame, or exit 0 after a fatal error line) failing with a clear reason."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}", "THRESHER_APP_RENDER": str(FAKES / "Render"),
            **extra}


def _wait_job(farm: Any, job_id: int, timeout: float = 90) -> dict[str, Any]:
    return farm.wait_for(lambda: (j := farm.api.get(f"/jobs/{job_id}"))["state"] in ("succeeded", "failed", "killed") and j,
                         timeout=timeout, interval=0.2, message=f"job {job_id} to finish")


def _scenes(root: Path) -> dict[str, str]:
    out = root / "out"
    (root / "comp.nk").write_text(f"Write {{\n file {out}/comp.####.exr\n}}\n")
    (root / "look.katana").write_text(f"output={out}/look.####.exr\n")
    for frame in (1, 2):
        (root / f"beauty.{frame:04d}.ass").write_text("options {}\n")
        (root / f"gpu.{frame:04d}.rs").write_text(f"output={out}/gpu.####.exr\n")
    for name in ("shot.mb", "fx.hip", "stage.usda", "light.vrscene"):
        (root / name).write_text("scene\n")
    return {"out": str(out)}


def test_every_application_template_renders_through_its_stand_in(farm, tmp_path: Path) -> None:
    paths = _scenes(tmp_path)
    out = paths["out"]
    farm.start_agent("a1", cores=2, env=_env(), extra_args=["--app", f"redshiftCmdLine={FAKES / 'redshiftCmdLine'}"])
    farm.start_agent("a2", cores=2, env=_env(), extra_args=["--app", f"redshiftCmdLine={FAKES / 'redshiftCmdLine'}"])
    s = str(tmp_path)
    layers = [
        {"name": "maya", "template": "maya", "frames": "1-4", "chunk": 2,
         "args": {"scene": f"{s}/shot.mb", "output": f"{out}/maya.####.exr", "renderer": "arnold", "camera": "shotCam"}},
        {"name": "kick", "template": "arnold", "frames": "1-2",
         "args": {"scene": f"{s}/beauty.####.ass", "output": f"{out}/kick.####.exr", "width": 64, "height": 48}},
        {"name": "hython", "template": "houdini", "frames": "1-2", "chunk": 2,
         "args": {"scene": f"{s}/fx.hip", "driver": "/out/mantra1", "output": f"{out}/fx.####.exr"}},
        {"name": "husk", "template": "houdini", "frames": "1-3", "chunk": 3,
         "args": {"scene": f"{s}/stage.usda", "output": f"{out}/usd.####.exr"}},
        {"name": "nuke", "template": "nuke", "frames": "1-4", "chunk": 4,
         "args": {"scene": f"{s}/comp.nk", "output": f"{out}/comp.####.exr", "write": ["Write1"]}},
        {"name": "katana", "template": "katana", "frames": "1-5x2", "chunk": 3,
         "args": {"scene": f"{s}/look.katana", "output": f"{out}/look.####.exr"}},
        {"name": "vray", "template": "vray", "frames": "1-2", "chunk": 2,
         "args": {"scene": f"{s}/light.vrscene", "output": f"{out}/vray.####.exr"}},
        {"name": "redshift", "template": "redshift", "frames": "1-2",
         "args": {"scene": f"{s}/gpu.####.rs", "output": f"{out}/gpu.####.exr"}},
        {"name": "movie", "template": "ffmpeg", "frames": "1-4", "depends_on": ["maya"],
         "args": {"input": f"{out}/maya.####.exr", "output": f"{out}/maya.mp4"}},
    ]
    job = farm.api.post("/jobs", {"name": "standins", "layers": layers})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "succeeded", [(layer["name"], layer["counts"]) for layer in done["layers"]]
    assert done["progress"] == 100.0 and all(layer["progress"] == 100.0 for layer in done["layers"])
    names = sorted(os.listdir(out))
    for expected in ("maya.0004.exr", "kick.0002.exr", "fx.0002.exr", "usd.0003.exr", "comp.0004.exr",
                     "look.0001.exr", "look.0005.exr", "vray.0002.exr", "gpu.0002.exr", "maya.mp4"):
        assert expected in names, names
    assert "look.0002.exr" not in names  # katana got the stepped chunk as the list 1,3,5
    nodes = {n["name"]: n for n in farm.api.get("/nodes")["items"]}
    assert nodes["a1"]["apps"]["redshiftCmdLine"] == str(FAKES / "redshiftCmdLine")
    assert nodes["a1"]["apps"]["render"] == str(FAKES / "Render")
    tasks = farm.api.get(f"/jobs/{job['id']}/tasks")["items"]
    assert all(t["progress"] == 100.0 for t in tasks)
    movie = [t for t in tasks if t["layer"] == "movie"]
    assert len(movie) == 1 and movie[0]["frames"] == "1-4"


def test_progress_of_running_tasks_reaches_the_api_and_the_cli(make_farm, tmp_path: Path) -> None:
    farm = make_farm()
    (tmp_path / "a.0001.ass").write_text("x")
    release = tmp_path / "release"
    farm.start_agent("a1", cores=1, env=_env(FAKE_RENDER_HOLD=str(release)))
    job = farm.api.post("/jobs", {"name": "slow", "layers": [
        {"name": "kick", "template": "arnold", "frames": "1", "retries": 0,
         "args": {"scene": str(tmp_path / "a.####.ass"), "output": str(tmp_path / "o.####.exr")}},
        {"name": "later", "template": "arnold", "frames": "1", "depends_on": ["kick"],
         "args": {"scene": str(tmp_path / "a.####.ass"), "output": str(tmp_path / "p.####.exr")}}]})
    task = farm.wait_for(lambda: (t := farm.api.get(f"/jobs/{job['id']}/tasks", layer="kick")["items"][0])["progress"] == 50.0 and t,
                         timeout=30, message="kick's 50% to reach the server")
    assert task["state"] == "running"
    running = farm.api.get(f"/jobs/{job['id']}")
    assert running["layers"][0]["progress"] == 50.0 and running["progress"] == 25.0
    listed = [j for j in farm.api.get("/jobs")["items"] if j["id"] == job["id"]][0]
    assert listed["progress"] == 25.0
    import subprocess
    import sys
    shown = subprocess.run([sys.executable, "-m", "thresher.cli", "job", str(job["id"]), "--server", farm.server_url,
                            "--token", farm.admin_token], capture_output=True, text=True, timeout=60,
                           env={**farm.env, "COLUMNS": "160"})
    assert shown.returncode == 0, shown.stderr
    assert "50%" in shown.stdout and "25%" in shown.stdout, shown.stdout
    release.touch()
    assert _wait_job(farm, job["id"])["state"] == "succeeded"


@pytest.mark.parametrize("mode,reason", [("nowrite", "missing output: "), ("fatal", "error line: "),
                                         ("stale", "stale output: ")])
def test_lying_renderers_fail_with_a_clear_reason(make_farm, tmp_path: Path, mode: str, reason: str) -> None:
    farm = make_farm()
    (tmp_path / "shot.mb").write_text("x")
    if mode == "stale":  # last week's frames on disk, and a renderer that writes nothing
        (tmp_path / "out").mkdir()
        for frame in (1, 2):
            old = tmp_path / "out" / f"sh.{frame:04d}.exr"
            old.write_text("last week")
            os.utime(old, (old.stat().st_mtime - 7 * 86400,) * 2)
    farm.start_agent("a1", cores=1, env=_env())
    job = farm.api.post("/jobs", {"name": mode, "layers": [
        {"name": "maya", "template": "maya", "frames": "1-2", "chunk": 2, "retries": 1,
         "env": {"FAKE_RENDER_MODE": "nowrite" if mode == "stale" else mode},
         "args": {"scene": str(tmp_path / "shot.mb"), "output": str(tmp_path / "out" / "sh.####.exr")}}]})
    done = _wait_job(farm, job["id"])
    assert done["state"] == "failed"
    task = farm.api.get(f"/jobs/{job['id']}/tasks")["items"][0]
    attempts = farm.api.get(f"/tasks/{task['id']}/attempts")["items"]
    assert [a["state"] for a in attempts] == ["failed", "failed"]
    for attempt in attempts:
        assert attempt["exit_code"] == 0 and attempt["reason"].startswith(reason), attempt
    if mode == "nowrite":
        assert attempts[0]["reason"] == f"missing output: {tmp_path / 'out' / 'sh.0001.exr'}"
    elif mode == "stale":
        assert attempts[0]["reason"].startswith(f"stale output: {tmp_path / 'out' / 'sh.0001.exr'} was not written")
    else:
        assert "Arnold license check out failed" in attempts[0]["reason"]
