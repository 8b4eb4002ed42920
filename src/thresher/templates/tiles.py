"""Tiled layers: which tile a task renders, its pixel box, and the file it writes.

A tiled layer renders every frame as X by Y tiles, one task each, then a stitch task per chunk puts
each frame back together (`thresher.tools.stitch`). The templates and the stitch tool read the same
grid from here, so a tile is always cut and pasted at the same pixels.
"""

from __future__ import annotations

import os

from thresher.model.frames import Chunk
from thresher.model.padding import PADDING

#: The image files the stitch tool (Pillow) can both read and write, so tiled layers can use them.
STITCH_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".tga", ".bmp", ".webp", ".ppm"})


def tile_of(chunk: Chunk) -> tuple[int, int, int, int] | None:
    """(col, row, tiles_x, tiles_y) of a tile task, else None."""
    part = chunk.part or {}
    if "tile" not in part:
        return None
    (col, row), (nx, ny) = part["tile"], part["tiles"]
    return int(col), int(row), int(nx), int(ny)


def tile_region(width: int, height: int, col: int, row: int, nx: int, ny: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom; right and bottom exclusive) of tile (col, row) in a grid of
    nx by ny tiles, row 0 at the top. Templates and the stitch tool share this, so they always agree."""
    return (col * width // nx, row * height // ny, (col + 1) * width // nx, (row + 1) * height // ny)


def tile_path(pattern: str, col: int, row: int) -> str:
    """Where a tile of a frame goes: `/r/shot.####.png` -> `/r/shot.tile_1_0.####.png` (the frame number
    stays last before the extension, where every renderer can put it)."""
    match = PADDING.search(pattern)
    if match:
        return f"{pattern[:match.start()]}tile_{col}_{row}.{pattern[match.start():]}"
    base, ext = os.path.splitext(pattern)
    return f"{base}.tile_{col}_{row}{ext}"


def output_for(chunk: Chunk, pattern: str | None) -> str | None:
    """The output pattern this task writes: the tile's own file for tile tasks, else the pattern."""
    tile = tile_of(chunk)
    if pattern and tile:
        return tile_path(pattern, tile[0], tile[1])
    return pattern


def stitch_problem(output: str | None) -> str | None:
    """Why the stitch tool could not put a tiled layer's frames back together in `output`, else None."""
    ext = os.path.splitext(output or "")[1].lower()
    if output and ext not in STITCH_EXTENSIONS:
        return (f"tiles are stitched with Pillow, which cannot read and write {ext or 'extensionless'} "
                f"files: render tiled layers to {', '.join(sorted(STITCH_EXTENSIONS))}, or leave tiles out")
    return None
