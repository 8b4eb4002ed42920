"""The nodes page of a big farm, in process on SQLite: pages of `node_list.PAGE_SIZE` nodes, filtered
by the chips (busy, down, disabled, ...) or a part of a name, while the chips keep counting the whole
farm (a 2,000-node page was 3 MB, fetched again at every live refresh)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update
from tests.support.dispatching import assign

from thresher.server.app import create_app
from thresher.server.clock import utcnow
from thresher.server.dashboard.node_list import PAGE_SIZE, NodeFilter, page_of
from thresher.server.db.tables import nodes
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job

NODES = 230  # three pages


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("nodes-page")
    server = prepare(f"sqlite:///{folder / 'farm.db'}", folder / "data")
    now = utcnow()
    with server.db.write() as conn:
        conn.execute(insert(nodes), [dict(
            name=f"rn{i:04d}", hostname=f"host{i:04d}", os="linux", instance_id=f"rn{i:04d}", cores=2,
            memory_mb=8000, gpus=[], tags=[], state="down" if i % 10 == 9 else "up",
            admin_state="disabled" if i % 25 == 3 else "enabled", last_seen=now, registered_at=now)
            for i in range(NODES)])
        conn.execute(update(nodes).where(nodes.c.name == "rn0005").values(admin_state="draining"))
        create_job(conn, check_spec({"name": "j", "layers": [
            {"name": "l", "frames": "1-4", "args": {"command": ["true"]}}]}), "tester")
        for node_id in (1, 2):  # rn0000 and rn0001 run the job's tasks: busy
            assign(conn, node_id, utcnow())
    test_client = TestClient(create_app(server), follow_redirects=False)
    nonce = re.search(r'name="csrf" value="([^"]+)"', test_client.get("/login").text)
    assert nonce is not None
    token = (folder / "data" / "admin.token").read_text().strip()
    assert test_client.post("/login", data={"token": token, "csrf": nonce.group(1), "next": "/"}).status_code == 303
    yield test_client
    server.db.dispose()


def shown(html: str) -> list[str]:
    return re.findall(r'<tr data-node="([^"]+)"', html)


def chip(html: str, name: str) -> int:
    found = re.search(r'class="chip [^"]*"[^>]*>(\d+) ' + name + "<", html)
    assert found is not None, name
    return int(found.group(1))


def test_a_big_farm_shows_in_pages_and_the_chips_count_all_of_it(client: TestClient) -> None:
    first = client.get("/nodes").text
    assert shown(first) == [f"rn{i:04d}" for i in range(PAGE_SIZE)]
    assert "page 1 of 3" in first and f"{NODES} nodes" in first
    down = sum(1 for i in range(NODES) if i % 10 == 9)
    assert chip(first, "up") == NODES - down and chip(first, "down") == down and chip(first, "busy") == 2
    assert chip(first, "draining") == 1 and chip(first, "disabled") == sum(1 for i in range(NODES) if i % 25 == 3)
    last = client.get("/nodes?page=3").text
    assert shown(last) == [f"rn{i:04d}" for i in range(2 * PAGE_SIZE, NODES)] and "Next" not in last
    assert shown(client.get("/nodes?page=99").text) == shown(last)  # past the end: the last page
    assert shown(client.get("/nodes?page=x&state=nonsense").text) == shown(first)  # what it cannot use: no filter


def test_the_chips_and_a_name_filter_the_list(client: TestClient) -> None:
    down = client.get("/nodes?state=down").text
    assert shown(down) == [f"rn{i:04d}" for i in range(NODES) if i % 10 == 9]
    assert f"{len(shown(down))} of {NODES} nodes" in down
    assert 'class="chip s-down active"' in down and 'href="/nodes" title="every node">' in down  # it toggles off
    assert shown(client.get("/nodes?state=busy").text) == ["rn0000", "rn0001"]
    assert shown(client.get("/nodes?state=draining").text) == ["rn0005"]
    assert "rn0005" not in shown(client.get("/nodes?state=idle&page=1").text)  # draining takes no work: not idle
    assert shown(client.get("/nodes?name=RN012").text) == [f"rn{i:04d}" for i in range(120, 130)]
    assert shown(client.get("/nodes?name=host0229").text) == ["rn0229"]  # the host name too
    none = client.get("/nodes?name=nobody").text
    assert shown(none) == [] and "No node matches." in none and f"0 of {NODES} nodes" in none
    assert shown(client.get("/nodes?state=down&name=rn01").text) == [f"rn{i:04d}" for i in range(100, 200) if i % 10 == 9]


def test_the_filter_keeps_itself_in_its_links() -> None:
    f = NodeFilter.of({"state": "down", "name": "rn 1", "page": "2"})
    assert f.link(page=3) == "/nodes?state=down&name=rn%201&page=3"
    assert f.link(state="", page=1) == "/nodes?name=rn%201"
    listed = [{"name": f"n{i}", "hostname": "", "state": "up", "admin_state": "enabled", "running": []}
              for i in range(PAGE_SIZE + 1)]
    page = page_of(listed, NodeFilter(page=5))
    assert (page.page, page.pages, page.matched, [n["name"] for n in page.nodes]) == (2, 2, PAGE_SIZE + 1, [f"n{PAGE_SIZE}"])


def test_the_json_api_filters_as_the_page_does_and_pages_what_it_kept(client: TestClient) -> None:
    """`GET /api/v1/nodes?state=&name=` (what `thresher nodes --state/--name` asks): the same rule, `total`
    counting what the filter kept, and an unknown state a 422 naming the field."""
    def names(query: str) -> tuple[list[str], int]:
        answer = client.get(f"/api/v1/nodes?{query}")
        assert answer.status_code == 200, answer.text
        return [n["name"] for n in answer.json()["items"]], answer.json()["total"]

    down = [f"rn{i:04d}" for i in range(NODES) if i % 10 == 9]
    assert names("state=down") == (down, len(down))
    assert names("state=down&limit=5&offset=20") == (down[20:], len(down))
    busy, _ = names("state=busy")
    assert busy == ["rn0000", "rn0001"]
    assert all(n["running"] for n in client.get("/api/v1/nodes?state=busy").json()["items"])
    idle, total_idle = names("state=idle&limit=1000")
    assert "rn0005" not in idle and "rn0000" not in idle and total_idle == len(idle)
    assert names("name=RN012") == ([f"rn{i:04d}" for i in range(120, 130)], 10)
    assert names("name=host0228&state=up") == (["rn0228"], 1) and names("name=host0229&state=up") == ([], 0)
    assert names("name=nobody") == ([], 0)
    assert names("limit=3")[1] == NODES  # no filter: every node counted
    bad = client.get("/api/v1/nodes?state=sleeping")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    assert "busy" in bad.json()["errors"][0]["message"]
