"""Run a coroutine to its end from a plain test, on a thread of its own.

`asyncio.run` refuses to start while the calling thread has an event loop running, and Playwright's
sync API keeps one running in the main thread for as long as its browser fixture lives: a test that
calls `asyncio.run` after a browser test on the same pytest worker fails with "cannot be called from a
running event loop" (the suite's order is random). A thread of its own has no loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()
