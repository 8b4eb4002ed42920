"""Stand-ins for applications that cannot be installed here (Maya, Houdini, Nuke, Katana, Arnold, V-Ray,
Redshift, ffmpeg). Each reads the arguments the real program takes, prints the kind of lines the real one
prints (progress, errors) and writes its frames where the real one would.

`FAKE_RENDER_MODE` changes the behaviour: `ok` (default), `nowrite` (exit 0 without writing a frame),
`fatal` (print the application's fatal error line, write nothing, exit 0). `FAKE_RENDER_DELAY` (seconds)
sleeps half-way through each frame, so tests can watch progress while a task runs;
`FAKE_RENDER_HOLD` (a path) waits there instead until that file exists (at most two minutes), so a test
holds a task at 50% for as long as its checks take, however loaded the machine is.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import overload

MODE = os.environ.get("FAKE_RENDER_MODE", "ok")
DELAY = float(os.environ.get("FAKE_RENDER_DELAY", "0") or 0)
HOLD = os.environ.get("FAKE_RENDER_HOLD", "")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pad(pattern: str, frame: int) -> str:
    """`####`, `$F4`, `%04d` -> the frame number (Houdini's stand-ins expand only `$F`)."""
    out = re.sub(r"\$F(\d*)", lambda m: f"{frame:0{int(m.group(1) or 1)}d}", pattern)
    out = re.sub(r"%0?(\d*)d", lambda m: f"{frame:0{int(m.group(1) or 1)}d}", out)
    return re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", out)


def houdini_pad(pattern: str, frame: int) -> str:
    """Houdini expands `$F` (unpadded) and `$F2`..`$F9`; `#` and `%04d` stay in the name as they are."""
    return re.sub(r"\$F(\d?)", lambda m: f"{frame:0{int(m.group(1) or 1)}d}", pattern)


def write(path: str, app: str, frame: int) -> None:
    if MODE != "ok":
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{app} frame {frame}\n")


@overload
def opt(argv: list[str], name: str) -> str | None: ...
@overload
def opt(argv: list[str], name: str, default: str) -> str: ...
def opt(argv: list[str], name: str, default: str | None = None) -> str | None:
    if name in argv:
        return argv[argv.index(name) + 1]
    for arg in argv:
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def need(argv: list[str], name: str) -> str:
    """The value of an option the command line must have (the agent's templates always write it)."""
    value = opt(argv, name)
    if value is None:
        raise SystemExit(f"{name} is required")
    return value


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """The first match of what the command line or the scene file always holds."""
    m = re.search(pattern, text, flags)
    assert m is not None, f"no {pattern!r} in {text!r}"
    return m


def frames_of(text: str) -> list[int]:
    """`1-10x2`, `1,3,5`, `1-4`."""
    frames: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?", part.strip())
        if not m:
            raise SystemExit(f"bad frames {text!r}")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else start
        frames.extend(range(start, end + 1, int(m.group(3) or 1)))
    return frames


def vray_frames_of(text: str) -> list[int]:
    """V-Ray's `-frames=b0[-e0[,s0]]{;bn[-en[,sn]]}`: `1-9,2` (a step), `1;4;7` (a list)."""
    frames: list[int] = []
    for item in text.split(";"):
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+)(?:,(\d+))?)?", item.strip())
        if not m:
            raise ValueError(item)
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else start
        frames.extend(range(start, end + 1, int(m.group(3) or 1)))
    return frames


def halfway() -> None:
    if DELAY:
        time.sleep(DELAY)
    end = time.monotonic() + 120
    while HOLD and not os.path.exists(HOLD) and time.monotonic() < end:
        time.sleep(0.05)


def fatal(line: str) -> int:
    say(line)
    return 0  # the lie: a fatal error, and exit status 0


# --------------------------------------------------------------------------------------------- Maya
def maya(argv: list[str]) -> int:
    say("Starting Rendering " + argv[-1])
    renderer = opt(argv, "-r", "file")
    if not os.path.exists(argv[-1]):
        say(f"// Error: File not found: {argv[-1]}")
        return 211
    if MODE == "fatal":  # what each renderer prints when it gives up, while Maya still exits 0
        return fatal({
            "arnold": "00:00:02   300MB ERROR   | [mtoa] Arnold license check out failed, aborting",
            "vray": "[2024/Jan/1|00:00:02] V-Ray: error: Could not obtain a license (-200)",
            "redshift": "[Redshift] ERROR: License acquisition failed: no license available",
            "renderman": "R50004 {SEVERE}  Unable to check out a RenderMan license",
        }.get(renderer, "// Error: Scene failed to load: license not available"))
    start, end, step = int(need(argv, "-s")), int(need(argv, "-e")), int(opt(argv, "-b", "1"))
    # Maya's file name conventions (-fnc), as the real one names its images; the scene's own setting
    # (here name.#.ext, 4 digits, exr) when a flag is not given
    name, ext, digits = opt(argv, "-im", "a"), opt(argv, "-of", "exr"), "#" * int(opt(argv, "-pad", "4"))
    conventions = {"name": name, "name.ext": f"{name}.{ext}", "name.#.ext": f"{name}.{digits}.{ext}",
                   "name.ext.#": f"{name}.{ext}.{digits}", "name.#": f"{name}.{digits}",
                   "name#.ext": f"{name}{digits}.{ext}", "name_#.ext": f"{name}_{digits}.{ext}"}
    fnc = opt(argv, "-fnc", "name.#.ext")
    if fnc not in conventions:
        say(f"// Error: Invalid file name convention: {fnc}")
        return 1
    path = os.path.join(opt(argv, "-rd", "."), conventions[fnc])
    for frame in range(start, end + 1, step):
        say(f"// Info: Rendering frame {frame} with {renderer}")
        for pct in (0, 50, 100):
            if renderer == "arnold":
                say(f"00:00:01   512MB         |    {pct}% done - 12 rays/pixel")
            elif renderer == "vray":
                say(f"[2024/Jan/1|00:00:01] V-Ray: Rendering image...: {pct:6.2f}% [  0h  0m  0.1s] [  0h  0m  0.2s est]")
            elif renderer == "redshift":
                say(f"[Redshift]     Block {pct * 48 // 100}/48 (3,2) rendered by GPU 0 in 3ms")
            elif renderer == "renderman":
                say(f"R90000  {pct}%")
            else:
                say(f"Percentage of rendering done: {pct} (frame {frame})")
            if pct == 50:
                halfway()
        write(pad(path, frame), "maya", frame)
    say("Scene " + argv[-1] + " completed.")
    return 0


# --------------------------------------------------------------------------------------------- kick
def kick(argv: list[str]) -> int:
    scene = opt(argv, "-i")
    say("00:00:00    60MB         | log started Mon Jan  1 00:00:00 2024")
    say("00:00:00    60MB         | Arnold 7.2.1.0 [abcdef] linux x86_64")
    if not scene or not os.path.exists(scene):
        say(f"00:00:00    61MB ERROR   | [ass] can't open \"{scene}\": No such file or directory")
        return 1
    if MODE == "fatal":
        return fatal("00:00:00    62MB ERROR   | [driver_exr] unable to open output: disk full")
    out = opt(argv, "-o")
    for pct in range(0, 101, 25):
        say(f"00:00:01   256MB         |    {pct}% done - 9 rays/pixel")
        if pct == 50:
            halfway()
    if out:
        frame = int(re.findall(r"\d+", os.path.basename(out))[-1])
        write(out, "kick", frame)
    say("00:00:02   256MB         | render done")
    return 0


# --------------------------------------------------------------------------------------------- Houdini
def hython(argv: list[str]) -> int:
    code = opt(argv, "-c") or ""
    scene = search(r"hipFile\.load\('([^']*)'", code).group(1)
    if not os.path.exists(scene):
        say("Traceback (most recent call last):")
        say(f"hou.OperationFailed: The attempted operation failed. Unable to open file: {scene}")
        return 1
    if MODE == "fatal":
        return fatal("Error: ROP /out/mantra1 failed to render: licence check out failed")
    start, end, step = (int(x) for x in search(r"frame_range=\((-?\d+), (-?\d+), (\d+)\)", code).groups())
    output = search(r"output = (None|'[^']*')", code).group(1)
    pattern = output.strip("'") if output != "None" else None  # as Houdini: $F4 expands, # does not
    for frame in range(start, end + 1, step):
        say(f"Rendering frame {frame}")
        for pct in (0, 50, 100):
            say(f"ALF_PROGRESS {pct}%")
            if pct == 50:
                halfway()
        if pattern:
            write(houdini_pad(pattern, frame), "hython", frame)
    return 0


def husk(argv: list[str]) -> int:
    scene = argv[-1]
    if not os.path.exists(scene):
        say(f"[ERROR] Unable to open stage {scene}")
        return 1
    if MODE == "fatal":
        return fatal("[ERROR] Delegate BRAY_HdKarma failed: licence check out failed")
    start, count, inc = int(need(argv, "--frame")), int(opt(argv, "--frame-count", "1")), int(opt(argv, "--frame-inc", "1"))
    out = opt(argv, "-o")
    for n in range(count):
        frame = start + n * inc
        say(f"Render frame {frame}")
        for pct in (0, 50, 100):
            say(f"ALF_PROGRESS {pct}%")
            if pct == 50:
                halfway()
        if out:
            write(houdini_pad(out, frame), "husk", frame)
    return 0


# --------------------------------------------------------------------------------------------- Nuke
def nuke(argv: list[str]) -> int:
    script = argv[-1]
    if "-x" not in argv:
        say("nuke: -x is required for a batch render")
        return 2
    try:
        text = open(script).read()
    except OSError as exc:
        say(f"ERROR: cannot open {script}: {exc.strerror}")
        return 1
    if MODE == "fatal":
        return fatal("ERROR: Write1: Error writing file: No space left on device")
    pattern = search(r"^\s*file\s+(\S+)", text, re.M).group(1)
    frames = [f for i, a in enumerate(argv) if a == "-F" for f in frames_of(argv[i + 1])]
    for n, frame in enumerate(frames, 1):
        say(f"Frame {frame} ({n} of {len(frames)})")
        halfway()
        path = pad(pattern, frame)
        write(path, "nuke", frame)
        say(f"Writing {path} took 0.01 seconds")
    return 0


# --------------------------------------------------------------------------------------------- Katana
def katana(argv: list[str]) -> int:
    scene = opt(argv, "--katana-file")
    frames_text = opt(argv, "-t")
    if "x" in (frames_text or ""):
        say(f"[ERROR python.BatchRender]: cannot parse frame range {frames_text!r}")
        return 1
    try:
        text = open(need(argv, "--katana-file")).read()
    except OSError:
        say(f"[ERROR python.BatchRender]: Katana file not found: {scene}")
        return 1
    if MODE == "fatal":
        return fatal("[ERROR python.RenderLog]: Render failed (renderboot crashed)")
    pattern = search(r"^output=(\S+)", text, re.M).group(1)
    node = opt(argv, "--render-node")
    for frame in frames_of(need(argv, "-t")):
        say(f"[INFO python.BatchRender]: Rendering frame {frame} of node {node}")
        for pct in (0, 50, 100):
            say(f"[INFO python.RenderLog]: R00001 {pct}% done")
            if pct == 50:
                halfway()
        write(pad(pattern, frame), "katana", frame)
    return 0


# --------------------------------------------------------------------------------------------- V-Ray
def vray(argv: list[str]) -> int:
    scene = opt(argv, "-sceneFile")
    stamp = "[2024/Jan/1|00:00:00]"
    if not scene or not os.path.exists(scene):
        say(f"{stamp} error: Cannot load scene file {scene}")
        return 1
    if MODE == "fatal":
        return fatal(f"{stamp} error: Could not obtain a license")
    img = need(argv, "-imgFile")
    base, ext = os.path.splitext(img)
    try:
        frames = vray_frames_of(need(argv, "-frames"))
    except ValueError as exc:
        say(f"{stamp} error: Invalid frame range item \"{exc}\" in -frames={opt(argv, '-frames')}")
        return 1
    for frame in frames:
        say(f"{stamp} Starting frame {frame}")
        for pct in (0.0, 50.0, 100.0):
            say(f"{stamp} Rendering image...: {pct:6.2f}% [  0h  0m  0.1s] [  0h  0m  0.2s est]")
            if pct == 50.0:
                halfway()
        write(f"{base}.{frame:04d}{ext}", "vray", frame)
    return 0


# --------------------------------------------------------------------------------------------- Redshift
def redshift(argv: list[str]) -> int:
    scene = argv[0]
    say("Redshift Command-Line Renderer (version 3.5.16, API: 3516)")
    try:
        text = open(scene).read()
    except OSError:
        say(f"ERROR: Unable to open file {scene}")
        return 1
    if MODE == "fatal":
        return fatal("ERROR: License acquisition failed: no license available")
    frame = int(re.findall(r"\d+", os.path.basename(scene))[-1])
    pattern = search(r"^output=(\S+)", text, re.M).group(1)
    if "-oip" in argv:
        pattern = os.path.join(need(argv, "-oip"), os.path.basename(pattern))
    for block in (1, 24, 48):
        say(f"    Block {block}/48 (0,0) rendered by GPU 0 in 3ms")
        if block == 24:
            halfway()
    write(pad(pattern, frame), "redshift", frame)
    return 0


# --------------------------------------------------------------------------------------------- ffmpeg
def ffmpeg(argv: list[str]) -> int:
    pattern = need(argv, "-i")
    start = int(opt(argv, "-start_number", "0"))
    count = int(opt(argv, "-frames:v", "1"))
    out = argv[-1]
    say("ffmpeg version 6.0 Copyright (c) 2000-2023 the FFmpeg developers")
    first = pad(pattern, start)
    if not os.path.exists(first):
        say(f"[image2 @ 0x55d5] Could find no file with path '{pattern}' and index in the range {start}-{start + 4}")
        say(f"{pattern}: No such file or directory")
        return 1
    if MODE == "fatal":
        return fatal("Conversion failed!")
    for n in range(1, count + 1):
        if not os.path.exists(pad(pattern, start + n - 1)):
            break
        say(f"frame={n:5d} fps=0.0 q=28.0 size=       0kB time=00:00:00.04 bitrate=N/A speed=0x")
    write(out, "ffmpeg", start)
    return 0
