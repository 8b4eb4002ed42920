"""The cores a layer reserves reach its tasks: in the assignment (for the thread variables the agent sets)
and in the command the template built, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.test_dispatch_db import Bench

from thresher.client.http import ApiError


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def test_the_assignment_carries_the_reserved_cores_and_the_layers_frames(bench: Bench) -> None:
    bench.submit(layers=[{"name": "b", "template": "blender", "frames": "1-2", "resources": {"cores": 3},
                          "args": {"scene": "/p/s.blend", "output": "/r/o.####.png"}},
                         {"name": "p", "template": "povray", "frames": "1-3", "resources": {"cores": 3},
                          "args": {"scene": "/p/a.pov", "output": "/r/a.####.png"}}])
    node = bench.node("n1", cores=16)
    found = {a["layer"] + a["frames"]: a for a in bench.work(node)}
    assert {a["cores"] for a in found.values()} == {3}
    blender = found["b1"]["argv"]
    assert blender[blender.index("-t") + 1] == "3"
    povray = found["p3"]["argv"]
    assert "+WT3" in povray and "+KI0.0" in povray and "+KF4999.0" in povray  # clock 1.0 at frame 3


def test_a_gpu_device_without_reserved_gpus_is_a_422_at_submit(farm) -> None:
    layer = {"name": "r", "template": "blender", "frames": "1", "args": {"scene": "/p/s.blend", "device": "GPU"}}
    with pytest.raises(ApiError) as info:
        farm.api.post("/jobs", {"name": "gpu", "layers": [layer]})
    (error,) = info.value.body["errors"]
    assert info.value.status == 422 and error["field"] == "layers.0.args.device"
    assert "resources.gpus" in error["message"]
