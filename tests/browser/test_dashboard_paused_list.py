"""The jobs list filtered to paused follows a running job a person pauses and resumes, live, in a real
chromium on a real farm: the list shares `GET /jobs?state=paused`'s rule (a job paused while its tasks
still run is paused too), and the event stream's `job_info` says the pause, so the tab reloads."""

from __future__ import annotations

import pytest
from tests.browser.conftest import Dash

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_paused_list_takes_in_a_running_job_a_person_pauses(dash: Dash) -> None:
    api = dash.farm.api
    busy = dash.submit({"name": "busy", "layers": [{"name": "render", "frames": "1-20", "retries": 0,
                                                    "args": {"command": ["sleep", "30"]}}]})
    dash.wait_api(lambda: api.get(f"/jobs/{busy}")["state"] == "running", message="the job to start")
    page = dash.goto("/jobs?state=paused")
    row = f'tr[data-job="{busy}"]'
    assert page.locator(row).count() == 0
    api.post(f"/jobs/{busy}/pause")
    assert api.get(f"/jobs/{busy}")["state"] == "running"  # its tasks still run
    page.wait_for_selector(row, timeout=10_000)
    api.post(f"/jobs/{busy}/resume")
    page.wait_for_selector(row, state="detached", timeout=10_000)
    api.post(f"/jobs/{busy}/kill")
