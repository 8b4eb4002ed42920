"""Application templates: the commands they build, and their progress, error and output rules run for real
through the agent's TaskRunner against stand-in executables (tests/fakes) that print what the real
applications print and write files where they would."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from thresher.agent.runner import TaskRunner
from thresher.model.dry_run import dry_run
from thresher.model.frames import Chunk, iter_chunks
from thresher.server.errors import BadInput
from thresher.server.submit import check_spec
from thresher.templates import all_templates, get_template
from thresher.templates.base import Target, TemplateError
from thresher.wire.agent import Assignment

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def chunk(frames: str, size: int = 100) -> Chunk:
    return next(iter_chunks(frames, size))


def build(name: str, args: dict[str, Any], frames: str = "1-3", size: int = 100, target: Target | None = None):
    template = get_template(name)
    return template.build(template.parse_args(args), chunk(frames, size), target or Target(apps=_fake_apps()))


def _fake_apps() -> dict[str, str]:
    return {name: str(FAKES / name) for name in
            ("Render", "kick", "hython", "husk", "nuke", "katana", "vray", "redshiftCmdLine", "ffmpeg")}


def run_line(line, tmp_path: Path, frames: str, env: dict[str, str] | None = None):
    assignment = Assignment(attempt_id=1, task_id=1, job_id=1, job_name="test", layer="render", argv=line.argv,
                            frames=frames, outputs=line.outputs,
                            progress_patterns=line.progress_patterns, error_patterns=line.error_patterns,
                            env=env or {}, cwd=str(tmp_path))
    runner = TaskRunner(assignment, tmp_path / "log.txt")
    seen: list[float] = []
    original = runner._scan_line

    def scan(line: str) -> None:
        original(line)
        if runner.progress is not None:
            seen.append(runner.progress)

    runner._scan_line = scan  # type: ignore[method-assign]
    result = runner.run()
    return result, (tmp_path / "log.txt").read_text(), seen


# ---------------------------------------------------------------------------- the templates are installed
def test_all_builtin_templates_are_registered_with_their_args() -> None:
    names = set(all_templates())
    assert {"command", "blender", "povray", "maya", "arnold", "houdini", "nuke", "katana", "vray", "redshift",
            "ffmpeg", "stitch"} <= names
    for name in ("blender", "povray", "maya", "arnold", "houdini", "nuke", "katana", "vray", "redshift"):
        described = get_template(name).describe()
        props = described["args"]["properties"]
        assert "scene" in props and "output" in props and "extra_args" in props, name
        assert described["apps"], name


# ---------------------------------------------------------------------------- command building
def test_blender_command_cycles_gpu_overrides() -> None:
    line = build("blender", {"scene": "/p/shot.blend", "output": "/r/shot.####.png", "engine": "cycles",
                             "device": "gpu", "gpu_backend": "OPTIX", "samples": 16, "width": 320, "height": 200,
                             "camera": "CamB", "scene_name": "Main", "extra_args": ["--threads", "2"]},
                 "1-4", 2, Target())
    argv = line.argv
    assert argv[:3] == ["blender", "-b", "/p/shot.blend"]
    assert argv[argv.index("-S") + 1] == "Main" and argv[argv.index("-E") + 1] == "CYCLES"
    expr = argv[argv.index("--python-expr") + 1]
    assert "r.resolution_x = 320" in expr and "bpy.data.objects['CamB']" in expr and "s.cycles.samples = 16" in expr
    assert argv[argv.index("-o") + 1] == "/r/shot.####.png" and argv[argv.index("-F") + 1] == "PNG"
    tail = argv[argv.index("--threads"):]
    assert tail == ["--threads", "2", "-s", "1", "-e", "2", "-j", "1", "-a", "--", "--cycles-device", "OPTIX"]
    assert line.outputs == ["/r/shot.0001.png", "/r/shot.0002.png"]
    assert any(re.search(p, "Fra:2 Mem:9.6M | Time:00:00.06 | Scene, ViewLayer | Sample 8/16") for p in line.progress_patterns)


def test_blender_script_arguments_after_double_dash_come_after_the_frame_arguments() -> None:
    """Blender stops reading its own options at `--`: frame arguments after it would be ignored."""
    extra = ["--python", "/p/setup.py", "--", "--shot", "sh010", "-s", "7"]
    argv = build("blender", {"scene": "s.blend", "output": "/r/o.####.png", "extra_args": extra}, "1-4", 2, Target()).argv
    assert argv[argv.index("--python"):] == ["--python", "/p/setup.py", "-s", "1", "-e", "2", "-j", "1", "-a",
                                             "--", "--shot", "sh010", "-s", "7"]
    argv = build("blender", {"scene": "s.blend", "extra_args": extra, "device": "GPU"}, "1-10y3", 100, Target()).argv
    dash = argv.index("--")
    assert "-f" in argv[:dash] and argv[dash:] == ["--", "--shot", "sh010", "-s", "7", "--cycles-device", "CUDA"]
    argv = build("blender", {"scene": "s.blend", "extra_args": ["--threads", "2"]}, "3", 1, Target()).argv
    assert argv[-9:] == ["--threads", "2", "-s", "3", "-e", "3", "-j", "1", "-a"] and "--" not in argv


def test_blender_frame_list_and_per_os_default_executable() -> None:
    line = build("blender", {"scene": "s.blend", "output": "o.####.exr"}, "1-10y3", 100, Target(os="windows"))
    assert line.argv[0].endswith("blender.exe")
    assert line.argv[-2:] == ["-f", ",".join(str(f) for f in chunk("1-10y3").frame_list())]
    assert line.argv[line.argv.index("-F") + 1] == "OPEN_EXR"


def test_executable_setting_order() -> None:
    args = {"scene": "s.blend", "output": "o.####.png"}
    assert build("blender", args, target=Target(apps={"blender": "/opt/b/blender"})).argv[0] == "/opt/b/blender"
    assert build("blender", {**args, "executable": "/x/blender-4"}, target=Target(apps={"blender": "/o"})).argv[0] == "/x/blender-4"
    assert build("maya", {"scene": "a.mb"}, target=Target(os="linux")).argv[0] == "/usr/autodesk/maya/bin/Render"
    assert build("maya", {"scene": "a.mb"}, target=Target(os="darwin")).argv[0].endswith("/Render")


def test_povray_command() -> None:
    line = build("povray", {"scene": "/s/a.pov", "output": "/r/a.####.png", "width": 64, "height": 48,
                            "antialias": 0.3, "clock": "frame"}, "3-7x2", 100, Target())
    assert line.argv[:6] == ["povray", "+I/s/a.pov", "+O/r/a..png", "+W64", "+H48", "-D"]
    assert {"+KFI1", "+KFF9999", "+KI1", "+KF9999", "+SF3", "+EF7", "Frame_Step=2", "+A0.3", "+FN"} <= set(line.argv)
    assert line.outputs == ["/r/a.0003.png", "/r/a.0005.png", "/r/a.0007.png"]


def test_povray_for_windows_closes_after_rendering() -> None:
    args = {"scene": "C:/s/a.pov", "output": "C:/r/a.####.png"}
    argv = build("povray", args, "1-3", target=Target(os="windows")).argv
    assert argv[0].endswith("/pvengine64.exe") and argv[1:3] == ["/EXIT", "/RENDER"] and argv[3] == "+IC:/s/a.pov"
    argv = build("povray", args, "1-3", target=Target(os="windows", apps={"povray": "D:\\POV\\bin\\PVENGINE.EXE"})).argv
    assert argv[1:3] == ["/EXIT", "/RENDER"]
    assert "/EXIT" not in build("povray", args, "1-3", target=Target(os="linux")).argv
    assert "/EXIT" not in build("povray", args, "1-3", target=Target(os="windows", apps={"povray": "C:/wsl/povray.exe"})).argv
    spec = {"name": "j", "layers": [{"name": "p", "template": "povray", "frames": "1-2", "args": args}]}
    assert dry_run(check_spec(spec), target_os="windows")["tasks"][0]["argv"][1:3] == ["/EXIT", "/RENDER"]


def test_povray_refuses_outputs_it_cannot_name() -> None:
    with pytest.raises(Exception, match="extension"):
        get_template("povray").parse_args({"scene": "a.pov", "output": "/r/a.####_beauty.png"})


def test_maya_renderers_and_output_split() -> None:
    for renderer in ("arnold", "vray", "redshift", "renderman", "sw"):
        line = build("maya", {"scene": "/p/a.mb", "output": "/r/sh010.####.exr", "renderer": renderer,
                              "camera": "shotCam", "width": 1920, "height": 1080, "project": "/p"}, "1-9x2", 100, Target())
        argv = line.argv
        assert argv[1:3] == ["-r", renderer] and argv[-1] == "/p/a.mb"
        assert argv[argv.index("-s") + 1] == "1" and argv[argv.index("-e") + 1] == "9" and argv[argv.index("-b") + 1] == "2"
        assert argv[argv.index("-rd") + 1] == "/r" and argv[argv.index("-im") + 1] == "sh010"
        assert argv[argv.index("-pad") + 1] == "4" and argv[argv.index("-of") + 1] == "exr"
        assert line.outputs[-1] == "/r/sh010.0009.exr"


@pytest.mark.parametrize("output,im,fnc,of", [
    ("/r/sh010.####.exr", "sh010", "name.#.ext", "exr"),
    ("/r/sh010_####.exr", "sh010", "name_#.ext", "exr"),
    ("/r/sh010####.exr", "sh010", "name#.ext", "exr"),
    ("/r/sh010-%03d.png", "sh010-", "name#.ext", "png"),
    ("/r/sh010.exr.@@@@", "sh010", "name.ext.#", "exr"),
    ("/r/sh010.####", "sh010", "name.#", None),
])
def test_maya_file_name_convention_matches_the_output(output: str, im: str, fnc: str, of: str | None) -> None:
    argv = build("maya", {"scene": "/p/a.mb", "output": output}, "1-2", target=Target()).argv
    assert argv[argv.index("-rd") + 1] == "/r" and argv[argv.index("-im") + 1] == im
    assert argv[argv.index("-fnc") + 1] == fnc
    assert (argv[argv.index("-of") + 1] if "-of" in argv else None) == of


@pytest.mark.parametrize("output", ["/r/sh.####_beauty.exr", "/r/####.exr", "/r/sh.####.tar.gz", "/r/sh####"])
def test_maya_refuses_outputs_it_cannot_name_at_submit(output: str) -> None:
    spec = {"name": "j", "layers": [{"name": "r", "template": "maya", "args": {"scene": "a.mb", "output": output}}]}
    with pytest.raises(BadInput) as err:
        check_spec(spec)
    assert err.value.errors[0]["field"] == "layers.0.args.output", err.value.errors
    assert "Maya cannot write" in err.value.errors[0]["message"]


def test_katana_writes_stepped_chunks_as_frame_lists() -> None:
    assert build("katana", {"scene": "a.katana"}, "1-9x2").argv[-1] == "1,3,5,7,9"
    assert build("katana", {"scene": "a.katana"}, "5-8").argv[-1] == "5-8"
    argv = build("katana", {"scene": "a.katana", "render_node": "Beauty"}, "5").argv
    assert argv[1:] == ["--batch", "--katana-file", "a.katana", "--render-node", "Beauty", "-t", "5"]


def test_vray_frames_use_its_own_syntax() -> None:
    """V-Ray reads -frames=b0[-e0[,s0]]{;bn...}: a comma is a step, `;` separates items."""
    def frames(spec: str, size: int = 100) -> str:
        argv = build("vray", {"scene": "a.vrscene", "output": "/r/a.####.exr"}, spec, size, Target()).argv
        return next(a for a in argv if a.startswith("-frames=")).split("=", 1)[1]

    assert frames("1-10") == "1-10"
    assert frames("1-9x2") == "1-9,2"
    assert frames("7") == "7"
    assert frames("1-10y3") == "2;3;5;6;8;9"


def test_nuke_frames_and_write_nodes() -> None:
    argv = build("nuke", {"scene": "c.nk", "write": ["Write2"]}, "1-10x3", target=Target()).argv
    assert argv == ["nuke", "-x", "-X", "Write2", "-F", "1-10x3", "c.nk"]
    argv = build("nuke", {"scene": "c.nk"}, "1-10y3", target=Target()).argv
    assert argv.count("-F") == len(chunk("1-10y3").frame_list())


def test_houdini_hython_for_hip_and_husk_for_usd() -> None:
    line = build("houdini", {"scene": "/p/a.hip", "driver": "/out/karma1", "output": "/r/a.####.exr"}, "1-4", target=Target())
    assert line.argv[0] == "hython" and "frame_range=(1, 4, 1)" in line.argv[2] and "/out/karma1" in line.argv[2]
    line = build("houdini", {"scene": "/p/a.usd", "output": "/r/a.####.exr", "width": 64, "height": 32,
                             "renderer": "BRAY_HdKarmaXPU"}, "1-4", target=Target())
    assert line.argv[:7] == ["husk", "--frame", "1", "--frame-count", "4", "--frame-inc", "1"]
    assert "/r/a.$F4.exr" in line.argv and line.argv[-1] == "/p/a.usd"
    with pytest.raises(Exception, match="driver"):
        get_template("houdini").parse_args({"scene": "/p/a.hip"})


@pytest.mark.parametrize("output,expected", [("/r/a.####.exr", "/r/a.$F4.exr"), ("/r/a.###.exr", "/r/a.$F3.exr"),
                                             ("/r/a.%05d.exr", "/r/a.$F5.exr"), ("/r/a.@@.exr", "/r/a.$F2.exr"),
                                             ("/r/a_#.exr", "/r/a_$F.exr")])
def test_houdini_output_padding_becomes_houdini_frame_variables(output: str, expected: str) -> None:
    line = build("houdini", {"scene": "/p/a.hip", "driver": "/out/karma1", "output": output}, "1-2", target=Target())
    assert f"output = {expected!r}" in line.argv[2] and "####" not in line.argv[2]
    line = build("houdini", {"scene": "/p/a.usd", "output": output}, "1-2", target=Target())
    assert line.argv[line.argv.index("-o") + 1] == expected


def test_one_frame_per_run_applications_refuse_bigger_chunks() -> None:
    with pytest.raises(TemplateError, match="chunk 1"):
        build("arnold", {"scene": "/p/a.####.ass"}, "1-4", 2)
    spec = {"name": "j", "layers": [{"name": "r", "template": "redshift", "frames": "1-4", "chunk": 2,
                                     "args": {"scene": "/p/a.####.rs"}}]}
    with pytest.raises(BadInput) as err:
        check_spec(spec)
    assert err.value.errors[0]["field"] == "layers.0.args" and "chunk 1" in err.value.errors[0]["message"]


def test_ranges_only_templates_refuse_frame_lists_at_submit() -> None:
    spec = {"name": "j", "layers": [{"name": "r", "template": "maya", "frames": "1-10y3", "args": {"scene": "a.mb"}}]}
    with pytest.raises(BadInput) as err:
        check_spec(spec)
    assert err.value.errors[0]["field"] == "layers.0.frames"


def test_ffmpeg_is_one_task_over_the_whole_range() -> None:
    spec = {"name": "j", "layers": [
        {"name": "render", "template": "povray", "frames": "1-6", "chunk": 2,
         "args": {"scene": "/s/a.pov", "output": "/r/a.####.png"}},
        {"name": "movie", "template": "ffmpeg", "frames": "1-6", "depends_on": ["render"],
         "args": {"input": "/r/a.####.png", "output": "/r/a.mp4", "fps": 12}}]}
    tasks = dry_run(check_spec(spec))["tasks"]
    movie = [t for t in tasks if t["layer"] == "movie"]
    assert len(movie) == 1
    argv = movie[0]["argv"]
    assert argv[argv.index("-i") + 1] == "/r/a.%04d.png" and argv[argv.index("-frames:v") + 1] == "6"
    assert argv[argv.index("-start_number") + 1] == "1" and argv[-1] == "/r/a.mp4"


def test_arguments_agree_across_templates() -> None:
    for name in ("blender", "maya", "arnold", "houdini", "vray"):
        props = get_template(name).describe()["args"]["properties"]
        assert {"scene", "output", "width", "height", "camera", "extra_args"} <= set(props), name


# ---------------------------------------------------------------------------- stand-ins, run for real
CASES = [
    ("maya", {"renderer": "arnold"}, "Render", "a.mb", "sh.####.exr", "1-3"),
    ("maya", {"renderer": "sw"}, "Render", "a.mb", "sh.####.iff", "2-3"),
    ("maya", {"renderer": "vray"}, "Render", "a.mb", "sh.####.exr", "1-2"),
    ("maya", {"renderer": "redshift"}, "Render", "a.mb", "sh.####.exr", "1-2"),
    ("maya", {"renderer": "renderman"}, "Render", "a.mb", "sh.####.exr", "1-2"),
    ("maya", {"renderer": "arnold"}, "Render", "a.mb", "sh010_####.exr", "1-2"),
    ("maya", {"renderer": "sw"}, "Render", "a.mb", "sh010###.png", "9-10"),
    ("maya", {"renderer": "sw"}, "Render", "a.mb", "sh010.exr.####", "1"),
    ("arnold", {}, "kick", "a.####.ass", "sh.####.exr", "2"),
    ("houdini", {"driver": "/out/mantra1"}, "hython", "a.hip", "sh.####.exr", "1-2"),
    ("houdini", {}, "husk", "a.usda", "sh.####.exr", "1-3"),
    ("houdini", {"driver": "/out/mantra1"}, "hython", "a.hip", "sh.%03d.exr", "9-10"),
    ("houdini", {"driver": "/out/mantra1"}, "hython", "a.hip", "sh_@@.exr", "1"),
    ("houdini", {}, "husk", "a.usda", "sh.###.exr", "1-2"),
    ("nuke", {}, "nuke", "a.nk", "sh.####.exr", "1-4x2"),
    ("katana", {}, "katana", "a.katana", "sh.####.exr", "1-5x2"),
    ("vray", {}, "vray", "a.vrscene", "sh.####.exr", "1-2"),
    ("vray", {}, "vray", "a.vrscene", "sh.####.exr", "1-7x3"),
    ("vray", {}, "vray", "a.vrscene", "sh.####.exr", "1-10y3"),
    ("redshift", {}, "redshiftCmdLine", "a.####.rs", "sh.####.exr", "7"),
]


def _scene(tmp_path: Path, name: str, scene: str, output: str, frames: str) -> str:
    """Scene files the stand-ins read (Nuke's Write node, Katana's and Redshift's output)."""
    out = str(tmp_path / "out" / output)
    for frame in chunk(frames).frame_list():
        path = tmp_path / scene.replace("####", f"{frame:04d}")
        path.write_text({"nuke": f"Write {{\n file {out}\n}}\n"}.get(name, f"output={out}\n"))
    return str(tmp_path / scene)


@pytest.mark.parametrize("name,extra,exe,scene,output,frames", CASES, ids=[f"{c[0]}-{c[2]}-{c[1]}-{c[5]}" for c in CASES])
def test_stand_in_renders_with_progress_and_checked_outputs(tmp_path: Path, name, extra, exe, scene, output, frames) -> None:
    scene_path = _scene(tmp_path, name, scene, output, frames)
    out = str(tmp_path / "out" / output)
    line = build(name, {"scene": scene_path, "output": out, **extra}, frames)
    assert line.argv[0] == str(FAKES / exe)
    result, log, seen = run_line(line, tmp_path, frames)
    assert result.status == "succeeded", (result, log)
    assert line.outputs and all(Path(p).stat().st_size > 0 for p in line.outputs)
    assert seen, f"no progress parsed from:\n{log}"
    assert seen[-1] == pytest.approx(100.0), (seen, log)
    assert 0 < min(p for p in seen if p > 0) < 100, seen


@pytest.mark.parametrize("name,extra,exe,scene,output,frames", CASES, ids=[f"{c[0]}-{c[2]}-{c[1]}-{c[5]}" for c in CASES])
def test_stand_in_fatal_line_with_exit_0_fails(tmp_path: Path, name, extra, exe, scene, output, frames) -> None:
    scene_path = _scene(tmp_path, name, scene, output, frames)
    line = build(name, {"scene": scene_path, "output": str(tmp_path / "out" / output), **extra}, frames)
    result, log, _ = run_line(line, tmp_path, frames, env={"FAKE_RENDER_MODE": "fatal"})
    assert result.exit_code == 0 and result.status == "failed", log
    assert result.reason.startswith("error line: "), result.reason


@pytest.mark.parametrize("name,extra,exe,scene,output,frames", CASES[:3], ids=[c[0] + "-" + c[2] for c in CASES[:3]])
def test_stand_in_exit_0_without_frames_fails(tmp_path: Path, name, extra, exe, scene, output, frames) -> None:
    scene_path = _scene(tmp_path, name, scene, output, frames)
    line = build(name, {"scene": scene_path, "output": str(tmp_path / "out" / output), **extra}, frames)
    result, log, _ = run_line(line, tmp_path, frames, env={"FAKE_RENDER_MODE": "nowrite"})
    assert result.exit_code == 0 and result.status == "failed"
    assert result.reason == f"missing output: {line.outputs[0]}"


def test_stale_frames_from_an_earlier_render_do_not_pass_the_output_check(tmp_path: Path) -> None:
    """Last week's frames on disk: a renderer that writes nothing fails; one that writes them succeeds."""
    import os
    import time

    scene = _scene(tmp_path, "maya", "a.mb", "sh.####.exr", "1-2")
    line = build("maya", {"scene": scene, "output": str(tmp_path / "out" / "sh.####.exr")}, "1-2")
    week_ago = time.time() - 7 * 86400
    for path in line.outputs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("last week")
        os.utime(path, (week_ago, week_ago))
    result, log, _ = run_line(line, tmp_path, "1-2", env={"FAKE_RENDER_MODE": "nowrite"})
    assert result.exit_code == 0 and result.status == "failed", log
    assert result.reason.startswith(f"stale output: {line.outputs[0]} was not written by this attempt (modified "), result.reason
    assert "stale output" in log
    result, log, _ = run_line(line, tmp_path, "1-2")
    assert result.status == "succeeded", (result, log)
    # a file written a moment before the attempt started (coarse or skewed timestamps) is not called stale
    just_before = time.time() - 1
    for path in line.outputs:
        os.utime(path, (just_before, just_before))
    result, log, _ = run_line(line, tmp_path, "1-2", env={"FAKE_RENDER_MODE": "nowrite"})
    assert result.status == "succeeded", (result, log)


def test_missing_scene_fails_with_the_application_error(tmp_path: Path) -> None:
    line = build("arnold", {"scene": str(tmp_path / "nope.ass"), "output": str(tmp_path / "o.####.exr")}, "1")
    result, log, _ = run_line(line, tmp_path, "1")
    assert result.status == "failed" and "can't open" in log


def test_ffmpeg_stand_in_encodes_and_reports_frames(tmp_path: Path) -> None:
    for frame in range(1, 5):
        (tmp_path / f"f.{frame:04d}.png").write_text("x")
    line = build("ffmpeg", {"input": str(tmp_path / "f.####.png"), "output": str(tmp_path / "m.mp4")}, "1-4")
    result, log, seen = run_line(line, tmp_path, "1-4")
    assert result.status == "succeeded", log
    assert seen == [25.0, 50.0, 75.0, 100.0]
    line = build("ffmpeg", {"input": str(tmp_path / "g.####.png"), "output": str(tmp_path / "n.mp4")}, "1-4")
    result, log, _ = run_line(line, tmp_path, "1-4")
    assert result.status == "failed" and "No such file" in log


# ---------------------------------------------------------------------------- progress within a chunk
def test_blender_chunk_progress_counts_frames_and_samples(tmp_path: Path) -> None:
    template = get_template("blender")
    line = template.build(template.parse_args({"scene": "x.blend"}), chunk("1-4"), Target())
    script = ("for f in (1,2,3,4):\n"
              "    print(f'Fra:{f} Mem:1M | Time:00:00.01 | Scene, ViewLayer | Synchronizing object')\n"
              "    print(f'Fra:{f} Mem:1M | Time:00:00.02 | Scene, ViewLayer | Sample 8/16')\n")
    import sys
    line.argv = [sys.executable, "-c", script]
    _, _, seen = run_line(line, tmp_path, "1-4")
    assert seen == [0.0, 12.5, 25.0, 37.5, 50.0, 62.5, 75.0, 87.5]


def test_blender_eevee_is_chosen_by_the_nodes_blender_and_exact_names_pass_through() -> None:
    argv = build("blender", {"scene": "s.blend", "engine": "EEVEE"}, "1", target=Target()).argv
    expr = argv[argv.index("--python-expr") + 1]
    assert "-E" not in argv and "r.engine = 'BLENDER_EEVEE'" in expr and "r.engine = 'BLENDER_EEVEE_NEXT'" in expr
    compile(expr, "<python-expr>", "exec")
    for engine, name in (("eevee_next", "BLENDER_EEVEE_NEXT"), ("blender_eevee", "BLENDER_EEVEE"), ("cycles", "CYCLES")):
        argv = build("blender", {"scene": "s.blend", "engine": engine}, "1", target=Target()).argv
        assert argv[argv.index("-E") + 1] == name and "--python-expr" not in argv


@pytest.mark.parametrize("exit_code", [0, 1])
def test_blender_unknown_engine_line_fails_the_task_clearly(tmp_path: Path, exit_code: int) -> None:
    """What Blender 3.x prints for `-E BLENDER_EEVEE_NEXT` (4.2's name), and 4.2 for `-E BLENDER_EEVEE`."""
    import sys

    line = build("blender", {"scene": "s.blend", "engine": "eevee_next", "output": str(tmp_path / "o.####.png")}, "1",
                 target=Target())
    line.argv = [sys.executable, "-c", f"print('Blender 3.4.1'); print(); "
                 f"print(\"Error: engine not found 'BLENDER_EEVEE_NEXT'\"); raise SystemExit({exit_code})"]
    result, log, _ = run_line(line, tmp_path, "1")
    assert result.status == "failed" and result.reason == "error line: Error: engine not found 'BLENDER_EEVEE_NEXT'", result


def test_blender_eevee_progress_counts_samples(tmp_path: Path) -> None:
    import sys

    line = build("blender", {"scene": "s.blend", "engine": "eevee"}, "1-2", target=Target())
    script = ("for f in (1, 2):\n"
              "    print(f'Fra:{f} Mem:10.35M (Peak 11.47M) | Time:00:01.64 | Syncing Cube')\n"
              "    for n in (1, 2, 3, 4):\n"
              "        print(f'Fra:{f} Mem:10.35M (Peak 11.47M) | Time:00:01.64 | Rendering {n} / 4 samples')\n"
              "    print(f\"Saved: '/r/o.{f:04d}.png'\")\n")
    line.argv = [sys.executable, "-c", script]
    _, log, seen = run_line(line, tmp_path, "1-2")
    changes = [p for n, p in enumerate(seen) if n == 0 or p != seen[n - 1]]
    assert changes == [0.0, 12.5, 25.0, 37.5, 50.0, 62.5, 75.0, 87.5, 100.0], (seen, log)
