"""Scenarios: typed, refused naming the field, resized by --nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from thresher.sim.scenario import ScenarioError, load_scenario, parse_scenario, with_node_counts

BASE = {"nodes": [{"name": "cpu", "count": 4}], "jobs": [{"name": "j", "layers": [{"name": "r", "frames": 10}]}]}


def test_the_example_scenario_loads() -> None:
    scenario = load_scenario(Path(__file__).parents[2] / "examples" / "sim" / "studio.yaml")
    assert {g.name for g in scenario.nodes} == {"cpu", "gpu"}


@pytest.mark.parametrize(("change", "field"), [
    ({"nodes": [{"name": "cpu", "count": -1}]}, "nodes.0.count"),
    ({"jobs": [{"name": "j", "layers": [{"name": "r", "frames": 1, "frame_time": {"dist": "normal"}}]}]},
     "jobs.0.layers.0.frame_time.dist"),
    ({"nodes": [{"name": "cpu", "count": 1, "colour": "red"}]}, "nodes.0.colour"),
])
def test_bad_input_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario({**BASE, **change}, "s.yaml")
    assert field in str(error.value) and "Traceback" not in str(error.value)


def test_references_are_checked() -> None:
    with pytest.raises(ScenarioError, match="not an earlier job"):
        parse_scenario({**BASE, "jobs": [{"name": "j", "depends_on": ["k"], "layers": [{"name": "r", "frames": 1}]}]})
    with pytest.raises(ScenarioError, match="no node group serves"):
        parse_scenario({**BASE, "projects": [{"name": "p"}], "stakes": [{"project": "p", "pool": "gpu"}]})
    with pytest.raises(ScenarioError, match="service 'nuke' is not in services"):
        parse_scenario({**BASE, "jobs": [{"name": "j", "layers": [{"name": "r", "frames": 1, "service": "nuke"}]}]})
    with pytest.raises(ScenarioError, match="unknown limits"):
        parse_scenario({**BASE, "services": [{"name": "nuke", "defaults": {"limits": {"nuke": 1}}}]})
    with pytest.raises(ScenarioError, match="services.0.defaults.resources.cores"):
        parse_scenario({**BASE, "services": [{"name": "nuke", "defaults": {"resources": {"cores": 0}}}]})


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("nodes: [")
    with pytest.raises(ScenarioError, match="not YAML"):
        load_scenario(path)


def test_node_overrides() -> None:
    scenario = parse_scenario(BASE)
    assert with_node_counts(scenario, ["cpu=+40"]).nodes[0].count == 44
    assert with_node_counts(scenario, ["cpu=-10"]).nodes[0].count == 0
    assert with_node_counts(scenario, ["cpu=7"]).nodes[0].count == 7
    with pytest.raises(ScenarioError, match="GROUP"):
        with_node_counts(scenario, ["gpu=+1"])
