"""Properties of frame specs, chunking and spec validation, with hypothesis (issue 13). Pure and fast.

- Frame specs (`model/frames.py`, read with fileseq): a spec that parses holds frames that print back
  to the same frames, whatever its ranges, steps (`x`, `y`, `:`), negative frames and repeats.
- Chunking: every frame in exactly one chunk, in the spec's order, no chunk larger than asked, each
  chunk's stored text reading back to its frames; tiles and wedge values multiply the tasks.
- Validation (`model/inspection.inspect_spec`): any document is either refused with problems that each
  name a field, or checked into layers whose tasks are what chunking says; never another exception.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from thresher.model.frames import (  # noqa: E402
    FrameSpecError,
    chunk_count,
    chunk_fields,
    frame_bounds,
    frame_count,
    is_arithmetic,
    iter_chunks,
    parse_frames,
)
from thresher.model.inspection import inspect_spec  # noqa: E402
from thresher.model.spec import JobSpec  # noqa: E402

#: A deeper, random run by hand: `THRESHER_FUZZ_EXAMPLES=5000 THRESHER_FUZZ_RANDOM=1`.
PROPERTIES = settings(max_examples=int(os.environ.get("THRESHER_FUZZ_EXAMPLES", "100")), deadline=None,
                      derandomize="THRESHER_FUZZ_RANDOM" not in os.environ, database=None,
                      suppress_health_check=[HealthCheck.too_slow])

FRAME = st.integers(-300, 300)
STEP = st.integers(1, 40)


@st.composite
def frame_parts(draw: st.DrawFn) -> str:
    """One comma-separated part: a frame, a range, a range by a step (`x`), its inverse (`y`) or staggered (`:`)."""
    start, end = draw(FRAME), draw(FRAME)
    kind = draw(st.sampled_from(["frame", "range", "x", "y", ":"]))
    if kind == "frame":
        return str(start)
    if kind == "range":
        return f"{start}-{end}"
    step = draw(STEP)
    if kind == ":":
        step = min(step, abs(end - start) + 1)
    return f"{start}-{end}{kind}{step}"


def _parses(spec: str) -> bool:
    try:
        parse_frames(spec)
    except FrameSpecError:
        return False  # `5-5y1` holds no frames
    return True


SPECS = st.lists(frame_parts(), min_size=1, max_size=4).map(",".join)
VALID_SPECS = SPECS.filter(_parses)
TEXT_SPECS = st.one_of(SPECS, st.text(st.sampled_from("0123456789-,xy: "), min_size=1, max_size=16))


def _frames(spec: str) -> list[int]:
    return [int(f) for f in parse_frames(spec)]


@PROPERTIES
@given(spec=TEXT_SPECS)
def test_a_spec_that_parses_prints_back_to_the_same_frames(spec: str) -> None:
    try:
        frames = _frames(spec)
    except FrameSpecError as exc:
        assert str(exc)  # refused in words, never another exception
        return
    assert frames and len(frames) == len(set(frames)) == frame_count(spec)  # repeats are dropped
    printed = str(parse_frames(spec))
    assert _frames(printed) == frames
    text, start, end, _step, count = chunk_fields(frames)
    assert _frames(text) == frames and (start, end, count) == (frames[0], frames[-1], len(frames))
    assert frame_bounds(spec) == (min(frames), max(frames))  # `20-30,1-10` is 1 to 30 (POV-Ray's clock)


@PROPERTIES
@given(start=FRAME, end=FRAME, step=STEP)
def test_ranges_with_steps_hold_what_arithmetic_says(start: int, end: int, step: int) -> None:
    forward = range(start, end + 1, step) if start <= end else range(start, end - 1, -step)
    assert _frames(f"{start}-{end}x{step}") == list(forward)
    assert is_arithmetic(f"{start}-{end}x{step}")
    assert _frames(f"{start}") == [start]


@PROPERTIES
@given(spec=VALID_SPECS, size=st.integers(1, 50))
def test_every_frame_lands_in_exactly_one_chunk_in_order(spec: str, size: int) -> None:
    frames = _frames(spec)
    chunks = list(iter_chunks(spec, size))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [f for c in chunks for f in c.frame_list()] == frames
    assert len(chunks) == chunk_count(spec, size)
    for chunk in chunks:
        listed = chunk.frame_list()
        assert 1 <= chunk.count == len(listed) <= size
        assert (chunk.start, chunk.end) == (listed[0], listed[-1])
        assert _frames(chunk.frames) == listed  # the stored text reads back to the chunk's frames
        if chunk.step:
            assert listed == list(range(chunk.start, chunk.end + (1 if chunk.step > 0 else -1), chunk.step))
    if is_arithmetic(spec):  # ranges-only applications get one run per chunk
        assert all(c.step for c in chunks)


def _command_layer(**fields: Any) -> dict[str, Any]:
    return {"name": "render", "args": {"command": ["echo", "{frame}"]}, **fields}


@PROPERTIES
@given(spec=VALID_SPECS, size=st.integers(1, 20),
       variant=st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4)).filter(lambda t: t[0] * t[1] > 1),
                         st.lists(st.one_of(st.integers(-5, 5), st.text("abc", min_size=1, max_size=3)),
                                  min_size=1, max_size=4)))
def test_tiles_and_wedge_values_multiply_the_chunks(spec: str, size: int, variant: Any) -> None:
    layer = _command_layer(frames=spec, chunk=size)
    if isinstance(variant, tuple):
        layer = {**layer, "template": "blender", "tiles": list(variant),
                 "args": {"scene": "/shots/a.blend", "output": "/out/a_####.png", "width": 64, "height": 64}}
    elif isinstance(variant, list):
        layer["wedge"] = variant
    job, problems, _needs = inspect_spec({"name": "props", "layers": [layer]})
    assert job is not None and not problems, problems
    parts = 1 if variant is None else len(variant) if isinstance(variant, list) else variant[0] * variant[1]
    checked = job.layers[0]
    assert checked.task_count == chunk_count(spec, size) * parts == len(list(checked.chunks()))
    assert len(job.layers) == (2 if isinstance(variant, tuple) else 1)  # tiles add their stitch layer
    if isinstance(variant, tuple):
        assert job.layers[1].task_count == chunk_count(spec, size)
    by_chunk: dict[tuple[int, int, str], list[Any]] = {}
    for chunk in checked.chunks():
        by_chunk.setdefault((chunk.start, chunk.end, chunk.frames), []).append(chunk.part)
    assert all(len(found) == parts for found in by_chunk.values())  # each chunk once per tile or wedge value
    assert all(found == by_chunk[next(iter(by_chunk))] for found in by_chunk.values())


# Values that pydantic and the checks take, refuse, or choke on: wrong types, huge numbers, odd text.
ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                st.text(max_size=8), st.sampled_from(["auto", "1-10", "2x2", "4G", "fml:3", "\x00", "\ud800"]),
                st.lists(st.integers(-3, 3), max_size=3), st.just({}))
LAYER_FIELDS = st.sampled_from(["name", "template", "args", "frames", "chunk", "target_task_s", "max_chunk",
                                "resources", "tags", "pools", "limits", "service", "retries", "timeout",
                                "depends_on", "env", "cwd", "tiles", "wedge", "scout", "scout_release", "bogus"])
JOB_FIELDS = st.sampled_from(["name", "project", "sequence", "shot", "folder", "max_failures", "owner", "priority",
                              "depends_on", "env", "path_mapping", "bogus"])
GOOD_LAYER = st.fixed_dictionaries({"name": st.sampled_from(["render", "comp", "sim"]), "frames": VALID_SPECS,
                                    "chunk": st.one_of(st.integers(1, 30), st.just("auto")),
                                    "args": st.just({"command": ["echo", "{frame}"]})},
                                   optional={"wedge": st.lists(st.integers(0, 9), min_size=1, max_size=3),
                                             "scout": st.sampled_from(["fml:2", "auto:1", "1"])})
GOOD_LAYERS = st.lists(GOOD_LAYER, min_size=1, max_size=3, unique_by=lambda layer: str(layer["name"]))
LAYER = st.one_of(GOOD_LAYER, st.builds(lambda good, extra: {**good, **extra}, GOOD_LAYER,
                                        st.dictionaries(LAYER_FIELDS, ODD, min_size=1, max_size=3)), ODD)
SPEC_DOCUMENTS = st.one_of(
    st.builds(lambda layers: {"name": "props", "layers": layers}, GOOD_LAYERS),
    st.builds(lambda layers, extra: {"name": "props", "layers": layers, **extra},
              st.lists(LAYER, min_size=0, max_size=3), st.dictionaries(JOB_FIELDS, ODD, max_size=2)),
    ODD)


def _names_a_place(field: str, raw: Any) -> bool:
    """A problem's field is the whole body, a field of the spec (given or required), or a layer's."""
    if field == "(body)":
        return True
    head, _, rest = field.partition(".")
    if head == "layers" and rest and isinstance(raw, dict) and isinstance(raw.get("layers"), list):
        index, _, _ = rest.partition(".")
        return index.isdigit() and int(index) < len(raw["layers"])
    return head in JobSpec.model_fields or (isinstance(raw, dict) and head in raw)


@PROPERTIES
@given(raw=SPEC_DOCUMENTS)
def test_any_spec_is_refused_at_its_fields_or_chunked_as_written(raw: Any) -> None:
    job, problems, _needs = inspect_spec(raw)  # never raises
    assert all(isinstance(p["field"], str) and _names_a_place(p["field"], raw) and isinstance(p["message"], str)
               and p["message"] for p in problems), problems
    if job is None or problems:
        assert problems, "a spec that was not checked says why"
        return
    for checked in job.layers:
        size = 1 if checked.spec.chunk == "auto" else checked.spec.chunk
        assert isinstance(size, int)
        assert checked.task_count == chunk_count(checked.spec.frames, size) * len(checked.parts)
        listed = [f for c in iter_chunks(checked.spec.frames, size) for f in c.frame_list()]
        assert listed == _frames(checked.spec.frames)
        assert len(checked.parts) == len(checked.spec.wedge or [None])
