"""Every command on one job takes its id or its exact name (`cli/targets.resolve_job`), on a real server,
both databases: tasks, deps, undepend (and its `--on`), blocklist, urgent, move, release, scout and
`log --job`; a name several jobs have is refused with their ids, a glob is no name."""

from __future__ import annotations

from typing import Any

from tests.api.test_dependencies_http import _agent, _job
from typer.testing import CliRunner

from thresher.cli.main import app


def test_commands_on_one_job_take_its_name(farm: Any) -> None:
    sim = _job(farm, "sim")["id"]
    comp = _job(farm, "comp", layers=[{"name": "comp", "frames": "1", "args": {"command": ["true"]},
                                       "depends_on": [{"job": sim, "layer": "render"}]}])["id"]
    scouted = _job(farm, "scouted", layers=[{"name": "render", "frames": "1-3", "scout": "1",
                                             "scout_release": "manual", "args": {"command": ["true"]}}])["id"]
    twins = [_job(farm, "dup")["id"], _job(farm, "dup")["id"]]
    agent = _agent(farm)
    (taken,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    assert taken["job_id"] == sim
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}

    def cli(*words: str, code: int = 0) -> str:
        out = CliRunner().invoke(app, list(words), env=env)
        assert out.exit_code == code, (words, out.output)
        return out.output

    assert f'"job_id": {sim}' in cli("tasks", "sim", "--json")
    assert f'"target_job": {sim}' in cli("deps", "comp", "--json")
    assert f'"job_id": {sim}' in cli("blocklist", "sim", "--json")
    assert f"job {comp}: urgent" in cli("urgent", "comp")
    assert f"job {comp}: folder sq01" in cli("move", "comp", "sq01")
    assert f"job {scouted}: released render" in cli("release", "scouted")
    assert f"job {sim}" in cli("scout", "sim", "render", "1", code=1)  # its task started: the server refuses it
    cli("log", "--job", "sim", "--frame", "1")
    assert "1 dependency dropped" in cli("undepend", "comp", "--on", "sim")
    assert f"job {comp} waits for nothing" in cli("deps", str(comp))

    said = cli("tasks", "dup", code=1)
    assert f"2 jobs are named 'dup' (ids {twins[0]}, {twins[1]}): give an id" in said
    assert "no job is named 'si*' (one job is an id or an exact name, not a glob)" in cli("urgent", "si*", code=1)
    assert "no job is named 'nosuch'" in cli("undepend", "comp", "--on", "nosuch", code=1)
    assert f"job {twins[1]}: urgent" in cli("urgent", str(twins[1]))
