"""The owner's search: the filter (text, ratings, days) behind the owner's list, its counts and
its CSV, and the SQL that answers it quickly at 1M reviews.

A text goes through the FTS5 index (reviews_fts) as one quoted phrase, so no input is an FTS
syntax error; days narrow the id span through review_days; pages go by keyset (ids), never
OFFSET. Each query has a time budget: planted words cannot make the owner's page (or the
public page's readers sharing the CPU) wait. bench/owner_queries.py measures each choice.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from shared.db import StoreError, like_pattern, placeholders
from shared.store import read_summary


# Counting every match of a common word at 1M rows reads its whole posting list;
# past this many the owner's page says "more than N".
COUNT_CAP = 10_000
COUNT_BUDGET_SECONDS = 0.1
# One page of the owner's list. A prefix that starts thousands of distinct (planted) words makes
# FTS5 merge every one of their lists before it can return a row (4-5 s at 140k rows); past this
# budget the search is stopped and the owner asked to narrow it, and the web's other readers
# (the public overview) get the CPU back.
SEARCH_BUDGET_SECONDS = 0.5
SEARCH_TOO_BROAD_MESSAGE = ("Too many matches to list in time: narrow the search down (a longer or "
                            "more exact word, fewer dates or ratings).")


class SearchTooBroad(StoreError):
    """find_reviews ran out of its time budget."""


_WORDS = re.compile(r"\w+", re.UNICODE)
PREFIX_MIN_CHARS = 3


@dataclass(frozen=True)
class ReviewFilter:
    """What the owner's list, counts and CSV are narrowed to. Days are UTC, both ends included."""
    query: str = ""
    ratings: tuple[int, ...] = ()  # empty: every rating
    first_day: str | None = None  # "YYYY-MM-DD"
    last_day: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.query or self.ratings or self.first_day or self.last_day)


def fts_phrase(text: str) -> str | None:
    """The owner's text as one FTS5 phrase, prefix-matched on its last word: `say "hi" -now*`
    becomes `"say ""hi"" -now*"*`. Inside quotes NEAR, AND, OR, NOT, -, * and ^ are plain
    text, so no input is an FTS syntax error. None when the text has no word to index.

    A last word shorter than PREFIX_MIN_CHARS is matched whole: FTS5 merges the lists of every
    word a prefix starts, and "a*" is most of the vocabulary (660 ms at 1M rows)."""
    words = _WORDS.findall(text)
    if not words:
        return None
    star = "*" if len(words[-1]) >= PREFIX_MIN_CHARS else ""
    return '"' + text.replace('"', '""') + '"' + star


def _where(f: ReviewFilter, alias: str = "r", id_expr: str = "r.id") -> tuple[list[str], list]:
    """The rating and date parts of the WHERE clause (the text part depends on the index used)."""
    clauses: list[str] = []
    params: list = []
    if f.ratings:
        clauses.append(f"{alias}.rating IN ({placeholders(len(f.ratings))})")
        params.extend(f.ratings)
    if f.first_day:
        clauses.append(f"{alias}.created_at >= ?")
        params.append(f.first_day)
    if f.last_day:
        # Every time on the last day sorts below "YYYY-MM-DD~" ("~" is above "T").
        clauses.append(f"{alias}.created_at < ?")
        params.append(f.last_day + "~")
    if f.first_day or f.last_day:
        # The same rows, found faster: the range's reviews have ids within the bounds review_days
        # keeps per day, so a page by id scans only that span instead of every newer review;
        # with a search, FTS5 takes the span as a rowid range. (1M rows, a month two years
        # back, page 1: 149 ms without the span; see bench/owner_queries.py.)
        span = "SELECT {} FROM review_days WHERE day >= ? AND day <= ?"
        low, high = f.first_day or "", f.last_day or "~"
        clauses.append(f"{id_expr} BETWEEN ({span.format('MIN(min_id)')}) AND ({span.format('MAX(max_id)')})")
        params.extend([low, high, low, high])
    return clauses, params


def _filtered_sql(f: ReviewFilter, columns: str) -> tuple[str, list, str]:
    """FROM/WHERE for the filter, and the id expression to order and page by: through the
    FTS index when there is a searchable word. Ordering by the FTS table's own rowid lets
    FTS5 walk its matches newest first and stop after a page, instead of sorting them all."""
    phrase = fts_phrase(f.query) if f.query else None
    clauses, params = _where(f, id_expr="reviews_fts.rowid" if phrase else "r.id")
    if phrase:
        id_expr = "reviews_fts.rowid"
        if clauses or columns != "1":
            sql = (f"SELECT {columns} FROM reviews_fts JOIN reviews r ON r.id = reviews_fts.rowid "
                   "WHERE reviews_fts MATCH ?")
        else:  # a plain count needs no row of `reviews`
            sql = "SELECT 1 FROM reviews_fts WHERE reviews_fts MATCH ?"
        params = [phrase, *params]
    elif f.query:
        # Only symbols (e.g. "-" or "*"): nothing the tokenizer indexes, so a plain substring
        # search. Rare, and it scans; the owner still gets an answer rather than an error.
        pattern = like_pattern(f.query)
        id_expr = "r.id"
        sql = f"SELECT {columns} FROM reviews r WHERE (r.name LIKE ? ESCAPE '\\' OR r.comments LIKE ? ESCAPE '\\')"
        params = [pattern, pattern, *params]
    else:
        id_expr = "r.id"
        sql = f"SELECT {columns} FROM reviews r WHERE 1"
    for clause in clauses:
        sql += " AND " + clause
    return sql, params, id_expr


def find_reviews(conn: sqlite3.Connection, f: ReviewFilter, *, limit: int = 50, before_id: int | None = None,
                 after_id: int | None = None, budget_seconds: float = SEARCH_BUDGET_SECONDS) -> list[tuple]:
    """One page of matching reviews, newest first, by keyset: `before_id` gives the page
    after (older than) a page, `after_id` the page before it. Every page costs the same,
    the first or the 10,000th (OFFSET would step over all the earlier rows).

    Raises SearchTooBroad past `budget_seconds` (see SEARCH_BUDGET_SECONDS)."""
    sql, params, id_expr = _filtered_sql(f, "r.id, r.created_at, r.name, r.rating, r.comments")
    if after_id is not None:
        sql, params, reverse = sql + f" AND {id_expr} > ? ORDER BY {id_expr} ASC LIMIT ?", [*params, after_id, limit], True
    else:
        if before_id is not None:
            sql += f" AND {id_expr} < ?"
            params.append(before_id)
        sql, params, reverse = sql + f" ORDER BY {id_expr} DESC LIMIT ?", [*params, limit], False
    deadline = time.monotonic() + budget_seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 1_000)
    try:
        rows = conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        raise SearchTooBroad(SEARCH_TOO_BROAD_MESSAGE) from None
    finally:
        conn.set_progress_handler(None, 0)
    return rows[::-1] if reverse else rows


def count_reviews(conn: sqlite3.Connection, f: ReviewFilter, cap: int = COUNT_CAP,
                  budget_seconds: float = COUNT_BUDGET_SECONDS) -> tuple[int | None, bool]:
    """How many reviews match, and whether that is exact (False: at least `cap`, or None: more
    than could be counted within `budget_seconds`).

    Without a search text the per-day table answers exactly; a search counts at most `cap`."""
    if not f.active:
        return read_summary(conn).total, True
    if not f.query:
        sql = "SELECT COALESCE(SUM(n), 0) FROM review_days WHERE 1"
        params: list[object] = []
        if f.ratings:
            sql += f" AND rating IN ({placeholders(len(f.ratings))})"
            params.extend(f.ratings)
        if f.first_day:
            sql += " AND day >= ?"
            params.append(f.first_day)
        if f.last_day:
            sql += " AND day <= ?"
            params.append(f.last_day)
        return conn.execute(sql, params).fetchone()[0], True
    sql, params, _ = _filtered_sql(f, "1")
    # A common word with a rare rating can mean reading tens of thousands of matches to count a
    # few thousand; past the time budget the page says "many" rather than keep the owner waiting.
    deadline = time.monotonic() + budget_seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 1_000)
    try:
        n = conn.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT ?)", [*params, cap + 1]).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        return None, False
    finally:
        conn.set_progress_handler(None, 0)
    return min(n, cap), n <= cap


def filtered_ids_sql(f: ReviewFilter) -> tuple[str, list]:
    """A SELECT of the ids the filter matches, to narrow another query (the owner's CSV)."""
    sql, params, _ = _filtered_sql(f, "r.id")
    return sql, params
