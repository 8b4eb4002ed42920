"""A real task printing bytes that are not plain text, through a real agent to a real server (issue 13,
defects 3 and 4): on PostgreSQL a NUL used to end the log there ("(log incomplete)"). Every byte is kept
at its offset now: the NUL as a NUL, the stray bytes as the replacement characters the agent's log file
holds (`agent/output.py` decodes the output), and the lines after them whole."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from thresher.client import Thresher

pytestmark = pytest.mark.e2e

# Three writes a little apart, so the agent sends them as separate pieces (each offset then counts).
PRINTER = (
    "import sys, time\n"
    "out = sys.stdout.buffer\n"
    "out.write(b'before\\x00after\\n'); out.flush(); time.sleep(0.6)\n"
    "out.write(b'caf\\xe9 and \\xff\\xfe\\n'); out.flush(); time.sleep(0.6)\n"
    "out.write('the end \\u2713\\n'.encode()); out.flush()\n"
)
EXPECTED = "before\x00after\ncaf\ufffd and \ufffd\ufffd\nthe end \u2713\n"
LOG_SIZE = len(EXPECTED.encode())


@pytest.mark.postgres
def test_a_task_printing_nul_and_stray_bytes_keeps_its_whole_log_on_postgresql(make_farm: Any, pg_url: str) -> None:
    _check(make_farm(pg_url))


def test_a_task_printing_nul_and_stray_bytes_keeps_its_whole_log_on_sqlite(make_farm: Any) -> None:
    _check(make_farm())


def _check(farm: Any) -> None:
    farm.start_agent("printer")
    with Thresher(farm.server_url, farm.admin_token) as client:
        job = client.submit({"name": "bytes", "project": "default", "layers": [
            {"name": "render", "frames": "1", "retries": 0, "args": {"command": [sys.executable, "-c", PRINTER]}}]})
        assert client.wait(job.id, timeout=120).state == "succeeded"
        (attempt,) = client.task(client.all_tasks(job.id)[0].id).attempts
        text = "".join(client.log_from(attempt.id))
        piece = client.log(attempt.id)
    assert text == EXPECTED
    assert attempt.log_size == LOG_SIZE  # the agent's log file, every byte of it
    assert "log incomplete" not in (attempt.reason or "")
    assert piece.complete and not piece.more
