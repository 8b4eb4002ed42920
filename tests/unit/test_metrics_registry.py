"""Each server app has its own Prometheus registry (server/metrics.py): two in one process, as the tests
start them, neither clash over a series nor see each other's counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from thresher.server.app import create_app
from thresher.server.main import prepare
from thresher.server.metrics import Spread


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


def test_a_spread_counts_as_prometheus_histograms_do() -> None:
    """`le` buckets are cumulative and hold the values at their bound; labels keep their series apart."""
    spread = Spread("t_seconds", "test", (1, 2, 5), ("writer",))
    for value in (0.5, 1, 1.5, 2, 7):
        spread.observe(value, "a")
    spread.observe(3, "b")

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield spread.family()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    a = {s.labels.get("le", s.name): s.value for s in family.samples if s.labels["writer"] == "a"}
    assert a == {"1.0": 2, "2.0": 4, "5.0": 4, "+Inf": 5, "t_seconds_count": 5, "t_seconds_sum": 12}
    b = {s.labels.get("le", s.name): s.value for s in family.samples if s.labels["writer"] == "b"}
    assert b["2.0"] == 0 and b["5.0"] == 1 and b["t_seconds_count"] == 1
