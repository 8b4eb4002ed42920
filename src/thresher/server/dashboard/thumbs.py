"""Output previews: scaled-down images of the files a task declared as its outputs.

Only paths the job itself declared (the template's `outputs` for that task) are ever opened, so the
route cannot be used to read arbitrary files from the server. PNG and JPEG always work (Pillow); EXR
works where the installed Pillow (or a plug-in) can read it, otherwise the answer says so.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from thresher.model.frames import Chunk
from thresher.server.db.tables import layers, tasks
from thresher.server.errors import NotFound
from thresher.templates import get_template

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp"}
THUMB_PX = 480
_CACHE_SIZE = 256


def task_outputs(conn: Connection, task_id: int) -> list[str]:
    """The files a task must write, as the template computes them (absolute when the layer has a cwd)."""
    row = conn.execute(select(tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end, tasks.c.frame_step,
                              tasks.c.frame_count, layers.c.template, layers.c.args, layers.c.cwd)
                       .join(layers, layers.c.id == tasks.c.layer_id).where(tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    return outputs_of(row)


def outputs_of(row: Any) -> list[str]:
    try:
        template = get_template(row.template)
        chunk = Chunk(row.idx, row.frames, row.frame_start, row.frame_end, row.frame_step, row.frame_count)
        paths = template.command(template.parse_args(row.args), chunk).outputs
    except Exception:  # a template that went away or changed: no previews, never a 500
        return []
    if row.cwd:
        paths = [p if os.path.isabs(p) else os.path.join(row.cwd, p) for p in paths]
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
    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMB_PX, THUMB_PX))
            image.thumbnail((THUMB_PX, THUMB_PX))
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
