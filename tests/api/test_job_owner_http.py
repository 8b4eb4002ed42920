"""Whose job a spec without an owner is, through the Python client against a real server (both
databases): a person's token makes it that person's, whatever account runs the program; the farm's
admin token (no one's) makes it the account's, which is what wranglers filter on."""

from __future__ import annotations

import getpass
from typing import Any

from thresher.client import Thresher


def _spec(name: str) -> dict[str, Any]:
    return {"name": name, "project": "default", "layers": [{"name": "r", "frames": "1", "args": {"command": ["true"]}}]}


def test_a_persons_job_is_theirs_whatever_account_submits_it(farm: Any) -> None:
    farm.api.post("/users", {"name": "ana.silva", "role": "artist", "password": "ana-password-1"})
    token = farm.client(token=None).post("/login", {"user": "ana.silva", "password": "ana-password-1"})["secret"]
    assert getpass.getuser() != "ana.silva"
    with Thresher(farm.server_url, token) as artist:  # refused before: "may not submit on behalf of <account>"
        job = artist.submit(_spec("hers"))
        again = artist.submit(_spec("hers too"))  # the token's kind is asked once per connection
    assert (job.owner, job.submitted_by, again.owner) == ("ana.silva", None, "ana.silva")
    with Thresher(farm.server_url, farm.admin_token) as admin:
        assert admin.submit(_spec("the account's")).owner == getpass.getuser()
        assert admin.submit({**_spec("named"), "owner": "bob"}).owner == "bob"
