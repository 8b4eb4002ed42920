"""Timestamps of the steps between one task's exit and the next one's start, for `bench/slot_timeline.py`.

Off unless the agent's environment names a folder in `THRESHER_SLOT_TIMELINE`; then every step is one
line `<step> <attempt id> <unix time>` in `<folder>/<agent pid>.tl`. The bench reads those files to say
where a slot's time goes; nothing in the agent reads them. Disabled, `mark` costs one global lookup.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any

_ENV = "THRESHER_SLOT_TIMELINE"
_lock = threading.Lock()
_file: IO[str] | None = None
_enabled = bool(os.environ.get(_ENV))


def mark(step: str, attempt_id: Any) -> None:
    """Record that `step` happened now for `attempt_id` (a no-op unless the timeline is on)."""
    global _file
    if not _enabled:
        return
    now = time.time()
    with _lock:
        if _file is None:
            _file = open(os.path.join(os.environ[_ENV], f"{os.getpid()}.tl"), "a", buffering=1)
        _file.write(f"{step} {attempt_id} {now:.6f}\n")
