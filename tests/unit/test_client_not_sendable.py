"""A number JSON cannot carry (infinite, NaN) in what the client sends is refused before sending, at its
field, as the server refuses a bad value (`client/http.NotSendable`: an ApiError with status 422, and a
ValueError), where httpx raised a bare "Out of range float values are not JSON compliant"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from thresher.cli import common
from thresher.cli.main import app
from thresher.client.api import Thresher
from thresher.client.http import ApiError, HttpClient, NotSendable

SPEC: dict[str, Any] = {"name": "j", "owner": "ana", "layers": [{"name": "a", "args": {"command": ["echo", "{frame}"]}}]}


def _client(sent: list[httpx.Request]) -> Thresher:
    http = HttpClient("http://x", "tok")
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    http._http = httpx.Client(base_url="http://x/api/v1", transport=httpx.MockTransport(answer))
    return Thresher(http=http)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_layer_timeout_of_inf_or_nan_is_refused_at_its_field_before_sending(value: float) -> None:
    sent: list[httpx.Request] = []
    spec = {**SPEC, "layers": [*SPEC["layers"], {"name": "b", "timeout": value, "args": {"command": ["x"]}}]}
    with pytest.raises(NotSendable) as info:
        _client(sent).submit(spec)
    assert isinstance(info.value, ApiError) and isinstance(info.value, ValueError)
    assert info.value.status == 422 and [e["field"] for e in info.value.errors] == ["layers.1.timeout"]
    assert str(info.value) == f"invalid request: not sent\n  layers.1.timeout: {value} is no number JSON can carry: " \
                              "give a finite number"
    assert not sent


def test_the_cli_says_the_field_and_a_dry_run_gives_its_verdict(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    sent: list[httpx.Request] = []
    monkeypatch.setattr(common, "Thresher", lambda *_a, **_k: _client(sent))
    spec = tmp_path / "job.yaml"
    spec.write_text("name: j\nowner: ana\nlayers:\n  - name: a\n    timeout: .inf\n    args: {command: [echo, '{frame}']}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["submit", str(spec), "-s", "http://x"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines() == ["error: invalid request: not sent",
                                          "  layers.0.timeout: inf is no number JSON can carry: give a finite number"]
    result = runner.invoke(app, ["submit", str(spec), "-s", "http://x", "--dry-run"])
    assert result.exit_code == 1 and "layers.0.timeout" in result.stdout
    assert not sent


def test_what_json_carries_is_sent_as_before() -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(ApiError) as info:  # the fake server's 500: the request went out
        _client(sent).submit({**SPEC, "layers": [{**SPEC["layers"][0], "timeout": 1e300}]})
    assert info.value.status == 500 and len(sent) == 1
