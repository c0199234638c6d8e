"""Per-client submit limit: at most N reviews per sliding minute."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from web.capped_table import CappedTable

WINDOW_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 10_000  # bounded memory, whatever the number of clients


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._hits: CappedTable[str, deque[float]] = CappedTable(MAX_TRACKED_CLIENTS)
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Count one submit for `client`; False when it is over the limit (and then it is not counted)."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(client) or deque()
            while hits and now - hits[0] >= WINDOW_SECONDS:
                hits.popleft()
            allowed = len(hits) < self.per_minute
            if allowed:
                hits.append(now)
            self._hits.put(client, hits)
            return allowed
