"""Renderers use what they reserved, and no more: each template passes the task's cores to its application
its own way, every task gets the thread variables, a GPU device needs a reserved GPU, POV-Ray's clock runs
0 to 1 over the layer, Blender can turn denoising off, and every template's error patterns tell the
application's real warning lines from its real error lines."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from thresher.agent.child import THREAD_VARIABLES, build_env
from thresher.model.dry_run import dry_run
from thresher.model.frames import Chunk, iter_chunks
from thresher.model.inspection import inspect_spec
from thresher.model.services import ServiceDefaults
from thresher.server.errors import BadInput
from thresher.server.submit import check_spec
from thresher.templates import get_template
from thresher.wire.agent import Assignment


def argv(name: str, args: dict[str, Any], frames: str = "1", cores: int = 6,
         layer_frames: tuple[int, int] | None = None) -> list[str]:
    template = get_template(name)
    chunk = replace(next(iter_chunks(frames, 100)), cores=cores, layer_frames=layer_frames)
    return template.build(template.parse_args(args), chunk).argv


def after(line: list[str], flag: str) -> str:
    return line[line.index(flag) + 1]


# ------------------------------------------------------------------------------- cores on the command line

def test_every_template_passes_the_cores_its_own_way() -> None:
    blender = argv("blender", {"scene": "s.blend", "output": "/r/o.####.png"}, "1-3")
    assert after(blender, "-t") == "6" and blender.index("-t") < blender.index("-a")
    assert "+WT6" in argv("povray", {"scene": "a.pov", "output": "/r/a.####.png"}, "1-3")
    assert after(argv("arnold", {"scene": "a.####.ass"}), "-t") == "6"
    assert "-numThreads=6" in argv("vray", {"scene": "a.vrscene"})
    assert after(argv("houdini", {"scene": "a.usd"}), "--threads") == "6"
    assert after(argv("nuke", {"scene": "a.nk"}), "-m") == "6"
    assert after(argv("maya", {"scene": "a.mb", "renderer": "sw"}), "-n") == "6"
    ffmpeg = argv("ffmpeg", {"input": "/r/a.####.png", "output": "/r/a.mp4"}, "1-10")
    assert after(ffmpeg, "-threads") == "6" and ffmpeg[-1] == "/r/a.mp4"


def test_templates_without_a_known_thread_flag_leave_the_argv_alone() -> None:
    # hython, Katana, Redshift and Maya's other renderers get the cores from the environment only
    assert argv("houdini", {"scene": "a.hip", "driver": "/out/m"}, cores=6) == \
        argv("houdini", {"scene": "a.hip", "driver": "/out/m"}, cores=0)
    assert argv("katana", {"scene": "a.katana"}, cores=6) == argv("katana", {"scene": "a.katana"}, cores=0)
    assert argv("redshift", {"scene": "a.####.rs"}, cores=6) == argv("redshift", {"scene": "a.####.rs"}, cores=0)
    assert argv("maya", {"scene": "a.mb"}, cores=6) == argv("maya", {"scene": "a.mb"}, cores=0)


def test_unknown_cores_add_no_flag_and_a_layers_own_threads_win() -> None:
    assert "-t" not in argv("blender", {"scene": "s.blend"}, cores=0)
    assert not any(a.startswith("+WT") for a in argv("povray", {"scene": "a.pov", "output": "/r/a.####.png"},
                                                     cores=0))
    assert after(argv("arnold", {"scene": "a.####.ass", "threads": 2}), "-t") == "2"
    assert after(argv("nuke", {"scene": "a.nk", "threads": 3}), "-m") == "3"
    # Blender reads its options in order: a -t in extra_args comes after ours and wins
    line = argv("blender", {"scene": "s.blend", "extra_args": ["-t", "2"]})
    assert line.index("6") < line.index("2") < line.index("-a")


def test_the_layers_reserved_cores_reach_the_commands_at_submit() -> None:
    spec = {"name": "j", "layers": [{"name": "b", "template": "blender", "frames": "1-2", "chunk": 2, "resources": {"cores": 12},
                                     "args": {"scene": "s.blend", "output": "/r/o.####.png"}}]}
    (task,) = dry_run(check_spec(spec))["tasks"]
    assert after(task["argv"], "-t") == "12"


# ------------------------------------------------------------------------------------ thread environment

def assignment(**kw: Any) -> Assignment:
    return Assignment(attempt_id=1, task_id=1, job_id=1, job_name="j", layer="l", frames="1", argv=["x"], **kw)


def test_every_task_gets_the_thread_variables_and_the_jobs_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "64")  # what the agent was started with does not leak into tasks
    env = build_env(assignment(cores=4, env={"MKL_NUM_THREADS": "1"}), hide_gpus=False)
    assert {name: env[name] for name in THREAD_VARIABLES} == {
        "OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "4", "NUMEXPR_NUM_THREADS": "4",
        "VECLIB_MAXIMUM_THREADS": "4", "HOUDINI_MAXTHREADS": "4"}
    assert env["THRESHER_CORES"] == "4"
    untouched = build_env(assignment(), hide_gpus=False)  # an assignment of a server that sends no cores
    assert untouched["OMP_NUM_THREADS"] == "64" and "THRESHER_CORES" not in untouched


# ----------------------------------------------------------------------------------- a GPU device needs GPUs

@pytest.mark.parametrize(("template", "args", "field"), [
    ("blender", {"scene": "s.blend", "device": "GPU"}, "layers.0.args.device"),
    ("redshift", {"scene": "a.####.rs", "gpus": [0]}, "layers.0.args.gpus"),
])
def test_a_gpu_device_on_a_layer_that_reserves_no_gpu_is_refused(template: str, args: dict[str, Any],
                                                                  field: str) -> None:
    layer = {"name": "r", "template": template, "frames": "1", "args": args}
    with pytest.raises(BadInput) as err:
        check_spec({"name": "j", "layers": [layer]})
    (problem,) = err.value.errors
    assert problem["field"] == field and "resources.gpus" in problem["message"]
    assert check_spec({"name": "j", "layers": [{**layer, "resources": {"gpus": 1}}]}).layers


def test_the_readme_blender_example_reserves_its_gpu() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme[readme.index("engine: cycles, device: GPU"):][:400]
    assert re.search(r"resources: \{[^}]*gpus: [1-9]", example)


# ------------------------------------------------------------------------------------------ POV-Ray clock

def clock_at(line: list[str], frame: int) -> float:
    """The clock POV-Ray computes for `frame` from +KFI/+KFF/+KI/+KF (linear between them)."""
    values = {a[:4]: a[4:] for a in line if a[:4] in ("+KFI", "+KFF")}
    kfi, kff = int(values["+KFI"]), int(values["+KFF"])
    ki = float(next(a[3:] for a in line if a.startswith("+KI")))
    kf = float(next(a[3:] for a in line if a.startswith("+KF") and not a.startswith(("+KFI", "+KFF"))))
    return ki + (kf - ki) * (frame - kfi) / (kff - kfi)


def test_povray_clock_runs_from_0_to_1_over_the_layer() -> None:
    args = {"scene": "a.pov", "output": "/r/a.####.png"}
    for frames in ("1-3", "4-6"):  # two chunks of a 1-6 layer agree on the clock of each frame
        line = argv("povray", args, frames, layer_frames=(1, 6))
        for frame in range(int(frames[0]), int(frames[-1]) + 1):
            assert clock_at(line, frame) == pytest.approx((frame - 1) / 5, abs=1e-9)
    line = argv("povray", args, "10-20", layer_frames=(10, 20))
    assert clock_at(line, 10) == pytest.approx(0.0, abs=1e-9) and clock_at(line, 20) == pytest.approx(1.0)
    assert not any("e" in a for a in line if a.startswith(("+KI", "+KF")))  # no exponents: POV-Ray reads decimals
    assert clock_at(argv("povray", args, "5", layer_frames=(5, 5)), 5) == 0.0


def test_povray_clock_frame_is_the_frame_number() -> None:
    line = argv("povray", {"scene": "a.pov", "output": "/r/a.####.png", "clock": "frame"}, "3-4", layer_frames=(1, 6))
    assert {"+KFI1", "+KFF9999", "+KI1", "+KF9999"} <= set(line) and clock_at(line, 4) == 4
    assert "clock" in get_template("povray").describe()["args"]["properties"]


def test_povray_clock_from_a_submitted_layer() -> None:
    spec = {"name": "j", "layers": [{"name": "p", "template": "povray", "frames": "1-5", "chunk": 2,
                                     "args": {"scene": "a.pov", "output": "/r/a.####.png"}}]}
    tasks = dry_run(check_spec(spec))["tasks"]
    assert clock_at(tasks[1]["argv"], 3) == pytest.approx(0.5) and clock_at(tasks[2]["argv"], 5) == pytest.approx(1)


# ------------------------------------------------------------------------------------------ Blender denoise

def test_blender_denoise_off_goes_through_the_setup_code() -> None:
    line = argv("blender", {"scene": "s.blend", "denoise": False})
    code = after(line, "--python-expr")
    assert "s.cycles.use_denoising = False" in code and "layer.cycles.use_denoising = False" in code
    compile(code, "<setup>", "exec")
    assert "--python-expr" not in argv("blender", {"scene": "s.blend"})  # default: the file's setting


# ---------------------------------------------------------------------- error patterns vs real log lines

REAL_LINES: dict[str, tuple[list[str], list[str]]] = {
    # template: (warnings and ordinary lines that must NOT fail a task, error lines that must)
    "povray": ([
        "Possible Parse Error: assumed_gamma not specified, so gamma_correction is turned off for compatibility",
        "Parse Warning: assumed_gamma not specified, so gamma_correction is turned off",
        "Parse Warning: This scene did not contain a #version directive. Please be aware",
        "  Warning Stream to console.......On ",
        "  Parse Time:       0 hours  0 minutes  0 seconds (0.000 seconds)",
    ], [
        "File 'bad.pov' line 1: Parse Error: No matching } in 'sphere', End of File found",
        "Parse Error: Cannot open input file.",
        "Fatal error in parser: Cannot parse input.",
        "Render failed",
    ]),
    "blender": ([
        "Warning: Total files 0 | Changed 0 | Failed 0",
        "Color management: using fallback mode for management",
        "Fra:1 Mem:18.35M (Peak 18.87M) | Time:00:00.56 | Remaining:00:01.22 | Mem:1.13M, Peak:1.13M | Scene, "
        "ViewLayer | Sample 1/16",
        "Error: Not freed memory blocks: 3, total unfreed memory 0.001236 MB",
        "Saved: '/r/o.0001.png'",
    ], [
        "Error: Cannot read file '/p/missing.blend': No such file or directory",
        "Error: engine not found 'BLENDER_EEVEE_NEXT'",
        "Traceback (most recent call last):",
        "Unable to open '/p/x.blend'",
    ]),
    "arnold": ([
        "00:00:00    81MB WARNING | rendering with watermarks because of failed authorization:",
        "00:00:00    81MB WARNING | [ass] line 12: node \"x\" is already installed",
        "00:00:02   290MB         |   10% done - 3 rays/pixel",
    ], [
        "00:00:00    80MB ERROR   | [ass] can't read in /p/missing.ass",
        "00:00:01    95MB ERROR   | [texturesys] /tex/a.tx: No such file",
    ]),
    "vray": ([
        "[2024/Jan/15|10:00:00] warning: Failed to load plugin library \"vray_BRDFScanned.so\"",
        "[2024/Jan/15|10:00:01] Rendering image...:  50.00% [ 0h  0m  1.0s] [ 0h  0m  1.0s est]",
    ], [
        "[2024/Jan/15|10:00:00] error: Cannot open file \"/p/missing.vrscene\"",
        "[2024/Jan/15|10:00:00] Cannot load scene file /p/a.vrscene",
    ]),
    "houdini": ([
        "Warning: Could not find texture '/tex/a.rat'",
        "[10:00:00] mantra: Warning: unable to find fonts",
        "ALF_PROGRESS 50%",
    ], [
        "Error: no ROP /out/missing",
        "hou.OperationFailed: The attempted operation failed.",
        "Traceback (most recent call last):",
    ]),
    "nuke": ([
        "Warning: Read1: Missing frame 12, black frame used",
        "Writing /r/a.0001.exr took 0.21 seconds",
    ], [
        "ERROR: Read1: /p/a.0001.exr: No such file or directory",
        "Write1: Error writing /r/a.0001.exr",
    ]),
    "katana": ([
        "[WARN python.RenderManager]: Shader /root/materials/x has no inputs",
        "[INFO python.Main]: Batch render completed.",
    ], [
        "[ERROR python.RenderManager]: Render failed: no render node 'Render'",
        "Traceback (most recent call last):",
    ]),
    "redshift": ([
        "[Redshift] WARNING: Texture /tex/a.tx was not found",
        "\tBlock 12/48 (6,2) rendered by GPU 0 in 12ms",
    ], [
        "[Redshift] ERROR: Unable to open /p/a.rs",
        "License acquisition failed",
    ]),
    "maya": ([
        "// Warning: file: /p/a.mb line 12: Unrecognized node type 'x'; preserving node information",
        "00:00:00   100MB WARNING | [mtoa] ...",
        "Percentage of rendering done: 50 (/r/a.0001.exr)",
    ], [
        "// Error: Cannot find procedure \"x\".",
        "Error: Scene /p/a.mb failed to load.",
        "00:00:01  1024MB ERROR   | [texturesys] /tex/a.tx: No such file",
    ]),
    "ffmpeg": ([
        "[swscaler @ 0x55d] deprecated pixel format used, make sure you did set range correctly",
        "[h264 @ 0x55d] error while decoding MB 10 20, bytestream -5",
        "frame=  100 fps= 50 q=-1.0 Lsize=     214kB time=00:00:04.00 bitrate= 438.6kbits/s speed=2.0x",
    ], [
        "Error opening input file /r/a.%04d.png.",
        "Conversion failed!",
    ]),
}


@pytest.mark.parametrize("name", sorted(REAL_LINES))
def test_error_patterns_match_real_errors_and_not_real_warnings(name: str) -> None:
    patterns = [re.compile(p) for p in get_template(name).error_patterns]
    warnings, errors = REAL_LINES[name]
    for line in warnings:
        assert not any(p.search(line) for p in patterns), f"{name}: warning taken for an error: {line!r}"
    for line in errors:
        assert any(p.search(line) for p in patterns), f"{name}: error missed: {line!r}"


def test_chunks_without_a_reservation_say_so() -> None:
    assert Chunk(0, "1", 1, 1, 1, 1).cores == 0 and Chunk(0, "1", 1, 1, 1, 1).layer_frames is None


def test_a_service_that_gives_the_gpus_satisfies_a_gpu_device() -> None:
    spec = {"name": "j", "layers": [{"name": "r", "template": "blender", "frames": "1",
                                     "args": {"scene": "s.blend", "device": "GPU"}}]}
    gpu_service = {"blender": ServiceDefaults.model_validate({"resources": {"gpus": 1}})}
    assert inspect_spec(spec, gpu_service).problems == []
    (problem,) = inspect_spec(spec, {}).problems
    assert problem["field"] == "layers.0.args.device"
