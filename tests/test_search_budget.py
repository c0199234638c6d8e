"""The owner's search has a time budget (shared/owner_search.py find_reviews): planted words cannot make it scan.

A real SQLite file with the FTS5 index, and reviews each carrying hundreds of distinct
words that share a prefix, as an attacker would plant them through the form."""

from __future__ import annotations

import random
import time

import pytest

from shared.db import connect, transaction
from shared.owner_search import ReviewFilter, SEARCH_TOO_BROAD_MESSAGE, SearchTooBroad, find_reviews
from shared.schema import open_store_db

PLANTED_REVIEWS, WORDS_EACH = 400, 400


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "reviews.db"
    conn = open_store_db(path)
    rnd = random.Random(7)
    with transaction(conn):
        for i in range(4000):
            if i % 10 == 0:
                text = " ".join(f"check{rnd.randrange(16 ** 8):08x}" for _ in range(WORDS_EACH))
            else:
                text = f"quick checkout number {i}"
            conn.execute("INSERT INTO reviews (name, rating, comments) VALUES (?, ?, ?)", ("n", 1 + i % 5, text))
    conn.close()
    return path


def test_a_prefix_over_planted_words_stops_at_the_budget_and_says_narrow_it_down(planted):
    conn = connect(planted, readonly=True)
    try:
        started = time.monotonic()
        with pytest.raises(SearchTooBroad) as refused:
            find_reviews(conn, ReviewFilter(query="che"), budget_seconds=0.005)
        assert time.monotonic() - started < 5  # interrupted, not run to the end (a bound, not a benchmark)
        assert str(refused.value) == SEARCH_TOO_BROAD_MESSAGE and "narrow" in SEARCH_TOO_BROAD_MESSAGE
        # The connection is usable afterwards, and an exact word is answered within the default budget.
        rows = find_reviews(conn, ReviewFilter(query="checkout"))
        assert len(rows) == 50 and all("checkout" in r[4] for r in rows)
    finally:
        conn.close()
