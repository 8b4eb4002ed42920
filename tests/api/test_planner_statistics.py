"""The server keeps PostgreSQL's statistics of the tasks table fresh (server/db/statistics.py), so the
dispatcher's candidate query keeps using its index right after a big submission."""

from __future__ import annotations

from sqlalchemy import text
from tests.api.test_dispatch_db import Bench, layer
from tests.api.test_dispatch_db import bench as bench  # noqa: F401 - the fixture, used by name

from thresher.server.db import statistics
from thresher.server.settings import ServerSettings


def test_a_big_submission_gets_fresh_statistics_once(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-100")])
    assert statistics.refresh_if_stale(bench.db, ServerSettings()) is False  # a small change: nothing to do
    bench.submit(layers=[layer(frames="1-8000")])
    if bench.db.is_sqlite:
        assert statistics.refresh_if_stale(bench.db, ServerSettings()) is False  # SQLite's planner needs none
        return
    import time
    deadline = time.time() + 10  # the backend's counters reach pg_stat_user_tables within a moment
    while not statistics.refresh_if_stale(bench.db, ServerSettings()):
        assert time.time() < deadline, "the tasks table was never re-analyzed"
        time.sleep(0.2)
    with bench.db.read() as conn:
        analyzed = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'tasks'")).scalar()
    assert analyzed is not None
    assert analyzed >= 8000
    assert statistics.refresh_if_stale(bench.db, ServerSettings()) is False  # fresh now
