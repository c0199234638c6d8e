"""A table that holds at most `cap` entries: what the web keeps per client, nonce or comment.

Anyone can make up a new address, nonce or comment, so every table keyed by them is bounded:
past the cap the entry put longest ago goes first (least recently put, as an LRU without
refresh on read). The submit limit (web/ratelimit.py), the login throttle (web/login_throttle.py)
and the spam checks (web/bot_guard.py) keep theirs here.

Not locked: each owner holds its own lock around a read-modify-put, which must be one step.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Iterator, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class CappedTable(Generic[K, V]):
    def __init__(self, cap: int):
        if cap < 1:
            raise ValueError(f"a capped table holds at least one entry, not {cap}")
        self.cap = cap
        self._entries: OrderedDict[K, V] = OrderedDict()  # least recently put first

    def put(self, key: K, value: V) -> None:
        """`key` becomes the most recently put; the oldest entries go while over the cap."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.cap:
            self._entries.popitem(last=False)

    def get(self, key: K) -> V | None:
        """The value, or None; reading does not refresh the entry."""
        return self._entries.get(key)

    def pop(self, key: K) -> V | None:
        return self._entries.pop(key, None)

    def oldest(self) -> tuple[K, V] | None:
        """The entry put longest ago (the next to go), or None when empty."""
        return next(iter(self._entries.items()), None)

    def drop_oldest(self) -> None:
        self._entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)
