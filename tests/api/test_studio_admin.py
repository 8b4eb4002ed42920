"""Studio scheduling's admin surface over HTTP on a real server (both databases): projects, folders,
stakes, pools and a node's pool, licence limits (in use while a real task holds one), urgent jobs and
moves between folders, and the clear errors of each (404 unknown, 409 taken or in use, 422 naming the field)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select
from tests.support.refusals import refused
from typer.testing import CliRunner

from thresher.cli.main import app
from thresher.client.http import HttpClient
from thresher.server.db.engine import normalize_url
from thresher.server.db.tables import folders, tasks


def _spec(project: str = "show", **layer: Any) -> dict[str, Any]:
    return {"name": "shot010", "project": project, "layers": [
        {"name": "render", "frames": "1-4", "args": {"command": ["echo", "{frame}"]}, **layer}]}




def _tasks(farm: Any, job_id: int) -> list[Any]:
    engine = create_engine(normalize_url(farm.db_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.idx)))
    finally:
        engine.dispose()


def test_projects_folders_and_stakes(farm) -> None:
    api: HttpClient = farm.api
    made = api.post("/projects", {"name": "show", "weight": 2, "max_cores": 40})
    assert (made["name"], made["weight"], made["max_cores"], made["running_cores"]) == ("show", 2.0, 40, 0)
    assert [s["pool"] for s in made["stakes"]] == ["default"] and made["folders"] == []
    listed = api.get("/projects")
    assert "show" in [p["name"] for p in listed["items"]] and listed["total"] == len(listed["items"])
    refused(lambda: api.post("/projects", {"name": "show"}), 409, "name")
    refused(lambda: api.post("/projects", {"name": "other", "weight": -1}), 422, "weight")
    refused(lambda: api.post("/projects", {"name": "bad\nname"}), 422, "name")
    refused(lambda: api.post("/projects", {"name": "x" * 101}), 422, "name")
    refused(lambda: api.post("/projects", {"name": "other", "max_gpus": -2}), 422, "max_gpus")
    refused(lambda: api.get("/projects/nothing"), 404)

    changed = api.request("PATCH", "/projects/show", json={"weight": 3})
    assert (changed["weight"], changed["max_cores"]) == (3.0, 40)  # only what was given changes
    changed = api.request("PATCH", "/projects/show", json={"max_cores": None, "max_gpus": 2})
    assert (changed["weight"], changed["max_cores"], changed["max_gpus"]) == (3.0, None, 2)
    refused(lambda: api.request("PATCH", "/projects/nothing", json={"weight": 1}), 404)
    refused(lambda: api.request("PATCH", "/projects/show", json={"weight": "heavy"}), 422, "weight")

    with_folder = api.post("/projects/show/folders", {"name": "seq010", "priority": 5, "max_cores": 8})
    (folder,) = with_folder["folders"]
    assert (folder["name"], folder["priority"], folder["max_cores"], folder["min_cores"]) == ("seq010", 5, 8, None)
    refused(lambda: api.post("/projects/show/folders", {"name": "seq010"}), 409, "name")
    refused(lambda: api.post("/projects/show/folders", {"name": "seq 010"}), 422, "name")
    refused(lambda: api.post("/projects/nothing/folders", {"name": "seq010"}), 404)
    refused(lambda: api.request("PATCH", "/projects/show/folders/none", json={"priority": 1}), 404)
    refused(lambda: api.request("PATCH", "/projects/show/folders/seq010", json={"min_cores": 9}), 422, "max_cores")
    refused(lambda: api.post("/projects/show/folders", {"name": "s2", "min_cores": 3, "max_cores": 2}), 422,
             "max_cores")

    staked = api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": 4, "max_cores": 16})
    (stake,) = staked["stakes"]
    assert (stake["guaranteed_cores"], stake["max_cores"], stake["guaranteed_gpus"], stake["max_gpus"]) == (4, 16, 0, None)
    staked = api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": 6})
    assert (staked["stakes"][0]["guaranteed_cores"], staked["stakes"][0]["max_cores"]) == (6, None)
    refused(lambda: api.request("PUT", "/projects/show/pools/nowhere", json={}), 404)
    refused(lambda: api.request("PUT", "/projects/show/pools/no%20where", json={}), 422, "pool")
    refused(lambda: api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": -1}), 422,
             "guaranteed_cores")
    refused(lambda: api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": 4, "max_cores": 2}),
             422, "max_cores")


def test_pools_and_moving_a_node(farm) -> None:
    api: HttpClient = farm.api
    api.post("/projects", {"name": "show"})
    enroll = farm.client(token=farm.enroll_token)
    enroll.post("/agent/register", {"name": "n1", "cores": 4, "memory_mb": 2048})
    enroll.post("/agent/register", {"name": "n2", "cores": 2, "memory_mb": 2048})
    pools = {p["name"]: p for p in api.get("/pools")["items"]}
    assert (pools["default"]["nodes"], pools["default"]["cores"], pools["default"]["running_cores"]) == (2, 6, 0)

    moved = api.post("/nodes/n1/pool", {"pool": "gpu"})
    assert moved["pool"] == "gpu"
    pools = {p["name"]: p for p in api.get("/pools")["items"]}
    assert (pools["gpu"]["nodes"], pools["gpu"]["cores"], pools["default"]["nodes"]) == (1, 4, 1)
    detail = api.get("/pools/gpu")
    assert [n["name"] for n in detail["members"]] == ["n1"]
    # the new pool has every project's counter and shows in their stakes
    assert {s["pool"] for s in api.get("/projects/show")["stakes"]} == {"default", "gpu"}
    api.request("PUT", "/projects/show/pools/gpu", json={"guaranteed_cores": 2, "max_cores": 4})
    refused(lambda: api.post("/nodes/nobody/pool", {"pool": "gpu"}), 404)
    refused(lambda: api.post("/nodes/n1/pool", {"pool": "has space"}), 422, "pool")
    refused(lambda: api.post("/nodes/n1/pool", {}), 422, "pool")
    refused(lambda: api.get("/pools/nowhere"), 404)


def test_limits_show_units_in_use_while_a_task_holds_one(farm) -> None:
    api: HttpClient = farm.api
    made = api.post("/limits", {"name": "nuke", "max_total": 2})
    assert made == {"name": "nuke", "max_total": 2, "max_per_node": None, "in_use": 0}
    refused(lambda: api.post("/limits", {"name": "nuke", "max_total": 1}), 409, "name")
    refused(lambda: api.post("/limits", {"name": "bad name", "max_total": 1}), 422, "name")
    refused(lambda: api.post("/limits", {"name": "arnold", "max_total": -1}), 422, "max_total")
    refused(lambda: api.post("/limits", {"name": "arnold"}), 422, "max_total")
    refused(lambda: api.request("PATCH", "/limits/nothing", json={"max_total": 1}), 404)
    refused(lambda: api.request("DELETE", "/limits/nothing"), 404)
    changed = api.request("PATCH", "/limits/nuke", json={"max_per_node": 1})
    assert (changed["max_total"], changed["max_per_node"]) == (2, 1)

    farm.start_agent("n1", cores=2)
    farm.wait_for_node("n1")
    job = api.post("/jobs", {"name": "comp", "project": "demo", "layers": [
        {"name": "comp", "frames": "1", "limits": {"nuke": 1}, "args": {"command": ["sleep", "30"]}}]})

    def nuke() -> dict[str, Any]:
        return next(lim for lim in api.get("/limits")["items"] if lim["name"] == "nuke")

    farm.wait_for(lambda: nuke()["in_use"] == 1, timeout=30)
    error = refused(lambda: api.request("DELETE", "/limits/nuke"), 409)
    assert "in use" in error.detail
    api.post(f"/jobs/{job['id']}/kill")
    farm.wait_for(lambda: nuke()["in_use"] == 0, timeout=30)
    gone = api.request("DELETE", "/limits/nuke")
    assert gone["name"] == "nuke"
    assert "nuke" not in [lim["name"] for lim in api.get("/limits")["items"]]


def test_a_limit_named_by_an_unfinished_job_is_not_removed(farm) -> None:
    api: HttpClient = farm.api
    api.post("/limits", {"name": "houdini", "max_total": 1})
    job = api.post("/jobs", {**_spec("demo", limits={"houdini": 1})})  # no node: it waits
    error = refused(lambda: api.request("DELETE", "/limits/houdini"), 409)
    assert "unfinished" in error.detail
    api.post(f"/jobs/{job['id']}/kill")
    api.request("DELETE", "/limits/houdini")


def test_urgent_and_move(farm) -> None:
    api: HttpClient = farm.api
    api.post("/projects", {"name": "show"})
    job = api.post("/jobs", _spec())
    assert (job["urgent"], job["urgent_by"], job["folder"]) == (False, None, None)
    urgent = api.post(f"/jobs/{job['id']}/urgent", {"urgent": True})
    assert urgent["urgent"] and urgent["urgent_by"] == api.get("/whoami")["name"] and urgent["urgent_at"]
    assert all(t.urgent for t in _tasks(farm, job["id"]))
    calm = api.post(f"/jobs/{job['id']}/urgent", {"urgent": False})
    assert (calm["urgent"], calm["urgent_by"]) == (False, None)
    assert not any(t.urgent for t in _tasks(farm, job["id"]))
    refused(lambda: api.post("/jobs/999999/urgent", {"urgent": True}), 404)
    refused(lambda: api.post(f"/jobs/{job['id']}/urgent", {"urgent": "maybe"}), 422, "urgent")

    api.post("/projects/show/folders", {"name": "seq020", "priority": 3})
    moved = api.post(f"/jobs/{job['id']}/move", {"folder": "seq020"})
    assert moved["folder"] == "seq020"
    rows = _tasks(farm, job["id"])
    folder_id = next(f["id"] for f in api.get("/projects/show")["folders"] if f["name"] == "seq020")
    assert {(t.folder_id, t.folder_priority) for t in rows} == {(folder_id, 3)}
    api.request("PATCH", "/projects/show/folders/seq020", json={"priority": 9})
    assert {t.folder_priority for t in _tasks(farm, job["id"])} == {9}
    # a folder named for the first time is made
    moved = api.post(f"/jobs/{job['id']}/move", {"folder": "late"})
    assert moved["folder"] == "late"
    assert "late" in [f["name"] for f in api.get("/projects/show")["folders"]]
    assert {t.folder_priority for t in _tasks(farm, job["id"])} == {0}
    refused(lambda: api.post("/jobs/999999/move", {"folder": "late"}), 404)
    refused(lambda: api.post(f"/jobs/{job['id']}/move", {"folder": "no/slash"}), 422, "folder")


def test_a_finished_job_is_not_marked_urgent_or_moved(farm) -> None:
    api: HttpClient = farm.api
    api.post("/projects", {"name": "show"})
    job = api.post("/jobs", _spec())
    api.post(f"/jobs/{job['id']}/urgent", {"urgent": True})
    assert api.post(f"/jobs/{job['id']}/kill")["state"] == "killed"
    gone = refused(lambda: api.post(f"/jobs/{job['id']}/urgent", {"urgent": True}), 409)
    assert gone.detail == f"job {job['id']} already killed: nothing to make urgent"
    assert api.post(f"/jobs/{job['id']}/urgent", {"urgent": False})["urgent"] is False  # taking it off is fine
    gone = refused(lambda: api.post(f"/jobs/{job['id']}/move", {"folder": "sq01"}), 409)
    assert gone.detail == f"job {job['id']} already killed: nothing to move"
    assert api.get(f"/jobs/{job['id']}")["folder"] is None
    assert "sq01" not in [f["name"] for f in api.get("/projects/show")["folders"]]  # not made for it either
    env = {"THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token}
    for words, said in ((["urgent"], "nothing to make urgent"), (["move"], "nothing to move")):
        out = CliRunner().invoke(app, [*words, str(job["id"]), *(["sq01"] if words == ["move"] else [])], env=env)
        assert out.exit_code == 1 and f"job {job['id']} already killed: {said}" in out.output, out.output


def test_a_submit_to_an_unknown_project_is_refused_unless_the_server_makes_them(make_farm, db_url) -> None:
    farm = make_farm(db_url, env={"THRESHER_SERVER_CREATE_UNKNOWN_PROJECTS": "false"})
    api: HttpClient = farm.api
    refused(lambda: api.post("/jobs", _spec("newshow")), 422, "project")
    assert api.get("/jobs")["total"] == 0
    api.post("/projects", {"name": "newshow"})
    assert api.post("/jobs", _spec("newshow"))["project"] == "newshow"


def test_folder_rows_are_unique_per_project(farm) -> None:
    api: HttpClient = farm.api
    api.post("/projects", {"name": "a"})
    api.post("/projects", {"name": "b"})
    api.post("/projects/a/folders", {"name": "seq"})
    api.post("/projects/b/folders", {"name": "seq"})  # the same name in another project is another folder
    engine = create_engine(normalize_url(farm.db_url))
    try:
        with engine.connect() as conn:
            assert len(conn.execute(select(folders).where(folders.c.name == "seq")).all()) == 2
    finally:
        engine.dispose()
