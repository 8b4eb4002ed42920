"""Actions that would do nothing are refused over HTTP with the state they met (**the** rule:
`model/steering_rule.py`), on a real server shared by the module, both databases; the CLI acting on
several jobs prints one refusal per line and still does the others."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from tests.support.farm import Farm
from tests.support.shared_farm import DATABASES, attach_logs, shared_farm
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.http import ApiError


@pytest.fixture(scope="module", params=DATABASES)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    yield from shared_farm(request, tmp_path_factory, "refusals")


@pytest.fixture(autouse=True)
def _farm_logs_on_failure(request: pytest.FixtureRequest, shared: Farm) -> None:
    attach_logs(request, shared)


def _job(farm: Farm, name: str, frames: str = "1") -> dict[str, Any]:
    return farm.api.post("/jobs", {"name": name, "project": "default", "layers": [
        {"name": "render", "frames": frames, "retries": 0, "args": {"command": ["true"]}}]})


def _refused(farm: Farm, path: str, body: Any = None) -> str:
    with pytest.raises(ApiError) as caught:
        farm.api.post(path, body)
    assert caught.value.status == 409, caught.value
    return caught.value.detail


def test_no_op_actions_are_refused_naming_the_state(shared: Farm) -> None:
    failed = _job(shared, "fails")
    node = shared.client(token=shared.enroll_token).post("/agent/register", {"name": "r1", "cores": 1,
                                                                             "memory_mb": 2048})
    agent = shared.client(token=node["token"])
    (a,) = agent.post("/agent/work", {}, wait=5)["assignments"]
    agent.post("/agent/finish", {"reports": [{"attempt_id": a["attempt_id"], "status": "failed", "exit_code": 1,
                                              "log_size": 0}]})
    shared.wait_for(lambda: shared.api.get(f"/jobs/{failed['id']}")["state"] == "failed", message="job failed")
    jid, tid = failed["id"], a["task_id"]
    assert _refused(shared, f"/jobs/{jid}/kill") == f"job {jid} already failed: nothing to kill"
    assert _refused(shared, f"/jobs/{jid}/pause") == f"job {jid} already failed: nothing to pause"
    assert _refused(shared, f"/jobs/{jid}/resume") == f"job {jid} already failed, not paused: nothing to resume"
    assert _refused(shared, f"/tasks/{tid}/kill") == f"task {tid} already failed: nothing to kill"
    assert _refused(shared, f"/jobs/{jid}/layers/render/kill") == f"layer render of job {jid} already failed: nothing to kill"

    queued = _job(shared, "queued", frames="1-2")
    qid = queued["id"]
    ready = shared.api.get(f"/jobs/{qid}/tasks")["items"][0]["id"]
    assert _refused(shared, f"/jobs/{qid}/retry") == f"job {qid} is queued: no failed or killed tasks to retry"
    assert _refused(shared, f"/jobs/{qid}/retry", {"task_ids": [ready]}) == \
        f"task {ready} is ready: it is still to run, nothing to retry"
    assert _refused(shared, f"/jobs/{qid}/resume") == f"job {qid} is queued, not paused: nothing to resume"
    assert shared.api.post(f"/jobs/{qid}/pause")["state"] == "paused"
    assert _refused(shared, f"/jobs/{qid}/pause") == f"job {qid} is already paused"
    assert shared.api.get(f"/jobs/{jid}")["state"] == "failed"  # the refusals changed nothing

    env = {"THRESHER_SERVER": shared.server_url, "THRESHER_TOKEN": shared.admin_token}
    out = CliRunner().invoke(app, ["kill", str(jid), str(qid)], env=env)
    assert out.exit_code == 1, out.output
    assert f"error: job {jid} already failed: nothing to kill\n" in out.output  # one line, the id said once
    assert f"job {qid}: killed" in out.output
    assert shared.api.post(f"/jobs/{jid}/retry")["state"] in ("queued", "running", "waiting")
