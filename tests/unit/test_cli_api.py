"""The Python API's polling helpers and the demo job, without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from thresher.cli.demo import demo_job_spec, find_examples
from thresher.cli.localfarm import split_cores
from thresher.cli.logs import parse_log_target, pick_attempt
from thresher.client.api import Thresher
from thresher.client.http import HttpClient, ServerUnreachable
from thresher.wire.jobs import Attempt


class ScriptedHttp(HttpClient):
    """Stands in for HttpClient: answers GETs from a list (exceptions are raised)."""

    server = "http://fake"

    def __init__(self, answers: list[Any]) -> None:  # no super().__init__: no transport, every answer is scripted
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append((path, params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass


def job(state: str) -> dict[str, Any]:
    """A job as the server answers `GET /jobs/1`."""
    return {"id": 1, "name": "j", "owner": "ana", "project": "p", "sequence": None, "shot": None, "priority": 50,
            "state": state, "paused": False, "submitted_at": "2024-01-01T10:00:00Z", "finished_at": None,
            "counts": {}, "total_tasks": 0, "progress": 100.0, "layers": [], "depends_on": [], "spec": {}}


def task(task_id: int) -> dict[str, Any]:
    return {"id": task_id, "job_id": 9, "layer_id": 1, "layer": "a", "index": task_id, "frames": str(task_id),
            "state": "ready", "tries": 0, "lost": 0, "node": None, "attempt_id": None, "progress": None,
            "started_at": None, "ended_at": None, "part": None}


def attempt(attempt_id: int, number: int) -> Attempt:
    return Attempt(id=attempt_id, task_id=1, number=number, node="n1", state="failed", started_at=None, ended_at=None,
                   exit_code=1, cpu_s=None, peak_rss_mb=None, reason=None, log_size=0, gpus=[])


def piece(data: str, next_offset: int, complete: bool) -> dict[str, Any]:
    return {"attempt_id": 5, "offset": next_offset - len(data), "data": data, "next_offset": next_offset,
            "complete": complete}


def test_wait_returns_final_job_and_reports_updates() -> None:
    http = ScriptedHttp([job("queued"), job("running"), job("succeeded")])
    seen: list[str] = []
    final = Thresher(http=http).wait(1, on_update=lambda j: seen.append(j.state), interval=0.01)
    assert final.state == "succeeded"
    assert seen == ["queued", "running", "succeeded"]


def test_wait_rides_through_a_short_outage() -> None:
    http = ScriptedHttp([ServerUnreachable("down"), ServerUnreachable("down"), job("failed")])
    assert Thresher(http=http).wait(1, interval=0.01).state == "failed"


def test_wait_gives_up_after_the_outage_grace() -> None:
    http = ScriptedHttp([ServerUnreachable("down")] * 100)
    with pytest.raises(ServerUnreachable):
        Thresher(http=http).wait(1, interval=0.01, outage_grace=0.05)


def test_wait_timeout() -> None:
    http = ScriptedHttp([job("running")] * 100)
    with pytest.raises(TimeoutError, match="still running"):
        Thresher(http=http).wait(1, timeout=0.05, interval=0.01)


def test_follow_log_follows_offsets_until_complete() -> None:
    http = ScriptedHttp([
        piece("a", 1, False),
        ServerUnreachable("restart"),
        piece("", 1, False),
        piece("bc", 3, True),
    ])
    assert list(Thresher(http=http).follow_log(5, interval=0.01)) == ["a", "bc"]
    assert [params["offset"] for _, params in http.calls] == [0, 1, 1, 1]


def test_all_tasks_pages() -> None:
    http = ScriptedHttp([{"items": [task(1), task(2)], "total": 3}, {"items": [task(3)], "total": 3}])
    assert [t.id for t in Thresher(http=http).all_tasks(9, page=2)] == [1, 2, 3]
    assert [params for _, params in http.calls] == [{"layer": None, "state": None, "limit": 2, "offset": 0, "frame": None},
                                                    {"layer": None, "state": None, "limit": 2, "offset": 2, "frame": None}]


def test_all_nodes_stops_at_an_empty_page() -> None:
    """A farm that shrank while it was read: the pages end early, and so does the walk."""
    http = ScriptedHttp([{"items": [], "total": 5}])
    assert Thresher(http=http).all_nodes() == []
    assert http.calls == [("/nodes", {"limit": 1000, "offset": 0, "state": None, "name": None})]  # None: not sent


@pytest.mark.parametrize("value,expected", [("12", ("task", 12)), ("a7", ("attempt", 7)),
                                            ("attempt:7", ("attempt", 7)), ("task:3", ("task", 3))])
def test_parse_log_target(value: str, expected: tuple[str, int]) -> None:
    assert parse_log_target(value) == expected


def test_pick_attempt() -> None:
    attempts = [attempt(5, 1), attempt(9, 2)]
    assert pick_attempt(attempts, None) == attempts[1]
    assert pick_attempt(attempts, 1) == attempts[0]
    assert pick_attempt(attempts, 3) is None
    assert pick_attempt([], None) is None


def test_split_cores() -> None:
    assert split_cores(16, 2) == 8
    assert split_cores(2, 4) == 1
    assert split_cores(None, 1) == 1


@pytest.mark.parametrize("renderer", ["povray", "python"])
def test_demo_job_is_valid_and_writes_one_png_per_frame(renderer: str, tmp_path: Path) -> None:
    from thresher.model.frames import iter_chunks
    from thresher.model.spec import JobSpec
    from thresher.templates.command import CommandArgs, CommandTemplate

    spec = demo_job_spec("1-3", tmp_path, renderer, find_examples())
    job = JobSpec.model_validate(spec)
    template = CommandTemplate()
    args = template.parse_args(job.layers[0].args)
    assert isinstance(args, CommandArgs)  # nothing in the demo's args waits for a frame
    lines = [template.command(args, chunk) for chunk in iter_chunks("1-3", 1)]
    assert [line.outputs for line in lines] == [[str(tmp_path / f"frame_{f:04d}.png")] for f in (1, 2, 3)]
    assert all(str(tmp_path / f"frame_{f:04d}.png") in " ".join(line.argv) for f, line in zip((1, 2, 3), lines, strict=True))
    assert (find_examples() / ("demo_scene.pov" if renderer == "povray" else "render_frame.py")).exists()


def test_render_frame_writes_a_png(tmp_path: Path) -> None:
    import importlib.util
    import struct
    import zlib

    path = find_examples() / "render_frame.py"
    spec = importlib.util.spec_from_file_location("render_frame", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "f.png"
    assert module.main(["--frame", "2", "--frames", "4", "--output", str(out), "--width", "16", "--height", "8"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (16, 8)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8:start - 4])[0]
    assert len(zlib.decompress(data[start:start + length])) == 8 * (1 + 16 * 3)
