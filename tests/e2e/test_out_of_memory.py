"""Out of memory, for real: an agent whose task uses far more memory than it reserved and than the node
offers stops it (its memory guard), reports it out of memory, and the server retries it with more."""

from __future__ import annotations

import math
import signal
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# Builds ~600 MB (written, so resident) and sleeps: far over its 100 MB reservation and the node's 300 MB.
_HOG = "import time; b = bytearray(b'x') * (600 * 1024 * 1024); print('allocated', flush=True); time.sleep(60)"


def test_a_task_over_its_memory_is_stopped_and_retried_with_more(farm: Any) -> None:
    farm.start_agent("big", cores=1, memory=4096)   # known to the server (the cap), then away
    farm.kill_agent("big", signal.SIGTERM)
    farm.wait_for_node("big", state="down")
    farm.start_agent("small", cores=1, memory=300)
    job = {"name": "hog", "layers": [{"name": "render", "frames": "1", "retries": 2,
                                      "resources": {"memory_mb": 100},
                                      "args": {"command": [sys.executable, "-c", _HOG]}}]}
    job_id = farm.api.post("/jobs", job)["id"]
    (task,) = farm.api.get(f"/jobs/{job_id}/tasks")["items"]

    def first_attempt_ended() -> dict[str, Any] | None:
        items = farm.api.get(f"/tasks/{task['id']}/attempts")["items"]
        return items[0] if items and items[0]["state"] not in ("running", "killing") else None

    first = farm.wait_for(first_attempt_ended, timeout=60, interval=0.2, message="the hog to be stopped")
    assert first["state"] == "failed" and first["out_of_memory"] is True, first
    assert first["memory_mb"] == 100 and first["peak_rss_mb"] > 300, first
    assert first["reason"].startswith("out of memory: used "), first
    retry_mb = min(math.ceil(1.5 * first["peak_rss_mb"]), 4096)
    assert first["reason"].endswith(f"; retrying with {retry_mb} MB"), first

    # The retry needs more than the small node offers: it waits for the big one, and runs there.
    farm.restart_agent("big")
    second = farm.wait_for(lambda: (items := farm.api.get(f"/tasks/{task['id']}/attempts")["items"])[1:]
                           and items[1], timeout=60, interval=0.2, message="the retry to start")
    assert second["node"] == "big" and second["memory_mb"] == retry_mb, second
    assert second["memory_mb"] >= min(1.5 * first["peak_rss_mb"], 4096)
    farm.api.post(f"/jobs/{job_id}/kill")
