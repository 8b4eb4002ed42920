"""The merge of a service's defaults into a layer (`model/services.py`), without HTTP or database:
the layer's own values win field by field, the template's default service applies only when it exists,
and an unknown service is refused at its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from thresher.model.inspection import inspect_spec
from thresher.model.services import ServiceDefaults, apply_service, merge_defaults
from thresher.model.spec import LayerSpec

MAYA = ServiceDefaults.model_validate({"resources": {"cores": 8, "memory": "16G"}, "tags": ["maya"],
                                      "limits": {"maya": 1}, "timeout": 3600, "retries": 5})


def _layer(**fields: Any) -> LayerSpec:
    return LayerSpec.model_validate({"name": "render", "args": {"command": ["true"]}, **fields})


def test_a_layer_takes_what_it_did_not_set() -> None:
    layer = apply_service(_layer(), "maya", MAYA)
    assert (layer.service, layer.resources.cores, layer.resources.memory_mb, layer.resources.gpus) == ("maya", 8, 16384, 0)
    assert (layer.tags, layer.limits, layer.timeout, layer.retries) == (["maya"], {"maya": 1}, 3600, 5)


def test_the_layers_own_values_win_even_when_they_are_the_defaults() -> None:
    layer = apply_service(_layer(resources={"cores": 2}, retries=2, tags=[], timeout=10), "maya", MAYA)
    assert (layer.resources.cores, layer.resources.memory_mb) == (2, 16384)  # figure by figure
    assert (layer.retries, layer.tags, layer.timeout, layer.limits) == (2, [], 10, {"maya": 1})
    mem = apply_service(_layer(resources={"memory": "1G"}), "maya", MAYA)
    assert (mem.resources.cores, mem.resources.memory_mb) == (8, 1024)


def test_defaults_are_checked_like_a_layers_fields() -> None:
    for bad, field in [({"resources": {"cores": 0}}, "cores"), ({"resources": {"memory": "-1G"}}, "memory"),
                       ({"tags": ["a b"]}, "tags"), ({"pools": ["x/y"]}, "pools"), ({"limits": {"nuke": 0}}, "limits"),
                       ({"timeout": -1}, "timeout"), ({"retries": 101}, "retries"), ({"frames": "1-2"}, "frames")]:
        with pytest.raises(ValidationError) as info:
            ServiceDefaults.model_validate(bad)
        assert field in str(info.value), bad
    assert ServiceDefaults.model_validate({"resources": {"memory": "2G"}}).stored() == {"resources": {"memory_mb": 2048}}


def test_merge_replaces_given_fields_and_clears_named_ones() -> None:
    merged = merge_defaults(MAYA, ServiceDefaults.model_validate({"resources": {"gpus": 1}, "tags": ["gpu"]}),
                            frozenset({"timeout", "resources.cores"}))
    assert merged.stored() == {"resources": {"memory_mb": 16384, "gpus": 1}, "tags": ["gpu"], "limits": {"maya": 1},
                               "retries": 5}


def test_inspection_applies_services_and_template_defaults() -> None:
    blender = ServiceDefaults.model_validate({"resources": {"gpus": 1}, "pools": ["gpu"]})
    spec: dict[str, Any] = {"name": "j", "layers": [
        {"name": "a", "service": "maya", "args": {"command": ["true"]}, "resources": {"cores": 2}},
        {"name": "b", "template": "blender", "args": {"scene": "/s.blend"}},
        {"name": "c", "template": "nuke", "args": {"scene": "/c.nk"}}]}
    job, problems, needs = inspect_spec(spec, {"maya": MAYA, "blender": blender})
    assert job is not None, problems
    a, b, c = (layer.spec for layer in job.layers)
    assert (a.service, a.resources.cores, a.resources.memory_mb) == ("maya", 2, 16384)
    assert (b.service, b.resources.gpus, b.pools) == ("blender", 1, ["gpu"])
    assert c.service is None  # nuke's default service does not exist: no error
    assert needs.layers[1].needs.gpus == 1 and job.spec.layers[0].service == "maya"
    _, problems, _ = inspect_spec({**spec, "layers": [{**spec["layers"][0], "service": "houdinii"}]}, {})
    assert [p["field"] for p in problems] == ["layers.0.service"]
    _, problems, _ = inspect_spec(spec)  # no farm: services left as named
    assert not problems
