"""Run a coroutine to its end from a synchronous test, whatever ran before it in the process."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    # In a thread of its own: after a browser test in the same process (pytest-xdist puts several
    # test files in one), Playwright's sync API keeps an event loop running on the main thread,
    # and asyncio.run refuses to start inside it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=timeout)
