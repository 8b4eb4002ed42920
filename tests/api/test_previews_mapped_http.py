"""Previews follow the job's path mapping and the task's wedge value (`dashboard/thumbs.outputs_of` builds the
outputs as the assignment does, for the server's OS): a job submitted with `Z:/` paths and a wedge shows
each task's own image; a tile task shows its frame stitched. A real server on both databases, an agent played over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_failure_pages_http import _session


def test_a_path_mapped_wedged_job_previews_each_tasks_own_file(farm: Any, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "shots"
    out.mkdir()
    job_id = farm.api.post("/jobs", {
        "name": "mapped", "path_mapping": [{"from": "Z:/shots", "to": {"linux": str(out), "darwin": str(out)}}],
        "layers": [{"name": "r", "frames": "1", "wedge": [10, 20], "args": {
            "command": ["true"], "outputs": ["Z:/shots/w{wedge}.####.png"]}}]})["id"]
    enrolled = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "node-a", "cores": 1,
                                                                               "memory_mb": 2048})
    agent = farm.client(token=enrolled["token"])
    for _ in range(2):
        (work,) = agent.post("/agent/work?wait=5", {})["assignments"]
        wedge = 10 if work["outputs"][0].endswith("w10.0001.png") else 20
        assert work["outputs"] == [f"{out}/w{wedge}.0001.png"]  # the node's view: mapped, its wedge
        Image.new("RGB", (64, 32), (wedge, 10, 10)).save(out / f"w{wedge}.0001.png")
        agent.post("/agent/finish", {"reports": [{"attempt_id": work["attempt_id"], "status": "succeeded",
                                                  "exit_code": 0, "log_size": 0}]})
    tasks = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
    assert [t["state"] for t in tasks] == ["succeeded", "succeeded"]
    client = _session(farm)
    job_page = client.get(f"/jobs/{job_id}").text
    for task, wedge in zip(tasks, (10, 20), strict=True):
        thumb = f"/ui/thumb/{task['id']}/0"
        assert f'src="{thumb}"' in job_page
        page = client.get(f"/tasks/{task['id']}").text
        assert f"w{wedge}.0001.png" in page and f'src="{thumb}"' in page and "Stitched frame" not in page
        answer = client.get(thumb)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/")

    # a tile task's page shows its frame stitched (`thumbs.stitched_images`), once its stitch task wrote it
    tiled = farm.api.post("/jobs", {"name": "tiled", "layers": [
        {"name": "beauty", "frames": "1", "template": "povray", "tiles": "2x1",
         "args": {"scene": "/shots/s.pov", "output": f"{out}/t.####.png", "width": 64, "height": 48}}]})["id"]
    tiled_tasks = farm.api.get(f"/jobs/{tiled}/tasks")["items"]
    tile = next(t["id"] for t in tiled_tasks if t["layer"] == "beauty")
    stitch = next(t["id"] for t in tiled_tasks if t["layer"] == "beauty-stitch")
    page = client.get(f"/tasks/{tile}").text
    assert "Stitched frame" in page and f'href="/tasks/{stitch}"' in page and "not stitched yet" in page
    Image.new("RGB", (64, 48), (0, 200, 0)).save(out / "t.0001.png")
    assert f'src="/ui/thumb/{stitch}/0"' in client.get(f"/tasks/{tile}").text
    assert client.get(f"/ui/thumb/{stitch}/0").headers["content-type"].startswith("image/")
