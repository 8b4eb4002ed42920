"""Each server app has its own Prometheus registry (server/metrics.py): two in one process, as the tests
start them, neither clash over a series nor see each other's counts."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from thresher.server.app import create_app
from thresher.server.main import prepare


def test_two_servers_in_one_process_keep_their_own_series(tmp_path: Path) -> None:
    """A second app in the same process starts from zero."""
    apps = []
    for name in ("a", "b"):
        data = tmp_path / name
        server = prepare(None, data)
        apps.append((TestClient(create_app(server)), (data / "admin.token").read_text().strip(), server))
    try:
        first, token, _ = apps[0]
        for _ in range(3):
            assert first.get("/api/v1/health").status_code == 200
        counts = []
        for client, token, _ in apps:
            text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            counts.append(sum(s.value for s in families["thresher_http_request_duration_seconds"].samples
                              if s.name.endswith("_count") and s.labels["route"] == "/api/v1/health"))
        assert counts == [3, 0]
    finally:
        for client, _, server in apps:
            client.close()
            server.db.dispose()
