"""A log read in bounded pages and its bytes kept whatever the task printed (issue 13, defects 2-4), on
SQLite and PostgreSQL: pages of at most the asked limit (and the server's `log_page_max_bytes`) that say
where the next starts and whether more is there; NUL, bytes that are not UTF-8 and lone surrogates stored
and read back at their exact offsets; a real server's memory that does not grow with the log it reads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
from sqlalchemy import select
from tests.api.test_dispatch_db import Bench, layer

from thresher.client.api import Thresher
from thresher.client.http import HttpClient
from thresher.server import lifecycle, views
from thresher.server.db.tables import log_chunks

MB = 1024 * 1024


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _attempt(bench: Bench) -> tuple[int, int]:
    node = bench.node("n1")
    bench.submit(layers=[layer(frames="1")])
    (work,) = bench.work(node)
    return node, work["attempt_id"]


def _append(bench: Bench, node: int, attempt: int, offset: int, data: str) -> int:
    with bench.db.write() as conn:
        size, gap = lifecycle.append_log(conn, node, attempt, offset, data)
    assert not gap
    return size


def _pages(bench: Bench, attempt: int, limit: int) -> list[Any]:
    out = []
    offset = 0
    while True:
        with bench.db.read() as conn:
            page = views.read_log(conn, attempt, offset=offset, limit=limit)
        out.append(page)
        if not page.more:
            return out
        assert page.next_offset > offset
        offset = page.next_offset


def test_a_log_is_read_in_pages_of_at_most_the_limit(bench: Bench) -> None:
    node, attempt = _attempt(bench)
    text = "".join(f"é line {i:05d}\n" for i in range(3000))  # a two-byte character on every line
    size = 0
    for at in range(0, len(text), 700):
        size = _append(bench, node, attempt, len(text[:at].encode()), text[at:at + 700])
    assert size == len(text.encode())
    pages = _pages(bench, attempt, limit=1000)
    assert all(len(p.data.encode()) <= 1000 for p in pages)
    assert all(p.more for p in pages[:-1]) and not pages[-1].more
    assert [p.offset for p in pages[1:]] == [p.next_offset for p in pages[:-1]]
    assert "".join(p.data for p in pages) == text  # no character cut in two, nothing lost or repeated
    assert len(pages) >= size // 1000
    assert not pages[-1].complete  # the attempt still runs
    bench.finish(node, attempt)
    with bench.db.read() as conn:
        last = views.read_log(conn, attempt, offset=pages[-1].offset, limit=1000)
        middle = views.read_log(conn, attempt, offset=5, limit=10)
    assert last.complete and not last.more
    assert middle.more and not middle.complete and middle.next_offset <= 15


def test_pages_step_over_the_middle_a_cap_dropped(bench: Bench) -> None:
    node, attempt = _attempt(bench)
    cap = 10_000
    offset = 0
    for i in range(200):  # 40 kB through a 10 kB cap: the middle 30 kB are dropped
        with bench.db.write() as conn:
            offset, gap = lifecycle.append_log(conn, node, attempt, offset, f"line {i:04d} ".ljust(199, ".") + "\n",
                                               cap)
    for limit in (1000, 4096, 3 * cap):
        pages = _pages(bench, attempt, limit)
        text = "".join(p.data for p in pages)
        assert text.startswith("line 0000 ") and text.endswith("line 0199 ".ljust(199, ".") + "\n"), limit
        assert text.count("bytes cut by Thresher") == 1, limit
        assert pages[-1].next_offset == offset and not pages[-1].more


def test_nul_and_bytes_that_are_not_utf8_are_kept_at_their_offsets(bench: Bench) -> None:
    """Defect 4: PostgreSQL's text holds no NUL; the piece is stored escaped, never dropped, and so is
    everything after it. A byte that is not UTF-8 (sent as a lone surrogate) shows as U+FFFD."""
    node, attempt = _attempt(bench)
    size = _append(bench, node, attempt, 0, "before\x00after\n")
    size = _append(bench, node, attempt, size, "caf\udce9 \\0 not an escape \ue000\n")  # 0xE9: Latin-1 é
    size = _append(bench, node, attempt, size, "odd \ud800 surrogate\n")
    size = _append(bench, node, attempt, size, "the end\n")
    assert size == len(b"before\x00after\n") + len(b"caf\xe9 \\0 not an escape \xee\x80\x80\n") \
        + len("odd \ufffd surrogate\n".encode()) + len(b"the end\n")
    with bench.db.read() as conn:
        page = views.read_log(conn, attempt, offset=0, limit=MB)
        stored = conn.execute(select(log_chunks.c.data).where(log_chunks.c.attempt_id == attempt)).scalars().all()
        tail = views.read_log(conn, attempt, offset=len(b"before\x00"), limit=6)
    assert page.data == "before\x00after\ncaf\ufffd \\0 not an escape \ue000\nodd \ufffd surrogate\nthe end\n"
    assert page.next_offset == size and not page.more
    assert tail.data == "after\n"  # offsets count the log's own bytes
    assert all("\x00" not in row for row in stored)


def _register(farm: Any) -> tuple[int, HttpClient]:
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 2, "memory_mb": 2048})
    agent = farm.client(token=node["token"])
    farm.api.post("/jobs", {"name": "loud", "project": "default",
                            "layers": [{"name": "render", "frames": "1", "args": {"command": ["true"]}}]})
    (assignment,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    return assignment["attempt_id"], agent


def test_the_server_cuts_a_read_to_its_page_limit(make_farm: Any) -> None:
    farm = make_farm(env={"THRESHER_SERVER_LOG_PAGE_MAX_BYTES": "65536"})
    attempt, agent = _register(farm)
    line = "x" * 99 + "\n"
    offset = 0
    for _ in range(3):
        offset = agent.post(f"/agent/attempts/{attempt}/log", {"offset": offset, "data": line * 1000})["next_offset"]
    page = farm.api.get(f"/attempts/{attempt}/log", offset=0, limit=10_000_000)
    assert len(page["data"]) == 65536 and page["next_offset"] == 65536 and page["more"]
    rest = farm.api.get(f"/attempts/{attempt}/log", offset=page["next_offset"], limit=10_000_000)
    assert rest["next_offset"] == 131072 and rest["more"]
    small = farm.api.get(f"/attempts/{attempt}/log", offset=100, limit=250)
    assert small["data"] == (line * 3)[:250] and small["next_offset"] == 350


def _status_kb(pid: int, key: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(key + ":"):
            return int(row.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)")
def test_reading_a_100_mb_log_does_not_grow_the_server_with_the_log(make_farm: Any) -> None:
    """Defect 2: four clients read a 100 MB log at once, page by page; the server process's peak RSS
    (its high-water mark, reset before the reads where the kernel allows, or sampled) grows by far less
    than the log. Reading each page's rows up to the log's end, as the reader did, grew it by gigabytes."""
    farm = make_farm(env={"THRESHER_SERVER_LOG_MAX_BYTES": str(400 * MB)})
    attempt, agent = _register(farm)
    chunk = ("0123456789abcdef" * 64 + "\n") * 1000  # ~1 MB of lines
    offset = 0
    while offset < 100 * MB:
        offset = agent.post(f"/agent/attempts/{attempt}/log", {"offset": offset, "data": chunk})["next_offset"]
    assert farm.server is not None and farm.server.pid is not None
    server = psutil.Process(farm.server.pid)
    try:
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # resets VmHWM to the RSS now
        reset = True
    except OSError:
        reset = False
    before = server.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], server.memory_info().rss)

    read: list[int] = []

    def reader() -> None:
        with Thresher(farm.server_url, farm.admin_token) as client:
            read.append(sum(len(text) for text in client.log_from(attempt)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=600)
    done.set()
    sampler.join()
    assert read == [offset] * 4  # every reader got the whole log (ASCII: characters are bytes)
    high_water = max(peak[0], _status_kb(server.pid, "VmHWM") * 1024 if reset else 0)
    grown = high_water - before
    assert grown < 40 * MB, f"the server grew by {grown / MB:.0f} MB reading a {offset / MB:.0f} MB log"


def test_each_line_carries_when_its_chunk_arrived(bench: Bench) -> None:
    from datetime import datetime, timedelta, timezone

    node, attempt = _attempt(bench)
    t0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
    offset = 0
    for k, data in enumerate(["one\ntwo\n", "thr", "ee\nfour\n"]):  # the third chunk ends a line begun earlier
        with bench.db.write() as conn:
            offset, gap = lifecycle.append_log(conn, node, attempt, offset, data, now=t0 + timedelta(seconds=k))
        assert not gap
    with bench.db.read() as conn:
        whole = views.read_log(conn, attempt, offset=0, limit=1000)
        tail = views.read_log(conn, attempt, offset=10, limit=1000)  # from "ree": mid-line
    assert whole.data == "one\ntwo\nthree\nfour\n"
    assert [(t.line, t.at) for t in whole.times] == [(0, t0), (2, t0 + timedelta(seconds=1)),
                                                      (3, t0 + timedelta(seconds=2))]
    assert tail.data == "ree\nfour\n"  # its line 0 continues a line: the reader keeps the earlier time
    assert [(t.line, t.at) for t in tail.times] == [(0, t0 + timedelta(seconds=1)), (1, t0 + timedelta(seconds=2))]
