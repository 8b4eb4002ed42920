"""The jobs listing filtered by sequence and shot (`GET /jobs?sequence=&shot=`, `thresher jobs --sequence
--shot`, the jobs page's `?sequence=` and `?shot=`), on a real server, both databases."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_dashboard_http import _session
from typer.testing import CliRunner

from thresher.cli.main import app


def _submit(farm: Any, name: str, sequence: str | None, shot: str | None) -> int:
    return int(farm.api.post("/jobs", {"name": name, "project": "default", "sequence": sequence, "shot": shot,
                                       "layers": [{"name": "main", "args": {"command": ["true"]}}]})["id"])


def test_jobs_are_listed_by_sequence_and_shot(farm: Any) -> None:
    a = _submit(farm, "a", "sq010", "sh010")
    b = _submit(farm, "b", "sq010", "sh020")
    c = _submit(farm, "c", "sq020", "sh010")
    _submit(farm, "d", None, None)
    ids = lambda **f: [j["id"] for j in farm.api.get("/jobs", sort="id", **f)["items"]]  # noqa: E731
    assert ids(sequence="sq010") == [a, b]
    assert ids(shot="sh010") == [a, c]
    assert ids(sequence="sq010", shot="sh010") == [a]
    assert ids(shot="sh0") == []  # exactly, not a substring
    assert farm.api.get("/jobs", shot="sh010")["total"] == 2

    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    out = CliRunner().invoke(app, ["jobs", "--shot", "sh010", "--sequence", "sq020", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert [j["id"] for j in json.loads(out.output)["items"]] == [c]

    page = _session(farm).get("/jobs?shot=sh010")
    assert page.status_code == 200
    shown = {int(part.split('"')[0]) for part in page.text.split('data-job="')[1:]}
    assert shown == {a, c}
    assert 'value="sh010"' in page.text

    # grouped by shot, sequence or project (`?group=`): a header row per group, the filters kept
    def groups(url: str) -> list[str]:
        text = _session(farm).get(url).text
        return [part.split('"')[0] for part in text.split('class="group-row" data-group="')[1:]]

    assert groups("/jobs?group=shot&sort=id") == ["default / (none) / (none)", "default / sq010 / sh010",
                                                  "default / sq010 / sh020", "default / sq020 / sh010"]
    assert groups("/jobs?group=sequence&shot=sh010") == ["default / sq010", "default / sq020"]
    grouped = _session(farm).get("/jobs?group=project&fragment=1")  # the live refresh's part, grouped too
    assert groups("/jobs?group=project") == ["default"] and "data-group-count>4 jobs<" in grouped.text and 'data-group="default"' in grouped.text
    assert groups("/jobs?group=nonsense") == []  # an unknown grouping groups nothing, like an unknown sort
