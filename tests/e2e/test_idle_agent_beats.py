"""A real idle agent proves it is alive through its long poll (`model/heartbeat_rule.py`): over more
than a node timeout it sends a heartbeat at most at its start and rests it while its polls carry one, its node
stays up; killed, it sends nothing and its node is declared down."""

from __future__ import annotations

import signal
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

def _calls(farm: Any, route: str) -> float:
    text = httpx.get(farm.server_url + "/metrics", headers={"Authorization": f"Bearer {farm.admin_token}"},
                     timeout=30).text
    for family in text_string_to_metric_families(text):
        if family.name == "thresher_http_request_duration_seconds":
            return sum(s.value for s in family.samples if s.name.endswith("_count")
                       and s.labels.get("route") == route)
    return 0.0


def test_an_idle_agent_stays_up_on_its_polls_and_goes_down_when_killed(make_farm: Callable[..., Any]) -> None:
    farm = make_farm(node_timeout=3)  # polls of 1 s carry the heartbeat; separate ones every 0.3 s if due
    farm.start_agent("idle", heartbeat=0.3)
    first = datetime.fromisoformat(farm.api.get("/nodes/idle")["last_seen"])
    # past a whole node timeout, the node is still up, seen lately, on its polls
    farm.wait_for(lambda: datetime.fromisoformat(farm.api.get("/nodes/idle")["last_seen"]) > first + timedelta(seconds=4),
                  timeout=30, interval=0.2)
    assert farm.api.get("/nodes/idle")["state"] == "up"
    # its polls (the first one may beat the heartbeat thread to it), not one heartbeat per 0.3 s
    assert _calls(farm, "/api/v1/agent/heartbeat") <= 2 and _calls(farm, "/api/v1/agent/work") >= 3
    farm.kill_agent("idle", signal.SIGKILL)
    farm.wait_for_node("idle", state="down", timeout=30)
