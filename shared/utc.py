"""UTC times as the project writes and reads them: every format and parser in one place.

Three spellings, each for a reason:
- ISO with a `Z` (`2026-11-20T10:00:00Z`): state files, manifests, commit messages, logs, the
  `restore --at` argument. Whole seconds: people read and type these.
- the database's (`2026-11-20T10:00:00.535Z`): what the schema's `DEFAULT (strftime(...))` writes,
  milliseconds, so rows stored in the same second still sort by time as text.
- compact stamps (`20261120T100000Z`) in file and tag names: they sort as text in time order and
  hold no `:` (not allowed in Windows file names, awkward in URLs).

A time is epoch seconds (float) or an aware `datetime`. A naive `datetime` is refused: it does not
say its zone, and Python would read it as the machine's local time. A parser given text that is not
its format raises `TimeFormatError` (a ValueError) naming the text and the expected shape.
"""

from __future__ import annotations

import calendar
import time
from datetime import date, datetime, timezone

ISO = "%Y-%m-%dT%H:%M:%SZ"
STAMP = "%Y%m%dT%H%M%SZ"
# SQLite's %f is "SS.SSS" (seconds with milliseconds): the database's time in SQL. The migrations keep
# their own copy of it as text: a migration is history and must not change with this module.
SQL_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_DB_PARSE = "%Y-%m-%dT%H:%M:%S.%fZ"
# Lengths of a stamp's prefix naming its UTC hour, day and month (`20261120T10`, `20261120`, `202611`).
HOUR_CHARS, DAY_CHARS, MONTH_CHARS = 11, 8, 6
# What `parse_loose` accepts after the date (a `Z` and a space for the `T` are allowed too).
_LOOSE = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


class TimeFormatError(ValueError):
    """Text that is not the UTC time it should be; the message names the text and the shape."""


def seconds(at: float | datetime | None = None) -> float:
    """Epoch seconds of `at` (now when None). A naive datetime is refused (see the module's docstring)."""
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        if at.utcoffset() is None:
            raise TypeError(f"naive datetime {at.isoformat()}: give its zone (tzinfo=timezone.utc for UTC)")
        return at.timestamp()
    return float(at)


def iso(at: float | datetime | None = None) -> str:
    """`2026-11-20T10:00:00Z` (whole seconds, rounded down)."""
    return time.strftime(ISO, time.gmtime(seconds(at)))


def stamp(at: float | datetime | None = None, *, micro: bool = False) -> str:
    """`20261120T100000Z`; with `micro`, `20261120T100000123456Z` (names made less than a second apart
    still sort in the order they were made)."""
    if not micro:
        return time.strftime(STAMP, time.gmtime(seconds(at)))
    whole, us = divmod(round(seconds(at) * 1_000_000), 1_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f"{us:06d}Z"


def db_time(at: float | datetime | None = None) -> str:
    """`2026-11-20T10:00:00.535Z`: the database's spelling (as SQL_NOW writes it), for comparing with a
    stored time as text."""
    whole, ms = divmod(round(seconds(at) * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def readable(at: float | datetime | None = None) -> str:
    """`25 Nov 2026, 21:04 UTC`: for people, on pages that show UTC."""
    t = time.gmtime(seconds(at))
    return f"{t.tm_mday} {time.strftime('%b %Y, %H:%M', t)} UTC"


def today() -> date:
    """Today's date in UTC (the owner's page's default day range)."""
    return datetime.now(timezone.utc).date()


def _parse(text: object, fmt: str, example: str) -> float:
    if not isinstance(text, str):
        raise TimeFormatError(f"{text!r} is not a UTC time: expected text like {example}")
    try:
        if "%f" in fmt:  # time.strptime has no fractions of a second
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        return float(calendar.timegm(time.strptime(text, fmt)))
    except ValueError:
        raise TimeFormatError(f"{text!r} is not a UTC time like {example}") from None


def parse_iso(text: str) -> float:
    """`2026-11-20T10:00:00Z` -> epoch seconds."""
    return _parse(text, ISO, "2026-11-20T10:00:00Z")


def parse_stamp(text: str) -> float:
    """`20261120T100000Z` -> epoch seconds."""
    return _parse(text, STAMP, "20261120T100000Z")


def parse_db(text: str) -> float:
    """A stored time (`2026-11-20T10:00:00.535Z`) -> epoch seconds. Whole seconds
    (`2026-11-20T10:00:00Z`) are read too: a row written by another tool is still a time."""
    try:
        return _parse(text, _DB_PARSE, "2026-11-20T10:00:00.535Z")
    except TimeFormatError:
        if isinstance(text, str) and "." not in text:
            return _parse(text, ISO, "2026-11-20T10:00:00.535Z")
        raise


def parse_loose(text: str) -> float:
    """What a person types for a UTC time: `2026-11-20T10:00Z`, `2026-11-20T10:00:30Z`, `2026-11-20`
    (midnight), a space for the `T`, the `Z` optional -> epoch seconds."""
    raw = text.strip().upper().removesuffix("Z").replace(" ", "T") if isinstance(text, str) else text
    for fmt in _LOOSE:
        try:
            return _parse(raw, fmt, "")
        except TimeFormatError:
            continue
    raise TimeFormatError(f"{text!r} is not a UTC time: use e.g. 2026-11-20T10:00Z")
