"""Job spec files: YAML and JSON read into dicts; broken ones named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from thresher.client.spec import SpecError, command_job_spec, load_job_spec, parse_job_spec
from thresher.model.spec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"


def test_yaml_and_json_give_the_same_dict(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nlayers:\n  - name: l\n    frames: 1-3\n")
    (tmp_path / "a.json").write_text('{"name": "a", "layers": [{"name": "l", "frames": "1-3"}]}')
    assert load_job_spec(tmp_path / "a.yaml") == load_job_spec(tmp_path / "a.json")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nlayers:\n  - name: a\n   frames: 1\n")
    with pytest.raises(SpecError) as info:
        load_job_spec(path)
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}, line 4")
    assert "invalid YAML" in str(info.value)


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "x",\n  "layers": [,]\n}\n')
    with pytest.raises(SpecError) as info:
        load_job_spec(path)
    assert (info.value.line, info.value.column) == (3, 14)
    assert str(info.value).startswith(f"{path}, line 3, column 14: ")


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("- a\n- b\n", "must be a mapping"),
    ("just text", "must be a mapping"),
])
def test_not_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_job_spec(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_job_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="directory"):
        load_job_spec(tmp_path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "img.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_job_spec(path)


def test_parse_from_text_defaults_to_yaml() -> None:
    assert parse_job_spec('{"name": "j", "layers": []}') == {"name": "j", "layers": []}


@pytest.mark.parametrize("name", ["simple.yaml", "layers.yaml"])
def test_example_specs_are_valid(name: str) -> None:
    from thresher.templates.command import CommandArgs

    spec = load_job_spec(EXAMPLES / name)
    JobSpec.model_validate(spec)
    for layer in spec["layers"]:
        CommandArgs.model_validate(layer["args"])
        # the README's quick start submits them to `thresher up --agents 2`, which splits a 2-core machine
        # (CI's) into agents of one core: a layer that needs two could never run there
        assert (layer.get("resources") or {}).get("cores", 1) <= 1, layer["name"]


def test_command_job_spec_is_a_valid_one_layer_job() -> None:
    spec = command_job_spec(["render", "-s", "{start}", "-e", "{end}"], frames="1-100", chunk=10, cores=4,
                            memory="2G", project="show", priority=70, tags=["linux"], retries=1, timeout=60,
                            outputs=["/out/f_####.exr"])
    job = JobSpec.model_validate(spec)
    assert job.name == "render 1-100"
    assert job.project == "show" and job.priority == 70
    (layer,) = job.layers
    assert layer.template == "command" and layer.frames == "1-100" and layer.chunk == 10
    assert layer.resources.cores == 4 and layer.resources.memory_mb == 2048
    assert layer.args == {"command": ["render", "-s", "{start}", "-e", "{end}"], "outputs": ["/out/f_####.exr"]}
    assert layer.tags == ["linux"] and layer.retries == 1 and layer.timeout == 60


def test_command_job_spec_shell_joins_words() -> None:
    spec = command_job_spec(["echo {frame}", "|", "tee", "log.txt"], shell=True)
    assert spec["layers"][0]["args"] == {"command": "echo {frame} | tee log.txt", "shell": True}
    JobSpec.model_validate(spec)


def test_command_job_spec_needs_a_command() -> None:
    with pytest.raises(ValueError):
        command_job_spec([])


def test_yaml_reads_on_yes_and_no_as_words_and_only_true_false_as_booleans() -> None:
    spec = parse_job_spec("name: j\nlayers:\n  - name: b\n    depends_on: [{layer: a, on: finished}]\n"
                          "    wedge: [yes, no, off]\n    args: {shell: true, quiet: False}\n")
    layer = spec["layers"][0]
    assert layer["depends_on"] == [{"layer": "a", "on": "finished"}]
    assert layer["wedge"] == ["yes", "no", "off"]
    assert layer["args"] == {"shell": True, "quiet": False}
