"""The dataset's bounded history: which older backups stay restorable, as tags.

`main` is squashed (`super_squash_history`) once it holds HF_SQUASH_AFTER_COMMITS
commits, so it never grows past that. Before that, every hour's first backup is
tagged; a squash rewrites only `main`, and a tag keeps its commit and that
commit's files readable, as another branch does (huggingface_hub's
`test_super_squash_history_on_branch` checks that against the Hub). A tag is a
ref, not a commit: it costs no commit.

The tags are thinned like restic's `forget --keep-hourly 48 --keep-daily 90
--keep-monthly unlimited` (Litestream keeps levels the same way):
- every point of the last KEEP_HOURLY_SECONDS (one an hour: 48);
- then the first point of each UTC day, for KEEP_DAILY_SECONDS (90 days);
- then the first point of each UTC month, for ever (12 a year).
The first point of a bucket, not the newest: a bucket's first point never
changes once made, so pruning is stable whatever the worker's restarts.

A point's time and rows are in its tag name, so `backups` and `restore --at`
list them with one request (`list_repo_refs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared import utc

TAG_PREFIX = "backup-"
KEEP_HOURLY_SECONDS = 48 * 3600
KEEP_DAILY_SECONDS = 90 * 86400
_TAG = re.compile(r"^backup-(\d{8}T\d{6}Z)-rows-(\d+)$")


@dataclass(frozen=True)
class Point:
    """One kept backup: its tag, the commit it points at, when it was made, its rows."""

    tag: str
    revision: str
    at: float  # seconds since the epoch, UTC
    rows: int

    @property
    def at_iso(self) -> str:
        return utc.iso(self.at)


def tag_name(at: float, rows: int) -> str:
    return f"{TAG_PREFIX}{utc.stamp(at)}-rows-{rows}"


def parse_tag(name: str, revision: str) -> Point | None:
    """The point a tag of ours names; None for any other tag."""
    match = _TAG.match(name)
    if not match:
        return None
    return Point(tag=name, revision=revision, at=utc.parse_stamp(match.group(1)), rows=int(match.group(2)))


def hour_of(at: float) -> str:
    """The UTC hour a time falls in: the ladder's finest bucket."""
    return utc.stamp(at)[:utc.HOUR_CHARS]


def due(points: list[Point], at: float) -> bool:
    """A backup made at `at` becomes a point when no point is in its UTC hour yet."""
    return not any(hour_of(p.at) == hour_of(at) for p in points)


def expired(points: list[Point], now: float) -> list[Point]:
    """The points no rule keeps any more (see the module's docstring), oldest first."""
    first_of_day: dict[str, Point] = {}
    first_of_month: dict[str, Point] = {}
    for p in sorted(points, key=lambda p: p.at):
        first_of_day.setdefault(utc.stamp(p.at)[:utc.DAY_CHARS], p)
        first_of_month.setdefault(utc.stamp(p.at)[:utc.MONTH_CHARS], p)
    daily = set(first_of_day.values())
    monthly = set(first_of_month.values())
    gone = []
    for p in sorted(points, key=lambda p: p.at):
        age = now - p.at
        if age < KEEP_HOURLY_SECONDS or (age < KEEP_DAILY_SECONDS and p in daily) or p in monthly:
            continue
        gone.append(p)
    return gone
