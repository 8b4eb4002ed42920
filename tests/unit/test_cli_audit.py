"""`thresher audit` against a fake server: the filters it sends, `--json` printing the page back,
the table, and the moments it takes (ISO 8601 or a time ago). The log itself is recorded and read
on a real server in tests/api/test_audit_http.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from tests.unit.test_cli_commands import FakeServer, page, run
from tests.unit.test_cli_commands import fake as fake  # the fixture, shared

from thresher.cli.audit import moment

ENTRY = {"id": 7, "at": "2026-01-01T10:00:00Z", "who": "alice", "kind": "user", "role": "artist",
         "address": "10.0.0.5", "method": "POST", "operation": "kill_job", "target": {"job_id": "12"},
         "status": 403, "allowed": False, "reason": "artist alice may not kill job 12 of bob"}


def test_audit_sends_its_filters_and_prints_the_entries(fake: FakeServer) -> None:
    fake.routes[("GET", "/audit")] = page(ENTRY)
    result = run("audit", "--who", "alice", "--operation", "kill_job", "--job", "12", "--refused",
                 "--since", "2026-01-01T00:00:00Z", "-s", "http://x", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["items"] == [ENTRY]
    sent = dict(fake.requests[-1].url.params)
    assert {k: sent[k] for k in ("who", "operation", "job", "allowed")} == {
        "who": "alice", "operation": "kill_job", "job": "12", "allowed": "false"}
    assert sent["since"].startswith("2026-01-01T00:00:00")
    table = run("audit", "-s", "http://x")
    assert table.exit_code == 0 and "kill_job" in table.stdout and "job_id=12" in table.stdout
    assert run("audit", "--since", "yesterday-ish", "-s", "http://x").exit_code == 1


def test_moments_are_iso_or_a_time_ago() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    assert moment("2h", now) == datetime(2026, 1, 2, 10, 0, tzinfo=timezone.utc)
    assert moment("7d", now) == datetime(2025, 12, 26, 12, 0, tzinfo=timezone.utc)
    assert moment("2026-01-01T08:00", now) == datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
    assert moment(None) is None
