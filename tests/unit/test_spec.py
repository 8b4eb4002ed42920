"""The job spec model: defaults, units and errors that name their field."""

import pytest
from pydantic import ValidationError

from thresher.model.document import document_problems
from thresher.model.inspection import inspect_spec
from thresher.model.problems import field_errors
from thresher.model.spec import MAX_LAYERS, JobSpec, parse_memory_mb
from thresher.server.errors import BadInput
from thresher.server.submit import check_spec


def _layer(**kw):
    return {"name": "render", "args": {"command": ["echo", "{frame}"]}, **kw}


def test_defaults_and_memory_units() -> None:
    spec = JobSpec.model_validate({"name": "j", "layers": [_layer(resources={"cores": 8, "memory": "4G"})]})
    layer = spec.layers[0]
    assert (layer.resources.cores, layer.resources.memory_mb, layer.resources.gpus) == (8, 4096, 0)
    assert layer.retries == 2 and layer.chunk == 1 and spec.priority == 50
    assert parse_memory_mb("512M") == 512 and parse_memory_mb("1.5GiB") == 1536 and parse_memory_mb(100) == 100


@pytest.mark.parametrize("layer,field,fragment", [
    (_layer(frames="1-"), "layers.0.frames", "cannot read"),
    (_layer(frames="1-10x0"), "layers.0.frames", "step"),
    (_layer(resources={"cores": -1}), "layers.0.resources.cores", "greater than"),
    (_layer(resources={"cores": 100000}), "layers.0.resources.cores", "less than"),
    (_layer(resources={"memory": "lots"}), "layers.0.resources.memory", "cannot read memory size"),
    (_layer(resources={"memory": "-4G"}), "layers.0.resources.memory", "negative"),
    (_layer(resources={"memory": "900000T"}), "layers.0.resources.memory", "less than or equal"),
    (_layer(resources={"memory_mb": 99999999999999999999}), "layers.0.resources.memory_mb", "less than"),
    (_layer(frames="99999999999999999999"), "layers.0.frames", "out of range"),
    (_layer(frames="1-10x3000000000"), "layers.0.frames", "out of range"),
    (_layer(frames="1-100:1000000"), "layers.0.frames", "cannot be larger than the range"),
    (_layer(chunk=0), "layers.0.chunk", "greater than"),
    (_layer(depends_on=["nope"]), "layers.0.depends_on", "no layer named"),
    (_layer(bogus=1), "layers.0.bogus", "not permitted"),
])
def test_errors_name_the_field(layer, field, fragment) -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate({"name": "j", "layers": [layer]})
    errors = field_errors(info.value)
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors


def test_layer_cycles_and_duplicates_are_refused() -> None:
    cyclic = {"name": "j", "layers": [_layer(name="a", depends_on=["b"]), _layer(name="b", depends_on=["a"])]}
    with pytest.raises(ValidationError, match="cycle"):
        JobSpec.model_validate(cyclic)
    with pytest.raises(ValidationError, match="used twice"):
        JobSpec.model_validate({"name": "j", "layers": [_layer(), _layer()]})


def test_a_cycle_is_named_layer_by_layer_from_its_first_layer() -> None:
    """Each arrow reads "depends on"; the cycle starts at the layer of it that comes first in the job."""
    spec = {"name": "j", "layers": [_layer(name="free"), _layer(name="b", depends_on=["a", "free"]),
                                    _layer(name="c", depends_on=["b"]), _layer(name="a", depends_on=["c"])]}
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(spec)
    assert field_errors(info.value) == [{"field": "layers", "message": "dependency cycle b -> a -> c -> b"}]


def _chain(count: int, *, closed: bool) -> dict:
    """`count` layers, each depending on the next one (so the spec lists them in reverse order of running);
    with `closed`, the last one depends on the first."""
    layers = [_layer(name=f"l{i}", depends_on=[f"l{i + 1}"]) for i in range(count - 1)]
    layers.append(_layer(name=f"l{count - 1}", depends_on=["l0"] if closed else []))
    return {"name": "chain", "layers": layers}


def test_the_largest_job_chained_in_reverse_order_is_accepted() -> None:
    checked = check_spec(_chain(MAX_LAYERS, closed=False))
    assert len(checked.layers) == MAX_LAYERS and checked.layers[0].spec.depends_on == ["l1"]


def test_a_cycle_through_the_largest_job_names_every_layer_of_it() -> None:
    with pytest.raises(BadInput) as info:
        check_spec(_chain(MAX_LAYERS, closed=True))
    (problem,) = info.value.errors
    names = [f"l{i}" for i in range(MAX_LAYERS)]
    assert problem == {"field": "layers", "message": "dependency cycle " + " -> ".join([*names, "l0"])}


def test_errors_across_fields_carry_their_location() -> None:
    """Not a field named in the message: pydantic's own location, so nested documents get it right too."""
    spec = {"name": "j", "layers": [_layer(name="a"), _layer(name="a"), _layer(name="c", depends_on=["c", "x"])]}
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(spec)
    found = {(error["loc"], error["msg"]) for error in info.value.errors()}
    assert found == {(("layers", 1, "name"), "layer name 'a' is used twice"),
                     (("layers", 2, "depends_on"), "a layer cannot depend on itself"),
                     (("layers", 2, "depends_on"), "no layer named 'x' in this job")}


def test_a_document_is_walked_once_for_nesting_and_nul() -> None:
    too_deep, nul = document_problems({"a": "x\u0000", "b": [{"c": "\u0000"}], "k\u0000": "v"})
    assert too_deep is None
    assert nul == [{"field": "a", "message": "must not contain NUL (\\x00) characters"},
                   {"field": "b.0.c", "message": "must not contain NUL (\\x00) characters"},
                   {"field": "(body)", "message": "key 'k\\x00' must not contain NUL (\\x00) characters"}]
    deep: object = "x"
    for _ in range(5000):  # far past the recursion limit: the walk has no recursion
        deep = [deep]
    too_deep, _ = document_problems({"layers": deep})
    assert too_deep == {"field": "layers" + ".0" * 31, "message": "nested more than 32 levels deep"}
    assert inspect_spec({"name": "j", "layers": deep}).problems == [too_deep]


def test_what_a_spec_needs_of_the_farm_comes_from_the_same_walk() -> None:
    spec = {"name": "j", "depends_on": [7], "layers": [
        _layer(resources={"cores": 4, "memory": "2G", "gpus": 1}, tags=["gpu"]),
        {"name": "tiled", "template": "povray", "tiles": "2x1", "frames": "1-2",
         "args": {"scene": "/s.pov", "output": "/o/s.####.png", "width": 8, "height": 8}}]}
    job = check_spec(spec)
    needs = [(layer.field, layer.needs.cores, layer.needs.memory_mb, layer.needs.gpus, sorted(layer.needs.tags))
             for layer in job.needs.layers]
    assert job.needs.depends_on == [7]
    assert needs == [("layers.0.resources", 4, 2048, 1, ["gpu"]), ("layers.1.resources", 1, 512, 0, []),
                     ("layers.1.tiles", 1, 512, 0, [])]
    assert [layer.spec.name for layer in job.layers] == ["render", "tiled", "tiled-stitch"]


def test_template_problems_are_reported_per_layer() -> None:
    with pytest.raises(BadInput) as info:
        check_spec({"name": "j", "layers": [_layer(template="nosuchapp"), _layer(name="b", args={})]})
    fields = {e["field"]: e["message"] for e in info.value.errors}
    assert "unknown template 'nosuchapp'" in fields["layers.0.template"]
    assert "layers.1.args.command" in fields



def test_a_typo_in_a_template_or_a_layer_name_says_what_was_meant() -> None:
    with pytest.raises(BadInput) as info:
        check_spec({"name": "j", "layers": [_layer(template="blendr"), _layer(name="comp", depends_on=["rendr"])]})
    fields = {e["field"]: e["message"] for e in info.value.errors}
    assert fields["layers.0.template"].startswith("unknown template 'blendr' (did you mean 'blender'?); installed")
    assert fields["layers.1.depends_on"] == "no layer named 'rendr' in this job (did you mean 'render'?)"


@pytest.mark.parametrize("job,field,fragment", [
    ({"depends_on": [99999999999999999999]}, "depends_on.0", "less than or equal"),
    ({"depends_on": [0]}, "depends_on.0", "greater than"),
    ({"name": "x\u0000y"}, "name", "control characters"),
    ({"project": "a\nb"}, "project", "control characters"),
    ({"shot": "a\tb"}, "shot", "control characters"),
])
def test_job_fields_out_of_range_or_with_control_characters(job, field, fragment) -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate({"name": "j", "layers": [_layer()], **job})
    errors = field_errors(info.value)
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors


def test_nul_anywhere_in_a_spec_is_refused_at_its_field() -> None:
    spec = {"name": "j\u0000", "env": {"A": "x\u0000"}, "layers": [
        _layer(args={"command": ["echo", "a\u0000b"]}, cwd="/tmp\u0000")]}
    with pytest.raises(BadInput) as info:
        check_spec(spec)
    fields = {e["field"]: e["message"] for e in info.value.errors}
    assert set(fields) == {"name", "env.A", "layers.0.args.command.1", "layers.0.cwd"}, fields
    assert all("NUL" in message for message in fields.values())


def test_every_problem_of_every_layer_is_reported_at_once() -> None:
    """A bad field in one layer does not hide another layer's unknown template, bad arguments or
    dependency on a missing layer."""
    spec = {"name": "j", "layers": [
        _layer(name="a", resources={"cores": -4}),
        _layer(name="b", template="nosuchapp", depends_on=["ghost"]),
        _layer(name="c", args={}, depends_on=["a", "phantom"]),
    ]}
    with pytest.raises(BadInput) as info:
        check_spec(spec)
    found = [(e["field"], e["message"]) for e in info.value.errors]
    fields = [field for field, _ in found]
    assert "layers.0.resources.cores" in fields
    assert ("layers.1.template", "unknown template 'nosuchapp'") in [(f, m.split(";")[0]) for f, m in found]
    assert ("layers.1.depends_on", "no layer named 'ghost' in this job") in found
    assert ("layers.2.depends_on", "no layer named 'phantom' in this job") in found
    assert "layers.2.args.command" in fields
    assert fields == sorted(fields, key=lambda f: int(f.split(".")[1]))  # layer by layer


def test_dependency_forms_short_and_long() -> None:
    import yaml
    spec = yaml.safe_load("""
name: j
depends_on: [3, {job: 4, on: finished}]
layers:
  - {name: sim, args: {command: ["true"]}}
  - name: render
    args: {command: ["true"]}
    depends_on: [sim, {layer: sim, frames: true}, {job: 12, layer: render, on: finished}]
""")
    job = JobSpec.model_validate(spec)
    assert job.job_ids() == [3, 4] and job.depends_on[1].on == "finished"  # type: ignore[union-attr]
    assert job.layers[1].layer_names() == ["sim", "sim"]
    assert job.layers[1].depends_on[2].on == "finished"  # type: ignore[union-attr]


@pytest.mark.parametrize("deps,field,fragment", [
    ([{"frames": True}], "layers.0.depends_on.0", "names a job, a layer"),
    ([{"job": 3, "frames": True}], "layers.0.depends_on.0", "frames: true needs a layer"),
    ([{"layer": "nope"}], "layers.0.depends_on", "no layer named 'nope'"),
    ([{"layer": "a", "on": "whenever"}], "layers.0.depends_on.0.on", "success"),
])
def test_dependency_long_forms_refused_name_their_field(deps: list[object], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate({"name": "j", "layers": [_layer(name="a", depends_on=deps)]})
    errors = field_errors(info.value)
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors
