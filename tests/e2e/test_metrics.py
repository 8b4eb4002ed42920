"""`GET /metrics` of a real server after a real job: Prometheus text that the Prometheus parser reads,
with the figures of what happened, behind the metrics token or an admin."""

from __future__ import annotations

import sys
from typing import Any, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "scrape-me-please-0123456789"
TASKS = 4


def _scrape(farm: Any, token: str) -> dict[str, Any]:
    answer = httpx.get(farm.server_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def _value(families: dict[str, Any], family: str, sample: str | None = None, **labels: str) -> float:
    found = [s.value for s in families[family].samples
             if s.name == (sample or family) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (family, sample, labels, families[family].samples)
    return float(found[0])


def test_metrics_after_a_job(make_farm: Callable[..., Any], db_url: str) -> None:
    farm = make_farm(db_url, env={"THRESHER_SERVER_METRICS_TOKEN": METRICS_TOKEN})
    farm.start_agent("m1", cores=2)
    # While a task runs: its core is in use, its job and task are running.
    long_id = farm.api.post("/jobs", {"name": "long", "layers": [{
        "name": "sleep", "frames": "1", "resources": {"cores": 1, "memory": "64M"},
        "args": {"command": ["sleep", "60"]}}]})["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{long_id}")["state"] == "running", timeout=60)
    families = _scrape(farm, METRICS_TOKEN)
    assert _value(families, "thresher_cores_in_use") == 1
    assert _value(families, "thresher_tasks", state="running") == 1
    assert _value(families, "thresher_jobs", state="running") == 1
    farm.api.post(f"/jobs/{long_id}/kill")
    farm.wait_for(lambda: farm.api.get(f"/jobs/{long_id}")["state"] == "killed", timeout=60)

    spec = {"name": "metrics", "layers": [{
        "name": "work", "frames": f"1-{TASKS}", "resources": {"cores": 1, "memory": "64M"},
        "args": {"command": [sys.executable, "-c", "print('x' * 999)"]}}]}
    job_id = farm.api.post("/jobs", spec)["id"]
    farm.wait_for(lambda: farm.api.get(f"/jobs/{job_id}")["state"] == "succeeded", timeout=60)

    def logs_in() -> bool:  # logs travel on their own path: every attempt's output reached the server
        tasks = farm.api.get(f"/jobs/{job_id}/tasks")["items"]
        return all(a["log_size"] >= 1000 for t in tasks for a in farm.api.get(f"/tasks/{t['id']}/attempts")["items"])

    farm.wait_for(logs_in, timeout=30)

    families = _scrape(farm, METRICS_TOKEN)
    assert _value(families, "thresher_tasks", state="succeeded") == TASKS
    assert _value(families, "thresher_tasks", state="killed") == 1
    assert _value(families, "thresher_tasks", state="running") == 0
    assert _value(families, "thresher_jobs", state="succeeded") == 1
    assert _value(families, "thresher_jobs", state="killed") == 1
    assert _value(families, "thresher_jobs", state="running") == 0
    assert _value(families, "thresher_nodes", state="up") == 1
    assert _value(families, "thresher_nodes", state="down") == 0
    assert _value(families, "thresher_cores_up") == 2
    assert _value(families, "thresher_cores_in_use") == 0
    assert _value(families, "thresher_assignments", "thresher_assignments_total") == TASKS + 1
    assert _value(families, "thresher_reports", "thresher_reports_total") >= TASKS + 1  # the killed one too
    assert _value(families, "thresher_log_bytes", "thresher_log_bytes_total") >= TASKS * 1000
    assert _value(families, "thresher_submit_to_start_seconds", "thresher_submit_to_start_seconds_count") == TASKS + 1
    assert _value(families, "thresher_submit_to_start_seconds", "thresher_submit_to_start_seconds_sum") > 0
    # Every agent call went through a write batch; each batch applied at least one operation.
    batches = _value(families, "thresher_write_batch_operations", "thresher_write_batch_operations_count",
                     writer="writer")
    operations = _value(families, "thresher_write_batch_operations", "thresher_write_batch_operations_sum",
                        writer="writer")
    assert batches >= 1 and operations >= batches
    assert _value(families, "thresher_database_transactions", "thresher_database_transactions_total",
                  kind="write") >= 1
    assert _value(families, "thresher_database_seconds", "thresher_database_seconds_total", kind="write") > 0
    # Requests are labelled by route template, not by path.
    assert _value(families, "thresher_http_request_duration_seconds", "thresher_http_request_duration_seconds_count",
                  method="POST", route="/api/v1/jobs") == 2
    assert _value(families, "thresher_http_request_duration_seconds", "thresher_http_request_duration_seconds_count",
                  method="GET", route="/api/v1/jobs/{job_id}") >= 1
    assert not [s for s in families["thresher_http_request_duration_seconds"].samples
                if str(job_id) in s.labels.get("route", "")]

    # An admin token reads it too; no token, an agent's or enrolment token, or a wrong one do not.
    assert _value(_scrape(farm, farm.admin_token), "thresher_tasks", state="succeeded") == TASKS
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong-token"}, 401),
                            ({"Authorization": f"Bearer {farm.enroll_token}"}, 403)):
        answer = httpx.get(farm.server_url + "/metrics", headers=headers, timeout=30)
        assert answer.status_code == status, (headers, answer.text)
        assert answer.json()["detail"]
