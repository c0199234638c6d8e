"""The owner's summary: the filter the owner picks, checked, and the charts' data for it.

Charts read `review_days` (reviews per UTC day and rating, kept by triggers; see
shared/db.py migration 3), never the reviews table: at 1M reviews over two years
that is ~3,650 rows instead of a million. Days are UTC days.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from shared.db import ReviewFilter, day_bounds, reviews_per_day
from shared.reviews import HIGHEST, RANGE_TEXT, RATINGS

ROLLING_DAYS = 7
# A date before the form existed or years ahead is a typo, not a question.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_AHEAD_DAYS = 366


class FilterError(ValueError):
    """The owner's filter cannot be applied; the message says what to change."""


def _parse_day(text: str | None, which: str, today: date) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        # The typed text is not echoed back: messages are shown as Markdown/HTML by Gradio.
        raise FilterError(f"The '{which}' date is not a date: write it as YYYY-MM-DD, "
                          f"e.g. {today.isoformat()}.") from None
    latest = today + timedelta(days=LATEST_AHEAD_DAYS)
    if not EARLIEST_DAY <= day <= latest:
        raise FilterError(f"The '{which}' date {day.isoformat()} is out of range: pick a day between "
                          f"{EARLIEST_DAY.isoformat()} and {today.isoformat()}.")
    return day


def parse_filter(query: str | None, ratings: list | None, first: str | None, last: str | None,
                 *, today: date | None = None, max_query_chars: int = 200) -> ReviewFilter:
    """The filter as typed, checked: a clear FilterError for a bad, reversed or far-off date range."""
    today = today or date.today()
    first_day, last_day = _parse_day(first, "From", today), _parse_day(last, "To", today)
    if first_day and last_day and first_day > last_day:
        raise FilterError(f"The date range is reversed: 'From' ({first_day.isoformat()}) is after "
                          f"'To' ({last_day.isoformat()}). Swap them, or leave one empty.")
    chosen: set[int] = set()
    for r in ratings or []:
        try:
            value = int(r)
        except (TypeError, ValueError):
            raise FilterError(f"Ratings are whole numbers from {RANGE_TEXT}.") from None
        if value not in RATINGS:
            raise FilterError(f"Ratings are whole numbers from {RANGE_TEXT}.")
        chosen.add(value)
    if not chosen:
        raise FilterError("Choose at least one rating to show.")
    return ReviewFilter(query=(query or "").strip()[:max_query_chars],
                        ratings=() if chosen == set(RATINGS) else tuple(sorted(chosen)),
                        first_day=first_day.isoformat() if first_day else None,
                        last_day=last_day.isoformat() if last_day else None)


@dataclass(frozen=True)
class SummaryData:
    per_day: pd.DataFrame  # day (datetime), reviews (int), average (7-day rolling, NaN without reviews)
    distribution: pd.DataFrame  # rating (str, one row per rating), reviews
    text: str  # one line in words, for people who would rather read


def summarize(conn: sqlite3.Connection, f: ReviewFilter) -> SummaryData:
    """Reviews per day, the 7-day rolling average rating and the distribution for the filter's
    date range and ratings (the search text narrows the list and CSV only: charts need no scan)."""
    bounds = day_bounds(conn)
    first = f.first_day or (bounds[0] if bounds else None)
    last = f.last_day or (bounds[1] if bounds else None)
    if first is None or last is None or first > last:
        return _empty("No reviews yet." if bounds is None else "No reviews in this date range.")
    # The rolling average of the first days looks back before the range.
    lookback = (date.fromisoformat(first) - timedelta(days=ROLLING_DAYS - 1)).isoformat()
    rows = reviews_per_day(conn, lookback, last, f.ratings)
    days = pd.date_range(lookback, last, freq="D")
    # Days without reviews are 0, not missing: the line drops to 0 and the average looks back 7 days.
    index = pd.to_datetime([r[0] for r in rows])
    counts = pd.Series([r[1] for r in rows], index=index, dtype="int64").reindex(days, fill_value=0)
    sums = pd.Series([r[2] for r in rows], index=index, dtype="int64").reindex(days, fill_value=0)
    per_rating = [0] * len(RATINGS)
    for day, _, _, by_rating in rows:
        if day >= first:
            per_rating = [a + b for a, b in zip(per_rating, by_rating)]
    rolling_n = counts.rolling(ROLLING_DAYS, min_periods=1).sum()
    average = (sums.rolling(ROLLING_DAYS, min_periods=1).sum() / rolling_n.where(rolling_n > 0)).round(2)
    in_range = days >= pd.Timestamp(first)
    per_day = pd.DataFrame({"day": days[in_range], "reviews": counts[in_range].to_numpy(),
                            "average": average[in_range].to_numpy()})
    distribution = pd.DataFrame({"rating": [str(r) for r in RATINGS], "reviews": per_rating})
    total = sum(per_rating)
    if not total:
        return SummaryData(per_day, distribution, f"No reviews from {first} to {last} (UTC days).")
    mean = sum(r * n for r, n in zip(RATINGS, per_rating)) / total
    busiest = per_day.loc[per_day["reviews"].idxmax()]
    text = (f"{total:,} reviews from {first} to {last} (UTC days), average {mean:.2f} / {HIGHEST}; "
            f"busiest day {busiest['day']:%Y-%m-%d} ({int(busiest['reviews']):,} reviews).")
    return SummaryData(per_day, distribution, text)


def _empty(text: str) -> SummaryData:
    return SummaryData(pd.DataFrame({"day": pd.to_datetime([]), "reviews": [], "average": []}),
                       pd.DataFrame({"rating": [str(r) for r in RATINGS], "reviews": [0] * len(RATINGS)}), text)
