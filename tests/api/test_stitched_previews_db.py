"""A tile task's page shows its frame stitched (`dashboard/thumbs.stitched_images`): the stitch task that
assembles the tile's frame, and that task's image once written. Both databases, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from tests.api.test_dispatch_db import Bench

from thresher.server import views
from thresher.server.dashboard.thumbs import stitched_images


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def test_a_tile_task_shows_the_frame_its_stitch_task_wrote(bench: Bench, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out"
    out.mkdir()
    job = bench.submit(layers=[
        {"name": "beauty", "frames": "1-2", "template": "povray", "tiles": "2x1",
         "args": {"scene": "/shots/s.pov", "output": f"{out}/s.####.png", "width": 64, "height": 48}},
        {"name": "plain", "frames": "1", "args": {"command": ["true"]}}])
    with bench.db.read() as conn:
        tasks = views.list_tasks(conn, job, layer=None, state=None, limit=100, offset=0).items
        tiles = [t for t in tasks if t.layer == "beauty"]
        stitches = {t.frames: t.id for t in tasks if t.layer == "beauty-stitch"}
        second = next(t for t in tiles if t.frames == "2").model_dump(mode="json")
        assert stitched_images(conn, second) == {"task_id": stitches["2"], "images": []}  # not stitched yet
        Image.new("RGB", (64, 48), (200, 10, 10)).save(out / "s.0002.png")
        assert stitched_images(conn, second) == {"task_id": stitches["2"], "images": [{"index": 0, "name": "s.0002.png"}]}
        plain = next(t for t in tasks if t.layer == "plain").model_dump(mode="json")
        assert stitched_images(conn, plain) is None  # not a tile
