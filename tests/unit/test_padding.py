"""Frame padding in output patterns: one definition of `####`, `@@@` and `%04d`, read the same everywhere."""

import pytest

from thresher.model.padding import (
    NoPadding,
    expand_padding,
    has_padding,
    split_padding,
    to_hashes,
    to_printf,
)
from thresher.templates.tiles import tile_path


def test_output_padding() -> None:
    assert expand_padding("/out/shot.####.exr", 7) == "/out/shot.0007.exr"
    assert expand_padding("/out/f_%04d.png", 12) == "/out/f_0012.png"
    assert expand_padding("f@@@.png", 5) == "f005.png"
    assert expand_padding("f.####.png", -3) == "f.-003.png"
    assert expand_padding("f.%d.png", 12) == "f.12.png" and expand_padding("f.%d.png", -3) == "f.-3.png"
    assert expand_padding("a.#/b.%03d", 4) == "a.4/b.004"  # every run of padding, whatever its spelling


@pytest.mark.parametrize("pattern,split,hashes,printf", [
    ("/r/shot.####.exr", ("/r/shot.", 4, ".exr"), "/r/shot.####.exr", "/r/shot.%04d.exr"),
    ("/r/shot.@@@.exr", ("/r/shot.", 3, ".exr"), "/r/shot.###.exr", "/r/shot.%03d.exr"),
    ("/r/shot.%04d.exr", ("/r/shot.", 4, ".exr"), "/r/shot.####.exr", "/r/shot.%04d.exr"),
    ("/r/shot.%4d.exr", ("/r/shot.", 4, ".exr"), "/r/shot.####.exr", "/r/shot.%4d.exr"),
    ("/r/shot.%d.exr", ("/r/shot.", 1, ".exr"), "/r/shot.#.exr", "/r/shot.%d.exr"),
    ("/r/shot.#.exr", ("/r/shot.", 1, ".exr"), "/r/shot.#.exr", "/r/shot.%01d.exr"),
])
def test_every_spelling_of_padding_is_read_alike(pattern: str, split: tuple[str, int, str], hashes: str,
                                                  printf: str) -> None:
    assert has_padding(pattern)
    assert split_padding(pattern) == split
    assert (to_hashes(pattern), to_printf(pattern)) == (hashes, printf)
    before, width, after = split
    assert expand_padding(pattern, 7) == f"{before}{7:0{width}d}{after}"
    assert tile_path(pattern, 1, 0) == f"{before}tile_1_0.{pattern[len(before):]}"


def test_a_pattern_without_padding() -> None:
    assert not has_padding("/r/movie.mp4") and not has_padding("/r/100%.png")
    assert expand_padding("/r/movie.mp4", 3) == "/r/movie.mp4"
    with pytest.raises(NoPadding, match="no frame padding"):
        split_padding("/r/movie.mp4")
