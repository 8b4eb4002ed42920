"""Jobs and data kept in check on a real farm (both databases): archive, delete and node removal over
HTTP, the Python API and the CLI; and the log cap with a real task printing 20 MB under a 1 MB cap."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.cli.retention import parse_age
from thresher.client import Thresher
from thresher.client.http import ApiError

CAP = 1 << 20
PRINTER = ("import sys\n"
           "out = sys.stdout\n"
           "for i in range(1_000_000):\n"  # 20 bytes a line: 20 MB, as fast as Python writes
           "    out.write(f'line {i:08d} of 1M\\n')\n"
           "out.write('the last line\\n')\n")


def _job(frames: str = "1-2", command: list[str] | None = None, name: str = "shot") -> dict[str, Any]:
    return {"name": name, "project": "default",
            "layers": [{"name": "render", "frames": frames, "retries": 0,
                        "args": {"command": command or [sys.executable, "-c", "print('hi')"]}}]}


def _refused(call: Any, status: int) -> str:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status
    return str(info.value.detail)


def test_archive_delete_and_node_removal_over_http(make_farm: Any, db_url: str) -> None:
    farm = make_farm(db_url, node_timeout=3)
    farm.start_agent("box")
    with Thresher(farm.server_url, farm.admin_token) as client:
        done = [client.submit(_job(name=f"done{i}")).id for i in range(3)]
        for job_id in done:
            assert client.wait(job_id, timeout=60).state == "succeeded"
        long = client.submit(_job(command=[sys.executable, "-c", "import time; time.sleep(60)"], name="long-one")).id
        farm.wait_for(lambda: client.job(long).state == "running", timeout=30)
        assert "long-one" in _refused(lambda: client.archive_jobs([done[0], long]), 409)
        assert "long-one" in _refused(lambda: farm.api.request("DELETE", f"/jobs/{long}"), 409)
        assert client.archive_jobs([done[0]]).jobs == [done[0]]
        listed = [j.id for j in client.jobs().items]
        assert done[0] not in listed and long in listed
        assert [j.id for j in client.jobs(archived=True).items] == [done[0]]
        kept = client.job(done[0])
        assert kept.stats is not None and kept.stats.tasks == 2 and kept.counts.succeeded == 2
        assert _refused(lambda: client.retry(done[0]), 409) == (
            f"job {done[0]} was archived: its tasks were deleted, nothing to retry")
        # by filter: the running job is never matched
        answer = client.archive_jobs(state=["succeeded"], project="default")
        assert answer.jobs == done[1:]
        with pytest.raises(ApiError) as typo:  # a misspelt project is named, not "0 jobs archived"
            client.archive_jobs(state=["succeeded"], project="defualt")
        assert typo.value.status == 422 and typo.value.body["errors"] == [
            {"field": "project", "message": "no project named 'defualt'"}]
        assert client.archive_jobs(state=["succeeded"], project="default").count == 0  # a real one matching none
        assert client.delete_jobs(state=["succeeded"], archived=True).jobs == done
        assert _refused(lambda: client.job(done[0]), 404)
        # a node is removed only once it is down and runs nothing
        assert "runs 2" in _refused(lambda: client.remove_node("box"), 409)
        client.kill(long)
        farm.wait_for(lambda: not client.node("box").running and client.job(long).state == "killed", timeout=30)
        farm.kill_agent("box")
        farm.wait_for_node("box", state="down", timeout=30)
        assert client.remove_node("box").name == "box"
        assert [n.name for n in client.all_nodes()] == []
        killed = client.all_tasks(long)[0]
        assert client.task(killed.id).attempts[0].node == "box"  # its history stays
    runner = CliRunner()
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    refused = runner.invoke(app, ["delete", "--state", "killed"], env=env)
    assert refused.exit_code != 0 and "--yes" in refused.output
    deleted = runner.invoke(app, ["delete", "--state", "killed", "--yes", "--json"], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert '"count": 1' in deleted.output
    misspelt = runner.invoke(app, ["archive", "--project", "nosuch"], env=env)
    assert misspelt.exit_code == 1 and "no project named 'nosuch'" in misspelt.output, misspelt.output
    unknown = runner.invoke(app, ["jobs", "--project", "nosuch"], env=env)
    assert unknown.exit_code == 1 and "no project named 'nosuch'" in unknown.output, unknown.output
    assert runner.invoke(app, ["jobs", "--project", "default"], env=env).exit_code == 0


def test_ages_in_the_cli() -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 43200 and parse_age("2w") == 14 * 86400
    with pytest.raises(typer.BadParameter):
        parse_age("soon")


def test_a_task_printing_20_mb_keeps_a_log_under_the_cap(make_farm: Any, db_url: str) -> None:
    farm = make_farm(db_url, env={"THRESHER_SERVER_LOG_MAX_BYTES": str(CAP)})
    farm.start_agent("printer")
    with Thresher(farm.server_url, farm.admin_token) as client:
        job = client.submit(_job(frames="1", command=[sys.executable, "-c", PRINTER], name="loud"))
        assert client.wait(job.id, timeout=240).state == "succeeded"
        (attempt,) = client.task(client.all_tasks(job.id)[0].id).attempts
        assert attempt.log_size > 20_000_000  # every byte was acknowledged
        text = "".join(client.log_from(attempt.id))
    assert len(text.encode()) < CAP + 200  # the cap plus the marker line
    assert text.startswith("line 00000000 of 1M\n")
    assert text.endswith("the last line\n")
    assert "bytes cut by Thresher: the log passed log_max_bytes" in text
    assert "line 00999999 of 1M\n" in text
