"""The owner's queries on real SQLite files: schema v3 (FTS5, per-day totals, created_at index),
search that treats every character as text, keyset paging, counts, the summary and the filtered CSV.

Each result is checked against the plain query it replaces (LIKE, OFFSET, COUNT/GROUP BY on
`reviews`), so the fast path is the same answer, not just a fast one.
"""

from __future__ import annotations

import csv
import random
import sqlite3
from datetime import date

import pytest

from shared.db import transaction
from shared.owner_search import ReviewFilter, count_reviews, find_reviews
from shared.schema import SCHEMA_VERSION, _MIGRATIONS, open_store_db
from shared.store import insert_review
from shared.reviews import Review
from web.admin import write_export
from web.owner_summary import FilterError, parse_filter, summarize

WORDS = "checkout slow fast great café naïve delivery price support dark mode NEAR AND OR NOT".split()
NASTY = ['"', '""', '*', '-', 'NEAR', 'NEAR(a b)', 'a NEAR b', '-slow', 'slow*', '"slow', 'slow"', '^great',
         'AND', 'OR NOT', '(', ')', 'col:slow', 'name:x', '{name comments}: x', '+', '\\', "'", '%', '_',
         'NEAR/2', '\x00', 'a"b"c', '***', ' ', 'checkout -slow', 'caf', 'CAFÉ']


def days_by_group(conn) -> dict:
    return {(d, r): n for d, r, n in conn.execute(
        "SELECT substr(created_at, 1, 10), rating, COUNT(*) FROM reviews GROUP BY 1, 2")}


def days_table(conn) -> dict:
    return {(d, r): n for d, r, n in conn.execute("SELECT day, rating, n FROM review_days WHERE n > 0")}


def fill(conn, n: int, seed: int = 7) -> None:
    """n reviews over ~60 days of 2026, with words the searches look for."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        day = date(2026, 1, 1).toordinal() + i * 60 // max(n, 1)
        created = f"{date.fromordinal(day).isoformat()}T{rng.randrange(24):02d}:00:00.{i % 1000:03d}Z"
        rows.append((created, rng.choice(["Ann", "Bob", "", "Zoë"]), rng.randint(1, 5),
                     " ".join(rng.choices(WORDS, k=rng.randint(0, 6)))))
    with transaction(conn):
        conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)", rows)


def like_ids(conn, text: str, f: ReviewFilter = ReviewFilter()) -> list[int]:
    """The old way: every review whose name or comments contain `text`, newest first."""
    rows = conn.execute("SELECT id, created_at, name, rating, comments FROM reviews ORDER BY id DESC").fetchall()
    return [r[0] for r in rows if plain_match(r, text, f)]


def plain_match(row, text: str, f: ReviewFilter) -> bool:
    _, created, name, rating, comments = row
    if f.ratings and rating not in f.ratings:
        return False
    if f.first_day and created[:10] < f.first_day or f.last_day and created[:10] > f.last_day:
        return False
    return not text or text.lower() in (name or "").lower() or text.lower() in (comments or "").lower()


# Where a test checks what a count says, not how fast: the default 0.1 s budget can run out on a
# busy machine (a descheduled process), which would make the count "many" instead of exact.
NO_BUDGET = 3600.0


@pytest.fixture
def conn(tmp_path):
    c = open_store_db(tmp_path / "r.db")
    fill(c, 600)
    yield c
    c.close()


def test_a_version_2_database_is_migrated_with_its_rows_searchable(tmp_path):
    path = tmp_path / "v2.db"
    old = sqlite3.connect(path, isolation_level=None)
    for version in (1, 2):
        for statement in _MIGRATIONS[version]:
            old.execute(statement)
    old.execute("PRAGMA user_version = 2")
    old.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)",
                    [("2026-03-01T10:00:00.000Z", "Ann", 5, "great checkout"),
                     ("2026-03-02T10:00:00.000Z", None, 2, None), ("2026-03-02T11:00:00.000Z", "Bob", 1, "slow")])
    old.close()
    conn = open_store_db(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
    assert [r[0] for r in find_reviews(conn, ReviewFilter(query="checkout"))] == [1]
    assert [r[0] for r in find_reviews(conn, ReviewFilter(query="bob"))] == [3]
    assert days_table(conn) == days_by_group(conn)
    conn.execute("INSERT INTO reviews_fts (reviews_fts, rank) VALUES ('integrity-check', 1)")  # raises if out of step


def test_every_write_keeps_the_index_and_the_day_totals_in_step(conn):
    insert_review(conn, Review("Nia", 4, "brand new words here"))
    with transaction(conn):
        conn.execute("UPDATE reviews SET comments = 'rewritten text', rating = 1 WHERE id = 5")
        conn.execute("UPDATE reviews SET created_at = '2026-02-28T00:00:00.000Z' WHERE id = 6")
        conn.execute("DELETE FROM reviews WHERE id IN (7, 8, 9)")
    assert days_table(conn) == days_by_group(conn)
    conn.execute("INSERT INTO reviews_fts (reviews_fts, rank) VALUES ('integrity-check', 1)")
    for word in ("brand", "rewritten", "checkout", "nia", "zoë", "café", "naïve"):
        assert [r[0] for r in find_reviews(conn, ReviewFilter(query=word), limit=10_000)] == like_ids(conn, word), word
    assert 7 not in [r[0] for r in find_reviews(conn, ReviewFilter(), limit=10_000)]
    # The per-day id bounds still hold every review of the day (a date filter pages within them).
    for f in (ReviewFilter(first_day="2026-02-28", last_day="2026-02-28"), ReviewFilter(last_day="2026-01-03"),
              ReviewFilter(query="rewritten", first_day="2026-01-01")):
        assert [r[0] for r in find_reviews(conn, f, limit=10_000)] == like_ids(conn, f.query, f), f


@pytest.mark.parametrize("text", NASTY)
def test_search_treats_fts_syntax_as_plain_text(conn, text):
    """Never an error; a search for words finds what LIKE finds for the same words."""
    f = ReviewFilter(query=text)
    rows = find_reviews(conn, f, limit=10_000)
    count, exact = count_reviews(conn, f, budget_seconds=NO_BUDGET)
    assert exact and count == len(rows)
    if text.strip() and all(ch.isalnum() or ch == " " for ch in text.strip()):
        assert [r[0] for r in rows] == like_ids(conn, text.strip()), text


def test_search_finds_the_fts_keywords_as_words(conn):
    insert_review(conn, Review("", 3, "please place the button NEAR the top - not below"))
    assert find_reviews(conn, ReviewFilter(query="button NEAR the"))[0][4].startswith("please place")
    assert find_reviews(conn, ReviewFilter(query='"top - not"'))[0][4].startswith("please place")


@pytest.mark.parametrize("f", [ReviewFilter(), ReviewFilter(query="slow"), ReviewFilter(ratings=(1, 5)),
                               ReviewFilter(first_day="2026-01-10", last_day="2026-01-20"),
                               ReviewFilter(query="great", ratings=(4,), first_day="2026-01-05")],
                         ids=["all", "search", "ratings", "dates", "everything"])
def test_keyset_pages_are_the_offset_pages(conn, f):
    """Walking older then newer by id gives exactly the pages OFFSET would, and the counts agree."""
    expected = like_ids(conn, f.query, f)
    size = 23
    pages, cursor = [], None
    while True:
        rows = find_reviews(conn, f, limit=size, before_id=cursor)
        if not rows:
            break
        pages.append([r[0] for r in rows])
        cursor = rows[-1][0]
    assert pages == [expected[i:i + size] for i in range(0, len(expected), size)]
    for i in range(len(pages) - 1, 0, -1):  # and back, page by page
        assert [r[0] for r in find_reviews(conn, f, limit=size, after_id=pages[i][0])] == pages[i - 1]
    assert count_reviews(conn, f, budget_seconds=NO_BUDGET) == (len(expected), True)


def test_count_is_capped_for_a_common_word(conn):
    assert count_reviews(conn, ReviewFilter(query="slow"), cap=10) == (10, False)


def test_summary_matches_a_full_count(conn):
    f = ReviewFilter(ratings=(2, 3), first_day="2026-01-15", last_day="2026-02-10")
    data = summarize(conn, f)
    rows = conn.execute("SELECT substr(created_at, 1, 10), rating FROM reviews").fetchall()
    chosen = [(d, r) for d, r in rows if r in (2, 3) and "2026-01-15" <= d <= "2026-02-10"]
    assert data.per_day["reviews"].sum() == len(chosen)
    assert len(data.per_day) == 27 and str(data.per_day["day"].iloc[0].date()) == "2026-01-15"
    assert dict(zip(data.distribution["rating"], data.distribution["reviews"])) == {
        "1": 0, "2": sum(r == 2 for _, r in chosen), "3": sum(r == 3 for _, r in chosen), "4": 0, "5": 0}
    # The 7-day rolling average on the last day, from the raw rows.
    window = [r for d, r in rows if r in (2, 3) and "2026-02-04" <= d <= "2026-02-10"]
    assert data.per_day["average"].iloc[-1] == pytest.approx(round(sum(window) / len(window), 2))


def test_summary_of_an_empty_range_says_so(conn):
    data = summarize(conn, ReviewFilter(first_day="2025-01-01", last_day="2025-01-31"))
    assert data.text == "No reviews from 2025-01-01 to 2025-01-31 (UTC days)." and data.per_day["reviews"].sum() == 0


@pytest.mark.parametrize("first,last,message", [
    ("2026-02-01", "2026-01-01", "reversed"),
    ("2026-13-01", "", "not a date"),
    ("yesterday", "", "not a date"),
    ("1900-01-01", "", "out of range"),
    ("", "9999-12-31", "out of range"),
])
def test_bad_date_ranges_get_a_clear_message(first, last, message):
    with pytest.raises(FilterError, match=message):
        parse_filter("", [1, 2, 3, 4, 5], first, last, today=date(2026, 11, 25))


def test_no_rating_chosen_gets_a_clear_message():
    with pytest.raises(FilterError, match="at least one rating"):
        parse_filter("", [], "", "")


def test_the_csv_holds_the_filtered_reviews_guarded(conn, tmp_path):
    insert_review(conn, Review("=cmd()", 5, "+1 great"))
    f = ReviewFilter(ratings=(5,), first_day="2026-01-01")
    path = write_export(tmp_path / "r.db", folder=tmp_path / "exports", f=f)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "created_at_utc", "created_at_local", "time_zone", "name", "rating", "comments",
                       "status", "reply", "reply_at"]
    assert [int(r[0]) for r in rows[1:]] == sorted(like_ids(conn, "", f))
    assert rows[-1][4:] == ["'=cmd()", "5", "'+1 great", "public", "", ""]


def test_a_count_past_its_time_budget_says_many_instead_of_waiting(conn):
    fill(conn, 5000, seed=9)
    f = ReviewFilter(query="slow", ratings=(1, 2, 3))
    assert count_reviews(conn, f, budget_seconds=0) == (None, False)
    assert count_reviews(conn, f, budget_seconds=NO_BUDGET) == (len(like_ids(conn, "slow", f)), True)
