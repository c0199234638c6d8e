"""How many commits a repository may take: a sliding hour of commit times, and a quota block.

The Hub limits commits per repository (users and the issue tracker report about 128 an
hour; the Hub's own rate-limits page lists "repo commits" among its undocumented
per-action limits). The worker keeps far below that with its own budget: a cycle that
finds the budget spent makes no commit, and the next commit carries everything since
(the files a commit sends are whatever the Hub's newest backup lacks).

The hour is learnt from the Hub at start (the commits of the last hour, see
`worker.hub.HubTarget`), not kept on the local disk: a Space's disk is wiped at every
restart, and a budget that a restart resets is no budget.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Iterable

WINDOW_SECONDS = 3600.0
# A 429 with no Retry-After: the Hub's commit quota is counted per hour, so a few
# minutes let it free; at most six tries an hour cannot make it worse.
QUOTA_BACKOFF_SECONDS = 600.0


class CommitBudget:
    """`per_hour` commits in any sliding hour of `clock` (seconds since the epoch), spaced at least
    an hour / `per_hour` apart; 0: no budget.

    The spacing, not only the count: a window alone lets a busy form spend the hour's budget in
    its first minutes and then make no commit for the rest of it, leaving the newest reviews
    off the Hub for most of an hour. Spaced, the Hub is never more than 3600/per_hour seconds
    behind, and a quiet form's first review still goes at once. The spacing follows this
    process's own commits; the ones learnt from the Hub at start count in the hour only, so a
    restarted worker commits what its new disk holds without waiting a step."""

    def __init__(self, per_hour: int, *, clock: Callable[[], float] = time.time):
        if per_hour < 0:
            raise ValueError(f"per_hour={per_hour!r}: expected 0 (no budget) or more")
        self.per_hour = per_hour
        self.clock = clock
        self._times: deque[float] = deque()
        self._last_own: float | None = None  # this process's newest commit
        self.blocked_until = 0.0  # the Hub refused for quota: nothing before this time

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] >= WINDOW_SECONDS:
            self._times.popleft()

    def seed(self, times: Iterable[float]) -> None:
        """Commit times learnt from the Hub (any order); the ones older than an hour are dropped."""
        merged = sorted([*self._times, *times])
        self._times = deque(merged)
        self._trim(self.clock())

    def record(self, at: float | None = None) -> None:
        now = self.clock() if at is None else at
        self._times.append(now)
        self._last_own = now
        self._trim(self.clock())

    def used(self) -> int:
        """Commits in the last hour."""
        self._trim(self.clock())
        return len(self._times)

    def window_frees_in(self) -> float:
        """Seconds until the oldest commit of the hour leaves it (0.0: the budget is not spent)."""
        now = self.clock()
        self._trim(now)
        if not self.per_hour or len(self._times) < self.per_hour:
            return 0.0
        # The (used - per_hour + 1)-th oldest must leave before one more fits.
        oldest_that_must_go = self._times[len(self._times) - self.per_hour]
        return max(0.0, oldest_that_must_go + WINDOW_SECONDS - now)

    def block(self, retry_after: float | None) -> float:
        """The Hub said 429: wait its Retry-After, or (without one) until our hour frees, at least
        QUOTA_BACKOFF_SECONDS. Returns the wait chosen."""
        wait = retry_after if retry_after is not None else max(QUOTA_BACKOFF_SECONDS, self.window_frees_in())
        self.blocked_until = max(self.blocked_until, self.clock() + wait)
        return wait

    def spacing(self) -> float:
        return WINDOW_SECONDS / self.per_hour if self.per_hour else 0.0

    def wait_seconds(self) -> float:
        """Seconds until the next commit is allowed (0.0: now)."""
        now = self.clock()
        spaced = self._last_own + self.spacing() - now if self._last_own is not None else 0.0
        return max(0.0, self.window_frees_in(), spaced, self.blocked_until - now)
