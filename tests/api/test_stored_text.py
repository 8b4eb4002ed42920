"""A node stored with a lone surrogate before the text rule (`model/text.py`) refused one: SQLite took such
a registration into its JSON columns (PostgreSQL refused it), and every node listing answered 500 from
then on. The listing shows U+FFFD in its place instead."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import update
from tests.api.test_dispatch_db import Bench

from thresher.server import views
from thresher.server.db.tables import nodes


def test_a_node_stored_with_a_lone_surrogate_still_lists(sqlite_url: str, tmp_path: Path) -> None:
    bench = Bench(sqlite_url, tmp_path / "data")
    try:
        node = bench.node("old")
        with bench.db.write() as conn:
            conn.execute(update(nodes).where(nodes.c.id == node).values(
                tags=["ok", "bad\ud800"], apps={"blender\udfff": "/bin/\ud800"},
                gpus=[{"index": 0, "name": "RTX\ud83d", "memory_mb": 0, "uuid": ""}]))
        with bench.db.read() as conn:
            page = views.list_nodes(conn, limit=10, offset=0)
        shown = json.loads(page.model_dump_json())["items"][0]
    finally:
        bench.db.dispose()
    assert shown["tags"] == ["ok", "bad\ufffd"] and shown["apps"] == {"blender\ufffd": "/bin/\ufffd"}
    assert shown["gpus"][0]["name"] == "RTX\ufffd"
