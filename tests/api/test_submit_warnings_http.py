"""What a submit says about its spec, against a real server (both databases): the warnings a dry run lists
come back on the real submit too, through the Python API, `thresher submit` (stderr, the id alone on
stdout) and its `--json`; they are not stored, so the job read later has none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client import Thresher

# a wedge whose tasks all write one file, a Blender layer that gives no output, an encode without frames
WARNED = {"name": "warned", "project": "default", "layers": [
    {"name": "look", "template": "povray", "wedge": [0.1, 0.3],
     "args": {"scene": "a.pov", "output": "/tmp/td/out.####.png", "extra_args": ["Declare=Rough={wedge}"]}},
    {"name": "blend", "template": "blender", "frames": "1-2", "args": {"scene": "a.blend"}},
    {"name": "movie", "template": "ffmpeg", "args": {"input": "/r/a.####.png", "output": "/r/a.mp4"}}]}


def test_a_submit_answers_the_warnings_its_dry_run_lists(farm: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    dry = farm.api.post("/jobs", WARNED, dry_run="true")["warnings"]
    assert [w.split(":")[0] for w in dry] == ["layers.0", "layers.1", "layers.2"], dry
    assert "overwrite each other" in dry[0] and "no output given" in dry[1] and "frame 1" in dry[2]
    with Thresher(farm.server_url, farm.admin_token) as client:
        job = client.submit(WARNED)  # the Python API: it had no warnings at all
    assert job.warnings == dry and job.name == "warned"
    assert "warnings" not in farm.api.get(f"/jobs/{job.id}")  # said once, at submit: not stored
    plain = {"name": "plain", "frames": "1-2", "args": {"command": ["echo", "{frame}"]}}
    assert farm.api.post("/jobs", {**WARNED, "layers": [plain]})["warnings"] == []
    piped = {**plain, "args": {"command": "echo {frame} | tr 1 2 > /tmp/out.txt"}}
    with Thresher(farm.server_url, farm.admin_token) as client:  # the command template's, the same way
        assert [w.split(": ")[0] for w in client.submit({**WARNED, "layers": [piped]}).warnings] == [
            "layers.0.args.command"]

    monkeypatch.setenv("THRESHER_HOME", str(tmp_path))
    spec = tmp_path / "warned.json"
    spec.write_text(json.dumps(WARNED))
    runner = CliRunner()
    result = runner.invoke(app, ["submit", str(spec), "-s", farm.server_url, "--token", farm.admin_token])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isdigit()  # the id alone, as scripts read it
    assert result.stderr.splitlines() == [f"warning: {w}" for w in dry]
    shown = runner.invoke(app, ["submit", str(spec), "-s", farm.server_url, "--token", farm.admin_token,
                                "--dry-run"]).stdout
    assert all(f"warning: {w}" in " ".join(shown.split()) for w in dry)  # the same words as the dry run
    result = runner.invoke(app, ["submit", str(spec), "-s", farm.server_url, "--token", farm.admin_token, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["warnings"] == dry
