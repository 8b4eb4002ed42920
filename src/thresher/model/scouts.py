"""Scout frames: the few representative frames of a layer rendered first, so a studio can look at them
before the rest of the layer goes (the Conductor submitter's feature). Pure, no I/O: which frames a
`scout` spec picks, which tasks hold them, and the words that say why the rest is held.

A layer's `scout` is one of
- `fml:N`: first, middle, last, N frames in all, evenly spread from the first frame to the last
  (`fml:1` is the first frame, `fml:2` the first and the last);
- `auto:N`: N frames at the centres of N equal slices of the range, which keeps away from the first
  and last frames (slates, handles, run-up) and spreads the rest evenly: deliberately simple, it does
  not look at the content;
- an explicit frame list, `"1,50,100"` (every frame must be one of the layer's).

A scout frame inside a chunk makes that whole task a scout task (every tile or wedge value of the
chunk too): chunks are not split for scouts, so the tasks a scout renders are the tasks the layer has.
The layer's other tasks are written `held` (`TaskState.HELD`, which dispatch never reads) until every
scout task has succeeded (`scout_release: auto`) or a person releases them (`manual`; `thresher
release`, `POST /jobs/{id}/release`, the job page's Release button).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from thresher.model.states import TaskState

#: The most scout frames a layer may ask for.
MAX_SCOUTS = 100

_COUNTED = re.compile(r"\s*(fml|auto)\s*:\s*(\d+)\s*")
_LIST = re.compile(r"\s*-?\d+(\s*,\s*-?\d+)*\s*")


class ScoutSpecError(ValueError):
    """A `scout` that cannot be read, with a short message for the submitter."""


def check_spec(text: str) -> str:
    """The `scout` spec as written, or ScoutSpecError when it is none of the three forms."""
    counted = _COUNTED.fullmatch(text)
    if counted:
        n = int(counted.group(2))
        if not 1 <= n <= MAX_SCOUTS:
            raise ScoutSpecError(f"{counted.group(1)}:N needs N between 1 and {MAX_SCOUTS}")
        return text.strip()
    if _LIST.fullmatch(text):
        frames = [int(f) for f in text.split(",")]
        if len(frames) > MAX_SCOUTS:
            raise ScoutSpecError(f"at most {MAX_SCOUTS} scout frames")
        return text.strip()
    raise ScoutSpecError(f"cannot read scout {text!r}: use fml:N (first, middle, last), auto:N, "
                         "or a frame list like '1,50,100'")


def pick(text: str, frames: Sequence[int]) -> list[int]:
    """The scout frames `text` picks of the layer's `frames` (in the layer's order), sorted, each
    once. An explicit frame not in the layer raises ScoutSpecError."""
    check_spec(text)
    if not frames:
        return []
    counted = _COUNTED.fullmatch(text)
    if counted is None:
        wanted = sorted({int(f) for f in text.split(",")})
        known = set(frames)
        missing = [f for f in wanted if f not in known]
        if missing:
            raise ScoutSpecError(f"frame {missing[0]} is not one of the layer's frames")
        return wanted
    n = min(int(counted.group(2)), len(frames))
    ordered = sorted(frames)
    size = len(ordered)
    if counted.group(1) == "fml":
        positions = [0] if n == 1 else [int(k * (size - 1) / (n - 1) + 0.5) for k in range(n)]  # half up
    else:  # auto: the centre of each of n equal slices
        positions = [min(size - 1, int((2 * k + 1) * size / (2 * n))) for k in range(n)]
    return sorted({ordered[p] for p in positions})


def covers(frames: Iterable[int], chunk_frames: Iterable[int]) -> bool:
    """Whether a chunk holding `chunk_frames` holds one of the scout `frames`."""
    return not set(frames).isdisjoint(chunk_frames)


@dataclass(frozen=True)
class ScoutFacts:
    """What a held layer's reason needs: its scout frames, how it is released, and its scout tasks'
    states by count."""

    layer: str
    frames: Sequence[int]
    release: str                  # "auto" or "manual"
    counts: Mapping[str, int]
    probes: bool = False          # the frames `chunk: auto` measures with (no scout was asked for)

    def all_succeeded(self) -> bool:
        return all(state in (TaskState.SUCCEEDED, TaskState.SKIPPED) for state, n in self.counts.items() if n)


def frames_words(frames: Sequence[int], most: int = 10) -> str:
    shown = ", ".join(str(f) for f in frames[:most])
    return shown + (f" and {len(frames) - most} more" if len(frames) > most else "")


def waits_for_person(facts: ScoutFacts) -> bool:
    """Whether a held layer's tasks go only when a person acts: a scout task failed or was killed (retry
    it, or release by hand), or the scouts rendered and the layer is released by hand (`manual`). Held
    tasks behind scouts still rendering, released automatically, run as things stand."""
    bad = any(facts.counts.get(s) for s in (TaskState.FAILED, TaskState.KILLED))
    return bad or (facts.all_succeeded() and facts.release == "manual")


def held_reason(facts: ScoutFacts) -> str:
    """Why a layer's held tasks do not run, in a wrangler's words."""
    what = f"{'measuring frames' if facts.probes else 'scout frames'} {frames_words(facts.frames)} of layer {facts.layer}"
    bad = [f"{facts.counts[s]} {s}" for s in (TaskState.FAILED, TaskState.KILLED) if facts.counts.get(s)]
    if bad:
        return f"held: {what}: {', '.join(bad)} (retry them, or release the layer by hand)"
    if facts.all_succeeded():
        if facts.release == "manual":
            return "held until released: scout frames rendered, waiting for a person to release"
        return f"held: {what} rendered; releasing"
    done = sum(n for s, n in facts.counts.items() if s in (TaskState.SUCCEEDED, TaskState.SKIPPED))
    total = sum(facts.counts.values())
    if facts.probes:
        return f"held: {what} first, to size its chunks (chunk: auto; {done} of {total} done)"
    return f"held: {what} render first ({done} of {total} scout tasks done)"
