"""The projects page and the usage history behind its charts, on both databases: the sampler writes the
counters in use and prunes old samples; `GET /projects/{name}/usage` answers them; the dashboard's
projects page shows what a project runs (a real task dispatched over HTTP) against its guarantee, share
and cap, its folders, the pools with their nodes and stakes, and the limits in use; jobs filter by folder."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from thresher.server import usage_history
from thresher.server.clock import as_utc, utcnow
from thresher.server.dashboard.projects import chart
from thresher.server.db.tables import usage
from thresher.server.db.tables import usage_history as history_table
from thresher.server.main import prepare

FAST = {"THRESHER_SERVER_USAGE_SAMPLE_S": "0.2"}


def _session(farm: Any) -> httpx.Client:
    client = httpx.Client(base_url=farm.server_url, timeout=10, follow_redirects=False)
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"token": farm.admin_token, "csrf": nonce, "next": "/"}).status_code == 303
    return client


def _section(html: str, attr: str, name: str) -> str:
    """The markup of the element marked `data-<attr>="name"` up to the next one of its kind."""
    start = html.index(f'data-{attr}="{name}"')
    following = html.find(f"data-{attr}=", start + 1)
    return html[start:following if following != -1 else len(html)]


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_sampler_writes_counters_in_use_and_prunes_old_samples(db_url: str, tmp_path: Path) -> None:
    server = prepare(db_url, tmp_path)
    now = utcnow()
    with server.db.write() as conn:
        conn.execute(insert(usage), [{"key": "project:90", "cores": 3, "gpus": 1, "units": 0},
                                     {"key": "project:91", "cores": 0, "gpus": 0, "units": 0},
                                     {"key": "project:90/pool:gpu", "cores": 3, "gpus": 1, "units": 0},
                                     {"key": "project:91/pool:gpu", "cores": 0, "gpus": 0, "units": 0},
                                     {"key": "folder:77", "cores": 0, "gpus": 0, "units": 0},
                                     {"key": "limit:nuke", "cores": 0, "gpus": 0, "units": 2}])
        conn.execute(insert(history_table), [{"at": now - timedelta(days=3), "key": "project:90", "cores": 1,
                                              "gpus": 0, "units": 0}])
        usage_history.sample(conn, now)
        pruned = usage_history.prune(conn, 2 * 24 * 3600, now)
    with server.db.read() as conn:
        rows = {r.key: r for r in conn.execute(select(history_table))}
    assert pruned == 1
    # in use, or a project's own counter (the time line); zeros of folders and stakes are implied
    assert set(rows) == {"project:1", "project:90", "project:91", "project:90/pool:gpu", "limit:nuke"}  # 1: default
    assert (rows["project:90"].cores, rows["project:90"].gpus, rows["limit:nuke"].units) == (3, 1, 2)
    assert abs((as_utc(rows["project:90"].at) - now).total_seconds()) < 1  # type: ignore[operator]
    with server.db.read() as conn:
        found = usage_history.samples(conn, ["project:90", "folder:77"], now - timedelta(hours=1))
    assert [r.cores for r in found["project:90"]] == [3] and found["folder:77"] == []


def test_chart_steps_and_lines() -> None:
    now = utcnow()
    drawn = chart([(now - timedelta(minutes=90), 1), (now - timedelta(minutes=30), 4)], guarantee=2, cap=8, now=now)
    points = drawn["points"].split()
    assert points[0].startswith("0,") and points[-1].startswith("600,") and len(points) == 4
    assert drawn["guarantee_y"] > drawn["cap_y"]  # the cap is drawn above the guarantee
    assert chart([], guarantee=0, cap=None, now=now)["points"] == ""


def test_projects_page_history_and_folder_filter(make_farm: Any, db_url: str) -> None:
    farm = make_farm(db_url, env=FAST)
    api = farm.api
    api.post("/projects", {"name": "show", "weight": 3, "max_cores": 20})
    api.post("/projects", {"name": "other", "weight": 1})
    api.post("/projects/show/folders", {"name": "seq010", "priority": 5, "min_cores": 1, "max_cores": 8})
    api.post("/limits", {"name": "nuke", "max_total": 2, "max_per_node": 1})
    node = farm.client(token=farm.enroll_token).post("/agent/register", {"name": "n1", "cores": 4, "memory_mb": 2048})
    api.request("PUT", "/projects/show/pools/default", json={"guaranteed_cores": 2, "max_cores": 4})
    job = api.post("/jobs", {"name": "comp", "project": "show", "folder": "seq010", "layers": [
        {"name": "comp", "frames": "1", "resources": {"cores": 2}, "limits": {"nuke": 1}, "args": {"command": ["sleep", "30"]}}]})
    (assignment,) = farm.client(token=node["token"]).post("/agent/work", {}, wait=5)["assignments"]
    assert assignment["job_id"] == job["id"]
    api.post("/jobs", {"name": "lay", "project": "other", "layers": [  # queued: no agent asks again
        {"name": "l", "frames": "1", "args": {"command": ["true"]}}]})

    # the folder filter: the API, and the dashboard's list
    assert [j["id"] for j in api.get("/jobs", folder="seq010")["items"]] == [job["id"]]
    assert api.get("/jobs", folder="seq010", project="other")["total"] == 0
    assert api.get("/jobs", folder="nothing")["total"] == 0

    def history() -> dict[str, Any]:
        return api.get("/projects/show/usage")

    answer = farm.wait_for(lambda: (h := history()) and any(p["cores"] == 2 for p in h["series"][0]["points"]) and h,
                           timeout=20)
    series = {s["key"]: s for s in answer["series"]}
    own = answer["series"][0]
    assert (own["kind"], own["name"], answer["project"], answer["sample_s"]) == ("project", "show", "show", 0.2)
    stake = next(s for s in answer["series"] if s["kind"] == "pool" and s["name"] == "default")
    folder = next(s for s in answer["series"] if s["kind"] == "folder" and s["name"] == "seq010")
    # every series on the project's time line: zeros filled in where a counter was not in use
    assert [p["at"] for p in stake["points"]] == [p["at"] for p in own["points"]] == [p["at"] for p in folder["points"]]
    assert stake["points"][-1]["cores"] == 2 and folder["points"][-1]["cores"] == 2 and len(series) == 3
    later = api.get("/projects/show/usage", since=own["points"][-1]["at"])
    assert 1 <= len(later["series"][0]["points"]) < len(own["points"]) + 5
    assert api.get("/projects/show/usage", since="2999-01-01T00:00:00Z")["series"][0]["points"] == []
    for bad, status in (("/projects/nothing/usage", 404), ("/projects/show/usage?since=yesterday", 422)):
        assert httpx.get(farm.server_url + "/api/v1" + bad, headers={"Authorization": f"Bearer {farm.admin_token}"},
                         timeout=10).status_code == status, bad

    client = _session(farm)
    listed = client.get("/jobs", params={"folder": "seq010"}).text
    assert f'data-job="{job["id"]}"' in listed and listed.count("data-job=") == 1
    page = client.get("/projects")
    assert page.status_code == 200 and 'aria-current="page">Projects' in page.text.replace("\n", "")
    show = _section(page.text, "project", "show")
    tile = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", show))
    assert "Running cores 2 / 2 guaranteed" in tile
    assert "Fair share 75 %" in tile and "Cap 20 cores" in tile
    assert re.search(r'<polyline class="run" points="[0-9., ]+"', show)
    assert '<line class="guarantee"' in show and '<line class="cap"' in show
    assert _cells(_section(show, "folder", "seq010").split("</tr>")[0]) == ["seq010", "5", "1", "8", "2"]
    assert "Fair share 25 %" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _section(page.text, "project", "other")))
    pool = _section(page.text, "pool", "default")
    assert _cells(_section(pool, "stake", "show").split("</tr>")[0]) == ["show", "2", "4", "2", "0", "–", "0"]
    assert _cells(_section(pool, "node", "n1").split("</tr>")[0])[::2] == ["n1", "4"]
    assert _cells(_section(page.text, "limit", "nuke").split("</tr>")[0])[:4] == ["nuke", "1", "2", "1"]
    assert client.get("/projects", params={"fragment": "1"}).text.lstrip().startswith("<section")
    client.close()
