"""Frame specs in VFX notation and their chunking (fileseq semantics, no per-frame expansion)."""

import pytest

from thresher.model.frames import FrameSpecError, chunk_count, frame_bounds, frame_count, iter_chunks, parse_frames


@pytest.mark.parametrize("spec,count", [
    ("1-100", 100), ("1-100x5", 20), ("1,5,10-20", 13), ("-10--1", 10), ("1-100y5", 80), ("1-100:5", 100),
    ("7", 1), ("10-1", 10),
])
def test_vfx_frame_specs_are_read_like_fileseq(spec: str, count: int) -> None:
    assert frame_count(spec) == count


@pytest.mark.parametrize("spec,fragment", [
    ("1-", "cannot read frame spec"), ("a-b", "cannot read frame spec"), ("1-10x0", "step"),
    ("1-1000000000000", "limit"), ("", "empty"), ("1.5-3", "whole frames"), ("1-10y0", "step"),
])
def test_bad_frame_specs_say_what_is_wrong(spec: str, fragment: str) -> None:
    with pytest.raises(FrameSpecError, match=fragment):
        parse_frames(spec)


def _chunks(spec: str, size: int) -> list[tuple[str, int, int, int]]:
    return [(c.frames, c.start, c.end, c.step) for c in iter_chunks(spec, size)]


def test_chunks_walk_ranges_in_order() -> None:
    assert _chunks("1-10", 3) == [("1-3", 1, 3, 1), ("4-6", 4, 6, 1), ("7-9", 7, 9, 1), ("10", 10, 10, 1)]
    assert _chunks("1-100x5", 10)[1] == ("51-96x5", 51, 96, 5)
    assert _chunks("-10--1", 4)[0] == ("-10--7", -10, -7, 1)
    assert [c[0] for c in _chunks("1,5,10-20", 5)] == ["1", "5", "10-14", "15-19", "20"]


def test_every_frame_lands_in_exactly_one_chunk() -> None:
    for spec in ["1-100y5", "1-100:5", "1-10,5-15", "1-97x3", "100-1x7", "-5-5"]:
        frames = [f for c in iter_chunks(spec, 7) for f in c.frame_list()]
        assert frames == [int(f) for f in parse_frames(spec)], spec
        assert chunk_count(spec, 7) == len(list(iter_chunks(spec, 7)))


def test_a_million_frames_are_chunked_without_expanding() -> None:
    assert chunk_count("1-1000000", 10) == 100_000
    *_, last = iter_chunks("1-1000000", 250_000)
    assert (last.start, last.end, last.count) == (750_001, 1_000_000, 250_000)



def test_bounds_are_the_lowest_and_highest_frame_whatever_the_order_of_the_parts() -> None:
    assert frame_bounds("20-30,1-10") == (1, 30) and frame_bounds("5-1,10-20") == (1, 20)
    assert frame_bounds("1-10:3,4") == (1, 10) and frame_bounds("10-1y3") == (2, 9)
