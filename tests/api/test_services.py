"""Services over HTTP on a real server (both databases): add, list, show, set and remove with their clear
errors (422 naming the field, 404, 409), and a submit that takes a service's defaults, keeps its own
values, takes its template's default service, and is refused for an unknown service."""

from __future__ import annotations

from typing import Any

from tests.support.refusals import refused

from thresher.client.http import HttpClient


def test_services_are_added_changed_and_removed(farm) -> None:
    api: HttpClient = farm.api
    api.post("/limits", {"name": "maya", "max_total": 4})
    made = api.post("/services", {"name": "maya", "defaults": {
        "resources": {"cores": 4, "memory": "8G"}, "tags": ["maya"], "pools": ["default"], "limits": {"maya": 1},
        "timeout": 3600, "retries": 3}})
    assert made["name"] == "maya" and made["created_at"]
    assert made["defaults"]["resources"] == {"cores": 4, "memory_mb": 8192, "gpus": None}  # gpus: not given
    assert (made["defaults"]["tags"], made["defaults"]["limits"], made["defaults"]["retries"]) == (["maya"],
                                                                                                  {"maya": 1}, 3)
    assert [s["name"] for s in api.get("/services")["items"]] == ["maya"]
    assert api.get("/services/maya")["defaults"]["timeout"] == 3600
    refused(lambda: api.post("/services", {"name": "maya"}), 409, "name")
    refused(lambda: api.post("/services", {"name": "bad name"}), 422, "name")
    refused(lambda: api.post("/services", {"name": "x", "defaults": {"resources": {"cores": -1}}}), 422,
             "defaults.resources.cores")
    refused(lambda: api.post("/services", {"name": "x", "defaults": {"pools": ["nowhere"]}}), 422, "defaults.pools")
    refused(lambda: api.post("/services", {"name": "x", "defaults": {"limits": {"nuke": 1}}}), 422,
             "defaults.limits.nuke")
    refused(lambda: api.post("/services", {"name": "x", "defaults": {"frames": "1-2"}}), 422, "defaults.frames")
    refused(lambda: api.get("/services/nothing"), 404)
    assert [s["name"] for s in api.get("/services")["items"]] == ["maya"]  # nothing half-made

    changed = api.request("PATCH", "/services/maya", json={"defaults": {"resources": {"gpus": 1}, "retries": 1},
                                                          "clear": ["timeout", "pools"]})
    d = changed["defaults"]
    assert (d["resources"]["cores"], d["resources"]["memory_mb"], d["resources"]["gpus"]) == (4, 8192, 1)
    assert (d["retries"], d["timeout"], d["pools"], d["tags"]) == (1, None, None, ["maya"])
    refused(lambda: api.request("PATCH", "/services/maya", json={"defaults": {"retries": -1}}), 422,
             "defaults.retries")
    refused(lambda: api.request("PATCH", "/services/maya", json={"defaults": {"limits": {"katana": 1}}}), 422,
             "defaults.limits.katana")
    refused(lambda: api.request("PATCH", "/services/maya", json={"clear": ["frames"]}), 422, "clear.0")
    refused(lambda: api.request("PATCH", "/services/nothing", json={}), 404)
    assert api.get("/services/maya")["defaults"]["retries"] == 1  # a refused change changed nothing

    gone = api.request("DELETE", "/services/maya")
    assert gone["name"] == "maya" and api.get("/services")["items"] == []
    refused(lambda: api.request("DELETE", "/services/maya"), 404)


def _layer(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "frames": "1-2", "args": {"command": ["echo", "{frame}"]}, **fields}


def test_a_submit_takes_its_services_defaults(farm) -> None:
    api: HttpClient = farm.api
    api.post("/projects", {"name": "show"})
    api.post("/limits", {"name": "nuke", "max_total": 2})
    api.post("/services", {"name": "comp", "defaults": {"resources": {"cores": 4, "memory": "8G"}, "tags": ["nk"],
                                                        "limits": {"nuke": 1}, "timeout": 600, "retries": 4}})
    api.post("/services", {"name": "blender", "defaults": {"resources": {"gpus": 1}, "retries": 0}})
    spec = {"name": "shot", "project": "show", "layers": [
        _layer("own", service="comp", resources={"cores": 2}, retries=2, tags=["mine"]),
        _layer("plain", service="comp"),
        {"name": "blend", "template": "blender", "frames": "1", "args": {"scene": "/s.blend"}},
        _layer("none")]}

    dry = api.post("/jobs?dry_run=true", spec)
    by_name = {layer["name"]: layer for layer in dry["layers"]}
    assert (by_name["own"]["cores"], by_name["own"]["memory_mb"], by_name["own"]["service"]) == (2, 8192, "comp")

    job = api.post("/jobs", spec)
    layers = {layer["name"]: layer for layer in job["layers"]}
    own, plain, blend, none = layers["own"], layers["plain"], layers["blend"], layers["none"]
    assert (own["service"], own["cores"], own["memory_mb"], own["retries"], own["tags"]) == ("comp", 2, 8192, 2, ["mine"])
    assert (own["limits"], own["timeout"]) == ({"nuke": 1}, 600)
    assert (plain["cores"], plain["memory_mb"], plain["retries"], plain["tags"], plain["limits"]) == (
        4, 8192, 4, ["nk"], {"nuke": 1})
    assert (blend["service"], blend["gpus"], blend["retries"]) == ("blender", 1, 0)  # the template's default service
    assert (none["service"], none["cores"], none["retries"]) == (None, 1, 2)
    tasks = api.get(f"/jobs/{job['id']}/tasks")["items"]
    assert {t["layer"] for t in tasks} >= {"own", "plain"}

    bad = {**spec, "layers": [_layer("x", service="houdini")]}
    refused(lambda: api.post("/jobs", bad), 422, "layers.0.service")
    refused(lambda: api.post("/jobs?dry_run=true", bad), 422, "layers.0.service")

    # removing a service leaves the jobs that took it as they were
    api.request("DELETE", "/services/comp")
    again = {layer["name"]: layer for layer in api.get(f"/jobs/{job['id']}")["layers"]}
    assert (again["plain"]["cores"], again["plain"]["service"]) == (4, "comp")
    refused(lambda: api.post("/jobs", spec), 422, "layers.0.service")
