"""The job page's dependency graph: every line runs from what is waited for to its waiter, left to right."""

from __future__ import annotations

from typing import Any

from thresher.server.dashboard import dep_graph


def _edge(waiter: tuple[int, str | None], target: tuple[int, str | None], state: str = "running",
          mode: str = "success", job_state: str | None = None, kind: str = "layer") -> dict[str, Any]:
    return {"waiter_job": waiter[0], "waiter_layer": waiter[1], "target_job": target[0], "target_layer": target[1],
            "target_job_name": f"j{target[0]}", "target_job_state": job_state or state, "target_state": state,
            "mode": mode, "kind": kind}


def test_boxes_sit_one_column_right_of_what_they_wait_for() -> None:
    edges = [_edge((3, "comp"), (3, "precomp")), _edge((3, "movie"), (3, "comp")),
             _edge((3, "precomp"), (1, "render"), "succeeded", "finished"), _edge((3, None), (2, None), "failed")]
    graph = dep_graph.layout(3, edges, {"precomp": "waiting", "comp": "waiting", "movie": "waiting"})
    assert graph is not None
    x = {box.label: box.x for box in graph.boxes}
    assert x["#1 render"] < x["#3 precomp"] < x["#3 comp"] < x["#3 movie"]
    assert x["job #2 j2"] < x["job #3 j3"]
    assert all(line.x1 < line.x2 for line in graph.lines)  # left to right, none backwards
    assert {box.label: box.state for box in graph.boxes}["job #2 j2"] == "failed"
    assert [line.mode for line in graph.lines].count("finished") == 1
    assert all(box.x + graph.box_w <= graph.width and box.y + graph.box_h <= graph.height for box in graph.boxes)


def test_no_graph_for_nothing_or_for_too_much() -> None:
    assert dep_graph.layout(1, [], {}) is None
    chain = [_edge((1, f"l{i + 1}"), (1, f"l{i}")) for i in range(dep_graph.MAX_BOXES)]
    assert dep_graph.layout(1, chain, {}) is None


def test_another_jobs_layer_box_has_the_layers_state_not_its_jobs() -> None:
    """Layer sim succeeded in a job another layer failed: its box is succeeded; a task edge's state is a
    task's, not its layer box's."""
    edges = [_edge((3, "comp"), (1, "sim"), "succeeded", job_state="failed", kind="frame"),
             _edge((3, "comp"), (1, "a"), "failed", job_state="failed"),
             _edge((3, "comp"), (2, "cache"), "failed", job_state="running", kind="task")]
    graph = dep_graph.layout(3, edges, {"comp": "blocked"})
    assert graph is not None
    assert {box.label: box.state for box in graph.boxes} == {"#3 comp": "blocked", "#1 sim": "succeeded",
                                                             "#1 a": "failed", "#2 cache": ""}
