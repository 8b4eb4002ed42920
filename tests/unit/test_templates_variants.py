"""Path mapping between OSes, tiles (regions, tile files, the added stitch layer, the stitch tool) and wedges."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from thresher.model.dry_run import dry_run
from thresher.model.frames import Chunk
from thresher.model.paths import PathRule, map_path
from thresher.server.errors import BadInput
from thresher.server.submit import check_spec
from thresher.templates import get_template
from thresher.templates.base import Target
from thresher.templates.tiles import tile_path, tile_region
from thresher.tools.stitch import main as stitch_main

RULES = [PathRule.model_validate({"from": "Z:/projects", "to": {"linux": "/mnt/projects", "darwin": "/Volumes/projects"}}),
         PathRule.model_validate({"from": "//filer/shows", "to": {"linux": "/shows", "windows": "\\\\filer\\shows"}}),
         PathRule.model_validate({"from": "/mnt/projects", "to": {"windows": "Z:/projects"}})]


@pytest.mark.parametrize("path,os_name,expected", [
    ("Z:/projects/sh010/a.blend", "linux", "/mnt/projects/sh010/a.blend"),
    ("z:\\Projects\\sh010\\a.blend", "linux", "/mnt/projects/sh010/a.blend"),
    ("Z:/projects/sh010/a.blend", "darwin", "/Volumes/projects/sh010/a.blend"),
    ("Z:/projects/sh010/a.blend", "windows", "Z:/projects/sh010/a.blend"),
    ("Z:/projectsX/a.blend", "linux", "Z:/projectsX/a.blend"),
    ("\\\\filer\\shows\\x\\r.####.exr", "linux", "/shows/x/r.####.exr"),
    ("//filer/shows/x/a.nk", "Windows", "\\\\filer\\shows\\x\\a.nk"),
    ("/mnt/projects/sh010/a.blend", "windows", "Z:\\projects\\sh010\\a.blend"),
    ("/mnt/projects/sh010/a.blend", "linux", "/mnt/projects/sh010/a.blend"),
    ("relative/a.blend", "linux", "relative/a.blend"),
])
def test_map_path(path: str, os_name: str, expected: str) -> None:
    assert map_path(path, RULES, os_name) == expected


def test_path_mapping_applies_to_scene_and_output_per_node_os() -> None:
    spec = {"name": "j", "path_mapping": [{"from": "Z:/projects", "to": {"linux": "/mnt/projects"}}],
            "layers": [{"name": "r", "template": "blender", "frames": "1-2", "chunk": 2,
                        "args": {"scene": "Z:\\projects\\a.blend", "output": "Z:/projects/r/a.####.png"}}]}
    checked = check_spec(spec)
    task = dry_run(checked)["tasks"][0]
    assert task["argv"][2] == "/mnt/projects/a.blend"
    assert task["outputs"] == ["/mnt/projects/r/a.0001.png", "/mnt/projects/r/a.0002.png"]
    windows = dry_run(checked, target_os="windows")["tasks"][0]
    assert windows["argv"][2] == "Z:\\projects\\a.blend" and windows["argv"][0].endswith("blender.exe")


def test_bad_path_rule_is_a_clear_error() -> None:
    with pytest.raises(BadInput) as err:
        check_spec({"name": "j", "path_mapping": [{"from": "Z:/p", "to": {"beos": "/p"}}], "layers": [{"name": "r",
                    "args": {"command": ["echo", "{frame}"]}}]})
    assert err.value.errors[0]["field"].startswith("path_mapping.0.to")


# ---------------------------------------------------------------------------- tiles
def test_tile_regions_cover_the_frame_exactly() -> None:
    for width, height, nx, ny in ((64, 48, 2, 2), (101, 37, 3, 4), (10, 10, 4, 1)):
        covered: set[tuple[int, int]] = set()
        for row in range(ny):
            for col in range(nx):
                left, top, right, bottom = tile_region(width, height, col, row, nx, ny)
                cells = {(x, y) for x in range(left, right) for y in range(top, bottom)}
                assert not covered & cells
                covered |= cells
        assert len(covered) == width * height


def test_tile_path_keeps_the_frame_number_last() -> None:
    assert tile_path("/r/a.####.png", 1, 0) == "/r/a.tile_1_0.####.png"
    assert tile_path("/r/a.png", 0, 1) == "/r/a.tile_0_1.png"


def test_tiled_layer_gets_a_stitch_layer_that_dependents_follow() -> None:
    spec = {"name": "j", "layers": [
        {"name": "beauty", "template": "povray", "frames": "1-2", "tiles": "2x2",
         "args": {"scene": "/s/a.pov", "output": "/r/a.####.png", "width": 64, "height": 48}},
        {"name": "movie", "template": "ffmpeg", "frames": "1-2", "depends_on": ["beauty"],
         "args": {"input": "/r/a.####.png", "output": "/r/a.mp4"}}]}
    checked = check_spec(spec)
    assert [(c.spec.name, c.spec.depends_on, c.task_count) for c in checked.layers] == [
        ("beauty", [], 8), ("beauty-stitch", ["beauty"], 2), ("movie", ["beauty-stitch"], 1)]
    tasks = dry_run(checked)["tasks"]
    tile = tasks[1]
    assert tile["part"] == {"tile": [1, 0], "tiles": [2, 2]}
    assert {"+SC33", "+EC64", "+SR0.0", "+ER24"} <= set(tile["argv"])
    assert tile["outputs"] == ["/r/a.tile_1_0.0001.png"]
    stitch = [t for t in tasks if t["layer"] == "beauty-stitch"][0]
    assert stitch["argv"][1:3] == ["-m", "thresher.tools.stitch"] and stitch["outputs"] == ["/r/a.0001.png"]


def test_blender_tile_border() -> None:
    template = get_template("blender")
    args = template.parse_args({"scene": "a.blend", "output": "/r/a.####.png", "width": 100, "height": 50})
    line = template.build(args, Chunk(0, "1", 1, 1, 1, 1, {"tile": [0, 1], "tiles": [2, 2]}), Target())
    expr = line.argv[line.argv.index("--python-expr") + 1]
    assert "r.border_min_x = 0.0" in expr and "r.border_max_x = 0.5" in expr
    assert "r.border_min_y = 0.0" in expr and "r.border_max_y = 0.5" in expr and "use_crop_to_border = False" in expr
    assert line.outputs == ["/r/a.tile_0_1.0001.png"]


@pytest.mark.parametrize("spec_layer,message", [
    ({"template": "maya", "args": {"scene": "a.mb"}}, "cannot render tiles"),
    ({"template": "blender", "args": {"scene": "a.blend", "output": "/r/a.####.png"}}, "width and height"),
    ({"template": "blender", "args": {"scene": "a.blend", "width": 9, "height": 9}}, "output"),
])
def test_tiles_refused_clearly(spec_layer: dict, message: str) -> None:
    with pytest.raises(BadInput) as err:
        check_spec({"name": "j", "layers": [{"name": "r", "tiles": [2, 2], **spec_layer}]})
    assert err.value.errors[0]["field"] == "layers.0.tiles" and message in err.value.errors[0]["message"]


@pytest.mark.parametrize("spec_layer,field,message", [
    ({"template": "povray", "args": {"scene": "a.pov", "output": "/r/a.####.exr"}}, "layers.0.args.output", ".exr files"),
    ({"template": "povray", "args": {"scene": "a.pov", "output": "/r/a.####.hdr"}}, "layers.0.args.output", ".hdr files"),
    ({"template": "blender", "args": {"scene": "a.blend", "output": "/r/a.####.exr", "width": 8, "height": 8}},
     "layers.0.args.output", ".exr files"),
    ({"template": "blender", "args": {"scene": "a.blend", "output": "/r/a.####.png", "width": 8, "height": 8,
                                      "format": "open_exr"}}, "layers.0.args.format", "OPEN_EXR images"),
])
def test_tiles_in_formats_the_stitch_tool_cannot_read_are_refused_at_submit(spec_layer: dict, field: str,
                                                                             message: str) -> None:
    with pytest.raises(BadInput) as err:
        check_spec({"name": "j", "layers": [{"name": "r", "tiles": "2x2", **spec_layer}]})
    assert err.value.errors[0]["field"] == field and message in err.value.errors[0]["message"], err.value.errors
    assert "Pillow" in err.value.errors[0]["message"]
    # the same layers without tiles are fine, and tiles in a format Pillow reads and writes are too
    check_spec({"name": "j", "layers": [{"name": "r", **spec_layer}]})
    args = {**spec_layer["args"], "output": "/r/a.####.tga"}
    args.pop("format", None)
    check_spec({"name": "j", "layers": [{"name": "r", "tiles": "2x2", **spec_layer, "args": args}]})


def test_stitch_tool_assembles_full_size_and_region_tiles(tmp_path: Path) -> None:
    full = Image.new("RGB", (30, 20))
    for x in range(30):
        for y in range(20):
            full.putpixel((x, y), (x * 8, y * 12, 100))
    pattern = str(tmp_path / "f.####.png")
    for row in range(2):
        for col in range(3):
            box = tile_region(30, 20, col, row, 3, 2)
            if (col + row) % 2:  # region only
                tile = full.crop(box)
            else:  # full size, only its region rendered
                tile = Image.new("RGB", (30, 20))
                tile.paste(full.crop(box), box[:2])
            tile.save(tile_path(pattern, col, row).replace("####", "0007"))
    assert stitch_main(["--output", pattern, "--tiles", "3x2", "--size", "30x20", "--frames", "7", "--remove-tiles"]) == 0
    with Image.open(tmp_path / "f.0007.png") as out:
        assert out.convert("RGB").tobytes() == full.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.0007.png"]
    # a second run (a retried task) finds the frame done, and marks it as written now for the output check
    os.utime(tmp_path / "f.0007.png", (1_000_000_000, 1_000_000_000))
    before = time.time() - 1
    assert stitch_main(["--output", pattern, "--tiles", "3x2", "--size", "30x20", "--frames", "7"]) == 0
    assert (tmp_path / "f.0007.png").stat().st_mtime >= before
    assert stitch_main(["--output", pattern, "--tiles", "3x2", "--size", "30x20", "--frames", "8"]) == 1


# ---------------------------------------------------------------------------- wedges
def test_wedge_layer_iterates_values_and_frames() -> None:
    spec = {"name": "j", "layers": [{"name": "w", "frames": "1-4", "chunk": 2, "wedge": [0.1, 0.5, "hi"],
                                     "args": {"command": [sys.executable, "-c", "pass", "{wedge}", "{wedge_index}",
                                                          "{start}"], "outputs": ["/r/w{wedge_index}.####.png"]}}]}
    checked = check_spec(spec)
    assert checked.layers[0].task_count == 6
    tasks = dry_run(checked)["tasks"]
    assert [t["argv"][3:] for t in tasks] == [["0.1", "0", "1"], ["0.5", "1", "1"], ["hi", "2", "1"],
                                              ["0.1", "0", "3"], ["0.5", "1", "3"], ["hi", "2", "3"]]
    assert tasks[2]["outputs"] == ["/r/w2.0001.png", "/r/w2.0002.png"]


def test_wedge_placeholder_in_application_args() -> None:
    spec = {"name": "j", "layers": [{"name": "w", "template": "blender", "frames": "1", "wedge": [8, 32],
                                     "args": {"scene": "a.blend", "output": "/r/s{wedge}.####.png",
                                              "extra_args": ["--python-expr", "import bpy; bpy.context.scene.cycles.samples = {wedge}"]}}]}
    tasks = dry_run(check_spec(spec))["tasks"]
    assert tasks[1]["outputs"] == ["/r/s32.0001.png"]
    assert "import bpy; bpy.context.scene.cycles.samples = 32" in tasks[1]["argv"]


def test_wedge_and_frame_placeholders_in_number_arguments() -> None:
    spec = {"name": "j", "layers": [{"name": "w", "template": "blender", "frames": "1-2", "chunk": 2, "wedge": [8, 32],
                                     "args": {"scene": "a.blend", "output": "/r/s{wedge}.####.png", "samples": "{wedge}",
                                              "width": "1{wedge_index}", "height": 10}}]}
    checked = check_spec(spec)
    tasks = dry_run(checked)["tasks"]
    exprs = [t["argv"][t["argv"].index("--python-expr") + 1] for t in tasks]
    assert "s.cycles.samples = 8" in exprs[0] and "s.cycles.samples = 32" in exprs[1]
    assert "r.resolution_x = 10" in exprs[0] and "r.resolution_x = 11" in exprs[1]
    # stored as written (placeholders kept), parsed again by the dispatcher to the same commands
    layer = checked.layers[0]
    stored = layer.args.model_dump(mode="json")
    assert stored["samples"] == "{wedge}" and stored["height"] == 10
    again = layer.template.parse_args(stored)
    assert again == layer.args
    assert [layer.template.build(again, c, Target()).argv for c in layer.chunks()] == [t["argv"] for t in tasks]
    # a frame placeholder: each task gets its own value
    spec = {"name": "j", "layers": [{"name": "p", "template": "povray", "frames": "1-4", "chunk": 2,
                                     "args": {"scene": "a.pov", "output": "/r/a.####.png", "quality": "{start}"}}]}
    assert [t["argv"][-1] for t in dry_run(check_spec(spec))["tasks"]] == ["+Q1", "+Q3"]


@pytest.mark.parametrize("args,wedge,field,message", [
    ({"samples": "{wedge}"}, [8, "lots"], "layers.0.args", "samples: Input should be a valid integer"),
    ({"samples": "{wedge}"}, [8, 0], "layers.0.args", "samples: Input should be greater than or equal to 1"),
    ({"samples": "many"}, [8], "layers.0.args.samples", "valid integer"),
    ({"samples": "{wedge}", "device": "TPU"}, [8], "layers.0.args.device", "CPU"),
])
def test_bad_placeholder_values_are_refused_at_submit(args: dict, wedge: list, field: str, message: str) -> None:
    with pytest.raises(BadInput) as err:
        check_spec({"name": "j", "layers": [{"name": "w", "template": "blender", "wedge": wedge,
                                             "args": {"scene": "a.blend", "output": "/r/{wedge}.####.png", **args}}]})
    assert err.value.errors[0]["field"] == field and message in err.value.errors[0]["message"], err.value.errors


def _warnings(layer: dict) -> list[str]:
    return check_spec({"name": "j", "layers": [{"name": "r", **layer}]}).warnings


def test_wedge_outputs_without_a_wedge_placeholder_warn() -> None:
    args = {"scene": "a.pov", "extra_args": ["Declare=Rough={wedge}"]}
    found = _warnings({"template": "povray", "wedge": [0.1, 0.3], "args": {**args, "output": "/r/look.####.png"}})
    assert any("overwrite each other" in w and "/r/look.####.png" in w for w in found), found
    assert dry_run(check_spec({"name": "j", "layers": [{"name": "r", "template": "povray", "wedge": [0.1],
                                                        "args": {**args, "output": "/r/look.####.png"}}]}))["warnings"]
    assert not _warnings({"template": "povray", "wedge": [0.1, 0.3], "args": {**args, "output": "/r/w{wedge_index}.####.png"}})
    assert not _warnings({"template": "povray", "args": {**args, "output": "/r/look.####.png"}})
    found = _warnings({"wedge": [1, 2], "args": {"command": ["render", "{wedge}", "{frame}"], "outputs": ["/r/a.####.png"]}})
    assert any("overwrite each other" in w for w in found), found


@pytest.mark.parametrize("layer", [
    {"template": "maya", "frames": "1-2", "args": {"scene": "a.mb"}},
    {"template": "blender", "frames": "1-2", "args": {"scene": "a.blend"}},
    {"template": "nuke", "frames": "1-2", "args": {"scene": "a.nk"}},
    {"template": "houdini", "frames": "1-2", "args": {"scene": "a.usd"}},
])
def test_layers_that_write_files_without_output_warn_they_go_unchecked(layer: dict) -> None:
    found = _warnings(layer)
    assert any("no output given" in w and "not checked" in w for w in found), found
    assert not _warnings({**layer, "args": {**layer["args"], "output": "/r/a.####.exr"}})


def test_ffmpeg_layer_without_frames_warns() -> None:
    args = {"input": "/r/a.####.png", "output": "/r/a.mp4"}
    found = _warnings({"template": "ffmpeg", "args": args})
    assert any("frames" in w and "frame 1" in w for w in found), found
    assert not _warnings({"template": "ffmpeg", "frames": "1-24", "args": args})


def test_tiles_and_wedge_together_refused() -> None:
    with pytest.raises(BadInput):
        check_spec({"name": "j", "layers": [{"name": "r", "tiles": "2x2", "wedge": [1], "args": {"command": "x {frame}"}}]})


@pytest.mark.parametrize("name,args", [
    ("blender", {"scene": "a.blend", "output": "/r/a.####.png", "engine": "eevee_next", "device": "gpu"}),
    ("povray", {"scene": "a.pov", "output": "/r/a.####.png"}),
    ("maya", {"scene": "a.mb", "renderer": "Software"}),
    ("houdini", {"scene": "a.usd", "output": "/r/a.####.exr"}),
    ("nuke", {"scene": "a.nk"}), ("katana", {"scene": "a.katana"}), ("vray", {"scene": "a.vrscene"}),
    ("arnold", {"scene": "a.ass"}), ("redshift", {"scene": "a.rs"}),
    ("ffmpeg", {"input": "/r/a.####.png", "output": "/r/a.mov"}),
    ("stitch", {"output": "/r/a.####.png", "tiles": [2, 2], "size": [8, 8]}),
])
def test_validated_args_validate_again_unchanged(name: str, args: dict) -> None:
    """build() re-validates arguments after mapping paths and filling wedge values: that must be a no-op."""
    template = get_template(name)
    parsed = template.parse_args(args)
    chunk = Chunk(0, "1", 1, 1, 1, 1)
    plain = template.build(parsed, chunk, Target()).argv
    again = template.build(parsed, Chunk(0, "1", 1, 1, 1, 1, {"wedge": 1, "wedge_index": 0}), Target(),
                           [PathRule.model_validate({"from": "/elsewhere", "to": "/x"})]).argv
    assert plain == again
