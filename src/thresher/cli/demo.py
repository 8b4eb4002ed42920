"""`thresher demo`: a farm on this machine renders a short animation with a real renderer.

It shows the whole path a studio job takes (server, agents, dispatch, command template, outputs
checked, logs) in one command. The farm lives in a throw-away folder with its own THRESHER_HOME so
the demo never replaces the user's saved server and token; only the frames are kept. When the job is
done the farm stays up with a one-time dashboard login link printed (server/dashboard/once.py), so the
user sees the frames in the dashboard, until Ctrl+C; `--exit` stops at once (scripts and tests).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from thresher.cli.common import console, err
from thresher.cli.farm import sigterm_as_interrupt
from thresher.cli.localfarm import FarmError, LocalFarm, free_port, split_cores, split_memory
from thresher.cli.views import done_count
from thresher.client.api import Thresher
from thresher.client.http import ApiError
from thresher.model.failure_summary import plural
from thresher.model.frames import parse_frames
from thresher.model.states import JobState, TaskState
from thresher.wire.jobs import Job

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
POVRAY_INCLUDE = Path("/usr/share/povray-3.7/include")


def find_examples() -> Path:
    """The repository's examples folder (the demo scene and the pure-Python renderer)."""
    override = os.environ.get("THRESHER_EXAMPLES")
    return Path(override) if override else EXAMPLES_DIR


def count_frames(frames: str) -> int:
    return sum(1 for _ in parse_frames(frames))


DEMO_PROJECT = "demo"


def ensure_demo_project(client: Thresher) -> None:
    """Make the demo's project if the farm lacks it: a server refuses submits to unknown projects
    unless `create_unknown_projects` is set, and a fresh farm has none but its default."""
    if DEMO_PROJECT not in {p.name for p in client.projects()}:
        try:
            client.add_project(DEMO_PROJECT)
        except ApiError as exc:
            if exc.status != 409:  # made meanwhile by another demo against the same farm: fine
                raise


def demo_job_spec(frames: str, output: Path, renderer: str, examples: Path) -> dict[str, Any]:
    """The sample animation job: one task per frame, each must write its PNG.

    `renderer` is "povray" (Debian's POV-Ray on PATH) or "python" (examples/render_frame.py).
    """
    total = count_frames(frames)
    pattern = str(output / "frame_{frame:04d}.png")
    if renderer == "povray":
        command = ["povray", "-D", "+FN", "+W320", "+H240", "+A0.3", "+WT1",
                   f"+I{examples / 'demo_scene.pov'}", f"+O{pattern}", "+K{frame}", f"Declare=NFRAMES={total}"]
        if POVRAY_INCLUDE.is_dir():
            command.insert(1, f"+L{POVRAY_INCLUDE}")
    else:
        command = [sys.executable, str(examples / "render_frame.py"), "--frame", "{frame}",
                   "--frames", str(total), "--output", pattern]
    return {
        "name": f"demo animation ({renderer})",
        "project": DEMO_PROJECT,
        "priority": 50,
        "layers": [{
            "name": "render",
            "template": "command",
            "frames": frames,
            "chunk": 1,
            "resources": {"cores": 1, "memory_mb": 256},
            "retries": 1,
            "timeout": 600,
            # POV-Ray's default I/O policy lets it write in its working folder.
            "cwd": str(output),
            "args": {"command": command, "outputs": [str(output / "frame_####.png")]},
        }],
    }


def pick_renderer(examples: Path) -> str:
    if shutil.which("povray") and (examples / "demo_scene.pov").exists():
        return "povray"
    return "python"


def demo(
    frames: Annotated[str, typer.Option("--frames", "-f", help="Frames to render.")] = "1-24",
    agents: Annotated[int, typer.Option("--agents", "-a", min=1, help="Local agents.")] = 2,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the frames go.")] = Path("demo-output"),
    renderer: Annotated[str | None, typer.Option("--renderer", help="povray or python (default: povray when "
                                                 "installed)", show_default=False)] = None,
    keep_farm: Annotated[bool, typer.Option("--keep-farm", help="Keep the farm's folder (database, logs).")]
    = False,
    exit_: Annotated[bool, typer.Option("--exit", help="Stop the farm as soon as the job is done (for scripts) "
                                        "instead of keeping it and its dashboard up until Ctrl+C.")] = False,
) -> None:
    """Start a farm here, render a short animation on it, show it in the dashboard until Ctrl+C."""
    try:
        total = count_frames(frames)
    except Exception as exc:  # noqa: BLE001 - any frame-spec problem is a usage error
        raise typer.BadParameter(str(exc), param_hint="--frames") from None
    examples = find_examples()
    renderer = renderer or pick_renderer(examples)
    if renderer not in ("povray", "python"):
        raise typer.BadParameter("use povray or python", param_hint="--renderer")
    needed = examples / ("demo_scene.pov" if renderer == "povray" else "render_frame.py")
    if not needed.exists():
        err(f"error: {needed} not found; run the demo from a Thresher checkout or set THRESHER_EXAMPLES")
        raise typer.Exit(1)
    if renderer == "povray" and not shutil.which("povray"):
        err("error: povray is not on PATH (apt install povray), or use --renderer python")
        raise typer.Exit(1)

    output = output.expanduser().resolve()
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("frame_*.png"):
        old.unlink()
    home = Path(tempfile.mkdtemp(prefix="thresher-demo-"))
    farm = LocalFarm(data_dir=home / "data", port=free_port(), agents=agents,
                     cores_per_agent=split_cores(os.cpu_count(), agents),
                     memory_per_agent_mb=split_memory(None, agents),
                     env={"THRESHER_HOME": str(home)}, node_prefix="demo", save_client_config=False,
                     say=lambda message: console.print(f"[dim]{escape(message)}[/dim]", markup=True))
    job: Job | None = None
    code = 1
    staying = False
    with sigterm_as_interrupt():
        try:
            farm.start()
            console.print(f"farm up at {farm.url} with {plural(agents, 'agent')}; "
                          f"rendering {plural(total, 'frame')} with {renderer}")
            with farm.client() as client:
                ensure_demo_project(client)
                job = client.submit(demo_job_spec(frames, output, renderer, examples))
                console.print(f"submitted job {job.id}")
                job = _watch(client, job.id, total)
                if job.state != JobState.SUCCEEDED:
                    _explain_failure(client, job)
            code = 0 if job.state == JobState.SUCCEEDED else 1
            if not exit_:
                staying = True
                _stay_up(farm, job)
        except FarmError as exc:
            err(f"error: {exc}")
            code = 1
        except KeyboardInterrupt:
            if not staying:  # Ctrl+C after the job is how the demo ends: its result stands
                err("interrupted")
                code = 130
        finally:
            farm.stop()
    written = sorted(output.glob("frame_*.png"))
    state = job.state if job else "not run"
    console.print(f"job {state}: {len(written)} of {plural(total, 'frame')} written to [bold]{escape(str(output))}[/bold]",
                  markup=True)
    if keep_farm or code != 0:
        console.print(f"farm folder kept: {home} (database, logs in {farm.log_dir})")
    else:
        shutil.rmtree(home, ignore_errors=True)
    raise typer.Exit(code)


def _stay_up(farm: LocalFarm, job: Job) -> None:
    """Keep the farm up and say how to see the job in the dashboard, until Ctrl+C (KeyboardInterrupt)."""
    from thresher.cli.farm import login_link, once_minutes

    console.print(f"[bold green]The farm stays up[/bold green]: open {login_link(farm)} to see job {job.id} in "
                  f"the dashboard (the link logs a browser in once, within {once_minutes()} minutes).", markup=True)
    console.print("Ctrl+C stops the farm (--exit stops it at once next time).")
    sys.stdout.flush()
    while (problem := farm.check()) is None:
        time.sleep(0.5)
    raise FarmError(problem)


def _watch(client: Thresher, job_id: int, total: int) -> Job:
    """Wait for the job with a progress bar of finished tasks."""
    with Progress(TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        bar = progress.add_task("", total=total)

        def update(job: Job) -> None:
            counts = job.counts
            progress.update(bar, completed=done_count(counts), total=job.total_tasks or total,
                            description=f"{counts.running} running, {counts.failed} failed")

        return client.wait(job_id, on_update=update)


def _explain_failure(client: Thresher, job: Job) -> None:
    """Show the end of the first failed task's log: the demo should say why, not just that."""
    failed = client.tasks(job.id, state=TaskState.FAILED, limit=1).items
    if not failed or not failed[0].attempt_id:
        return
    piece = client.log(failed[0].attempt_id)
    tail = "\n".join(piece.data.splitlines()[-15:])
    err(f"task {failed[0].id} (frames {failed[0].frames}) failed; end of its log:\n{tail}")
