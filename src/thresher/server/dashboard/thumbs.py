"""Output previews: scaled-down images of the files a task declared as its outputs.

Only paths the job itself declared (the template's `outputs` for that task) are ever opened, so the
route cannot be used to read arbitrary files from the server. PNG, JPEG, TIFF, BMP and WebP are read
by Pillow. Pillow has no EXR reader: EXR files are read with the ASWF `OpenEXR` package (+ numpy),
their linear light clipped to [0, 1] and encoded as 8-bit sRGB. Where that package is missing the
answer says so ("cannot preview EXR: ..."), and the dashboard shows that reason.
"""

from __future__ import annotations

import io
import os
import platform
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import Connection

from thresher.agent.settings import AgentSettings
from thresher.model.frames import Chunk, frame_bounds
from thresher.model.paths import PathRule, map_path, normalize_os
from thresher.server.db.queries import dashboard as q
from thresher.server.errors import NotFound
from thresher.templates import get_template
from thresher.templates.base import Target

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp"}
THUMB_PX = 480
_CACHE_SIZE = 256


OUTPUT_MTIME_SLACK_S: float = AgentSettings.model_fields["output_mtime_slack_s"].default
"""How far a file's modification time may fall outside its attempt's time and still count as written by it:
the agent's own slack for its output checks (agent/output_checks.py), as file servers keep coarse times."""


@dataclass(frozen=True)
class TaskOutputs:
    """A task's declared outputs, and the time of its latest attempt (None: it never ran)."""

    paths: list[str]
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def written_by_attempt(self, path: str) -> bool:
        """Whether the file at `path` was modified while the task's latest attempt ran (within the slack).

        A later job writing the same path, or an older render left there, is not this task's output:
        its page must not preview it as if it were. A task that never ran shows what is there."""
        if self.started_at is None:
            return True
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return False
        if mtime < _epoch(self.started_at) - OUTPUT_MTIME_SLACK_S:
            return False
        return self.ended_at is None or mtime <= _epoch(self.ended_at) + OUTPUT_MTIME_SLACK_S


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def task_outputs(conn: Connection, task_id: int) -> TaskOutputs:
    """The files a task must write, as the template computes them (absolute when the layer has a cwd)."""
    row = conn.execute(q.TASK_OUTPUTS, {"task_id": task_id}).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    return TaskOutputs(outputs_of(row), row.attempt_started_at, row.attempt_ended_at)


SERVER_OS = normalize_os(platform.system())
"""The OS the server reads output files on: a job's path mapping is applied for it, as for a node."""


def stitched_images(conn: Connection, task: Mapping[str, Any]) -> dict[str, Any] | None:
    """For a tile task (its page's `task`, as `views.get_task` dumps it): the stitch task that puts its frame
    back together and that task's images its attempt wrote (`{"task_id", "images": [{"index", "name"}]}`), so
    a tile's page shows the whole frame; None for a task that is not a tile or whose stitch task is unknown."""
    if "tile" not in (task.get("part") or {}):
        return None
    stitch = next((row.id for row in conn.execute(q.STITCH_LAYERS, {"job_id": task["job_id"]})
                   if list(row.depends_on or []) == [task["layer"]]), None)
    first = conn.execute(q.TASK_FIRST_FRAME, {"task_id": task["id"]}).scalar()
    found = conn.execute(q.TASK_AT_FRAME, {"layer_id": stitch, "frame": first}).scalar() if stitch else None
    if found is None:
        return None
    outputs = task_outputs(conn, found)
    images = [{"index": i, "name": os.path.basename(path)} for i, path in enumerate(outputs.paths[:PREVIEWS_OF_STITCH])
              if is_image(path) and os.path.isfile(path) and outputs.written_by_attempt(path)]
    return {"task_id": found, "images": images}


PREVIEWS_OF_STITCH = 4  # the stitched frames a tile's page shows (a tile task is one frame, usually)


def outputs_of(row: Any) -> list[str]:
    """The files a task declared, as the server sees them: built as its assignment is (`Template.build`),
    with its tile or wedge value and its job's path mapping for the server's OS (a job submitted with
    `Z:/` paths previews from where the server mounts that share)."""
    try:
        template = get_template(row.template)
        rules = [PathRule.model_validate(rule) for rule in (row.path_mapping or [])]
        chunk = Chunk(row.idx, row.frames, row.frame_start, row.frame_end, row.frame_step, row.frame_count,
                      row.part or None, layer_frames=frame_bounds(row.layer_frames))
        paths = template.build(template.parse_args(row.args), chunk, Target(os=SERVER_OS), rules).outputs
    except Exception:  # a template that went away or changed: no previews, never a 500
        return []
    cwd = map_path(row.cwd, rules, SERVER_OS) if row.cwd else None
    if cwd:
        paths = [p if os.path.isabs(p) else os.path.join(cwd, p) for p in paths]
    return paths


def is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


class ThumbnailCache:
    """Small LRU of encoded thumbnails keyed by (path, mtime, size)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, float, int], tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[bytes, str]:
        """(image bytes, media type); raises FileNotFoundError, or ValueError when it cannot be read."""
        stat = os.stat(path)
        key = (path, stat.st_mtime, stat.st_size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = _render(path)
        with self._lock:
            self._items[key] = value
            while len(self._items) > _CACHE_SIZE:
                self._items.popitem(last=False)
        return value


def _render(path: str) -> tuple[bytes, str]:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow is a dependency
        raise ValueError("the server has no imaging library (pip install pillow)") from exc
    if Path(path).suffix.lower() == ".exr":
        return _encode(read_exr(path))
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (THUMB_PX, THUMB_PX))
            opened.thumbnail((THUMB_PX, THUMB_PX))
            image: Image.Image = opened
            if image.mode not in ("RGB", "RGBA", "L"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            out = io.BytesIO()
            if image.mode == "RGBA":
                image.save(out, "PNG", optimize=False)
                return out.getvalue(), "image/png"
            image.save(out, "JPEG", quality=82)
            return out.getvalue(), "image/jpeg"
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"the server cannot read {Path(path).suffix or 'this'} images: {exc}") from exc


def _encode(image: Any) -> tuple[bytes, str]:
    image.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue(), "image/jpeg"


def _pick_exr_channels(channels: dict[str, Any]) -> Any:
    """The pixels to show from an EXR's channels (OpenEXR groups R, G, B[, A] of a layer into one
    array): the plain RGB(A), else a beauty/combined layer, else any colour layer, else one channel."""
    colour = {name: ch.pixels for name, ch in channels.items()
              if getattr(ch.pixels, "ndim", 0) == 3 and ch.pixels.shape[2] in (3, 4)}
    for name in ("RGBA", "RGB"):
        if name in colour:
            return colour[name]
    for hint in ("combined", "beauty", "rgba", "rgb"):
        for name in sorted(colour):
            if name.lower().rsplit(".", 1)[-1] == hint or name.lower().endswith("." + hint):
                return colour[name]
    if colour:
        return colour[sorted(colour)[0]]
    for name in ("Y", "L", "Z"):
        if name in channels:
            return channels[name].pixels
    if not channels:
        raise ValueError("it has no channels")
    return channels[sorted(channels)[0]].pixels


def read_exr(path: str) -> Any:
    """An EXR file as an 8-bit sRGB Pillow image (linear light clipped to [0, 1]; alpha dropped,
    since EXR colour is premultiplied: the preview is the image over black)."""
    try:
        import numpy as np
        import OpenEXR
    except ImportError as exc:
        raise ValueError("cannot preview EXR: the server has no EXR reader "
                         "(install the OpenEXR and numpy packages)") from exc
    from PIL import Image

    try:
        with OpenEXR.File(path) as exr:
            pixels = _pick_exr_channels(exr.channels())
            # a preview needs at most ~2 source pixels per thumbnail pixel: stride big frames first
            step = max(1, max(pixels.shape[0], pixels.shape[1]) // (2 * THUMB_PX))
            data = np.asarray(pixels[::step, ::step], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"cannot preview EXR {Path(path).name}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsupported file: say why, never a 500
        why = (str(exc).splitlines() or [type(exc).__name__])[0].replace(path, Path(path).name).strip("'\" ")
        raise ValueError(f"cannot preview EXR {Path(path).name}: {why}") from exc
    if data.ndim == 3:
        data = data[:, :, :3]
    data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    srgb = np.where(data <= 0.0031308, 12.92 * data, 1.055 * np.power(data, 1 / 2.4) - 0.055)
    return Image.fromarray(np.round(srgb * 255.0).astype(np.uint8), "RGB" if srgb.ndim == 3 else "L")
