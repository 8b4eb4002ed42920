"""`thresher jobs` with a filter that names nothing says so (exit 1), on a real server: a misspelt
`--owner` (no such user) or `--folder` (no project has it) read as '0 jobs', as `--project` did."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from thresher.cli.main import app


def test_an_owner_that_is_no_user_and_a_folder_no_project_has_are_named(farm: Any) -> None:
    farm.api.post("/users", {"name": "ana", "role": "wrangler", "password": "ana-password-1"})
    farm.api.post("/projects/default/folders", {"name": "sq01"})
    runner = CliRunner()
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}

    def jobs(*args: str, token: str = farm.admin_token) -> Any:
        return runner.invoke(app, ["jobs", *args], env={**env, "THRESHER_TOKEN": token})

    out = jobs("--owner", "nosuchuser")
    assert out.exit_code == 1 and "no user named 'nosuchuser'" in out.output, out.output
    out = jobs("--folder", "nosuchfolder")
    assert out.exit_code == 1 and "no project has a folder named 'nosuchfolder'" in out.output, out.output
    for real in (["--owner", "ana"], ["--folder", "sq01"], ["--owner", "ana", "--folder", "sq01"]):
        out = jobs(*real)  # they exist and have no jobs: an empty list
        assert out.exit_code == 0 and "0 jobs" in out.output, (real, out.output)
    # a wrangler may not read users: the owner goes unchecked, the list is as it is
    wrangler = farm.client(token=None).post("/login", {"user": "ana", "password": "ana-password-1"})["secret"]
    out = jobs("--owner", "nosuchuser", token=wrangler)
    assert out.exit_code == 0 and "0 jobs" in out.output, out.output
    out = jobs("--folder", "nosuchfolder", token=wrangler)
    assert out.exit_code == 1 and "nosuchfolder" in out.output, out.output
