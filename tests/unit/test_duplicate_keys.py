"""Keys given twice in a spec file (YAML or JSON) are refused naming the key and its line, where the parser
kept the last one silently (`layers:` twice submitted the second, an empty one)."""

from __future__ import annotations

import json

import pytest
import yaml

from thresher.client.spec import SpecError, parse_job_spec
from thresher.model.duplicate_keys import json_duplicate, node_duplicate

TWICE = """name: shot010
layers:
  - name: render
    frames: 1-10
layers:
"""


def test_a_yaml_key_given_twice_is_refused_with_its_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_job_spec(TWICE, "shot.yaml")
    assert str(info.value) == "shot.yaml: duplicate key 'layers' (line 5; first at line 2)"
    nested = "name: j\nlayers:\n  - name: a\n    frames: 1-10\n    chunk: 2\n    frames: 1-100\n"
    with pytest.raises(SpecError, match=r"duplicate key 'frames' in layers\.0 \(line 6; first at line 4\)"):
        parse_job_spec(nested, "shot.yaml")


def test_a_json_key_given_twice_is_refused_with_its_line() -> None:
    text = '{\n  "name": "j",\n  "layers": [{"name": "a"}],\n  "layers": []\n}\n'
    with pytest.raises(SpecError) as info:
        parse_job_spec(text, "shot.json")
    assert str(info.value) == "shot.json: duplicate key 'layers' (line 4; first at line 3)"
    with pytest.raises(SpecError, match=r"duplicate key 'name' in layers\.0 \(line 1, column 27; first at column 14\)"):
        parse_job_spec('{"layers": [{"name": "a", "name": "b"}]}', "one-line.json")


@pytest.mark.parametrize("text", [
    "name: j\nlayers: [{name: a}]\n",
    "base: &b {cores: 2}\nname: j\nresources: {<<: *b, cores: 4}\n",   # a merge's keys may be overridden
    "name: j\nwedge: {1: a, '1': b}\n",                                 # 1 and "1" are two keys
    "name: j\nlayers:\n  - {name: a}\n  - {name: a}\n",                 # twice in two objects: the spec's concern
    "a: &x [*x]\nname: j\n",                                            # an alias holding itself
])
def test_keys_given_once_per_object_pass(text: str) -> None:
    assert parse_job_spec(text, "ok.yaml")["name"] == "j"
    assert node_duplicate(yaml.compose(text, Loader=yaml.SafeLoader)) is None


def test_json_duplicates_found_in_bytes_and_nothing_for_text_that_is_no_json() -> None:
    found = json_duplicate(json.dumps({"layers": [{"args": {}}]}).replace('{}', '{"x": 1, "x": 2}').encode())
    assert found is not None and (found.key, found.field) == ("x", "layers.0.args.x")
    assert json_duplicate('{"name": "j"') is None and json_duplicate('{"a": 1, "b": {"a": 2}}') is None
