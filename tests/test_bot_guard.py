"""web/bot_guard.py's rules on a real database file: tokens (signature, minimum time, one use,
expiry, a key kept across restarts), duplicates (also after a restart), links, and the refusal
counts (kept in `meta` without moving the backup change counter). The page itself, in a real
browser, is tests/test_bot_guard_browser.py."""

from __future__ import annotations

import time

import pytest

from shared.config import load_config
from shared.store import Store, read_summary
from shared.reviews import validate
from web import bot_guard
from web.bot_guard import (FLUSH_SECONDS, TOKEN_MAX_AGE_SECONDS, BotGuard, PageFields, Refused, count_links,
                           refusal_summary)


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data" / "reviews.db")
    yield s
    s.close()
    bot_guard._COUNTERS.pop(s.path, None)


def guard_for(tmp_path, store, clock, **env):
    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path / "data"), "FEEDBACK_MIN_SUBMIT_SECONDS": "3", **env})
    return BotGuard(config, store, clock=clock)


def submit(guard, store, comments="", *, page=None, name="", rating=4):
    review = validate(name, rating, comments)
    return guard.admit(review, lambda: store.add(review), client="127.0.0.1", page=page)


def reason(call) -> str:
    with pytest.raises(Refused) as refused:
        call()
    return refused.value.reason


def page_loaded(tmp_path, store, seconds_ago: float):
    """A guard (on its own clock), and a token it issued when the page loaded `seconds_ago`."""
    clock = Clock()
    guard = guard_for(tmp_path, store, clock)
    token = guard.issue()
    clock.now += seconds_ago
    return clock, guard, token


def test_token_minimum_time_one_use_expiry_and_a_key_that_survives_a_restart(tmp_path, store):
    clock, guard, token = page_loaded(tmp_path, store, 1)
    assert reason(lambda: submit(guard, store, page=PageFields("", token))) == "too_fast"
    assert store.summary().total == 0
    clock.now += 2.5
    restarted = guard_for(tmp_path, store, clock)  # the web restarted: same key from the data folder
    assert submit(restarted, store, page=PageFields("", token)) == 1
    assert reason(lambda: submit(restarted, store, page=PageFields("", token))) == "stale_page"  # one review each
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (None, "", "garbage", forged, 42):
        assert reason(lambda bad=bad: submit(restarted, store, page=PageFields("", bad))) == "stale_page"
    old = restarted.issue()
    clock.now += TOKEN_MAX_AGE_SECONDS + 1
    assert reason(lambda: submit(restarted, store, page=PageFields("", old))) == "stale_page"
    key = tmp_path / "data" / "bot-guard.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600" and len(key.read_bytes()) == 32


def test_trap_filled_is_refused_before_anything_else(tmp_path, store):
    _, guard, token = page_loaded(tmp_path, store, 10)
    assert reason(lambda: submit(guard, store, page=PageFields("me@example.com", token))) == "trap"
    assert submit(guard, store, page=PageFields("", token)) == 1  # the token was not used up by the refusal


def test_the_api_skips_the_page_checks_but_not_the_content_checks(tmp_path, store):
    guard = guard_for(tmp_path, store, Clock(), FEEDBACK_MAX_LINKS="1")
    assert submit(guard, store, "see https://a.example") == 1
    assert reason(lambda: submit(guard, store, "https://a.example and www.b.example")) == "links"


@pytest.mark.parametrize("text,links", [
    ("no links here, e.g. Node.js or 3.5 stars", 0), ("http://a.example/x", 1), ("www.shop.example", 1),
    ("cheap-pills.shop and best.deals.xyz/now", 2), ("ftp://x.example https://y.example", 2),
])
def test_links_counted(text, links):
    assert count_links(text) == links


def test_duplicates_in_the_window_also_after_a_restart(tmp_path, store):
    clock = Clock()
    guard = guard_for(tmp_path, store, clock, FEEDBACK_DUPLICATE_WINDOW_SECONDS="600")
    text = "The delivery was late and nobody answered the phone."
    assert submit(guard, store, text) == 1
    assert reason(lambda: submit(guard, store, "  the DELIVERY was late and nobody   answered the phone. ")) == "duplicate"
    assert submit(guard, store, "Great!") == 2 and submit(guard, store, "Great!") == 3  # short: people, not bots
    # A restart forgets the cache; the window's reviews are read back from the database.
    clock.now = time.time() + 60  # the stored review's created_at is the real clock's
    restarted = guard_for(tmp_path, store, clock, FEEDBACK_DUPLICATE_WINDOW_SECONDS="600")
    assert reason(lambda: submit(restarted, store, text)) == "duplicate"
    clock.now += 600
    assert submit(restarted, store, text) == 4  # the window has passed


def test_refusal_counts_persist_in_meta_without_moving_the_change_counter(tmp_path, store):
    clock = Clock()
    guard = guard_for(tmp_path, store, clock, FEEDBACK_MAX_LINKS="0")
    counter = guard.counter
    ticks = [0.0]
    counter.clock = lambda: ticks[0]
    counter._flushed_at = 0.0
    changes = read_summary(store.conn()).changes
    for _ in range(3):
        reason(lambda: submit(guard, store, "http://spam.example"))
    assert store.conn().execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'refused:%'").fetchone()[0] == 0  # batched
    assert "3 too many links" in refusal_summary(store)  # pending counts are shown at once
    ticks[0] = FLUSH_SECONDS + 1
    reason(lambda: submit(guard, store, "http://spam.example"))
    rows = dict(store.conn().execute("SELECT key, value FROM meta WHERE key LIKE 'refused:%'").fetchall())
    assert rows["refused:links"] == 4 and rows["refused:since"] > 0
    assert read_summary(store.conn()).changes == changes  # no backup is made for a count
    bot_guard._COUNTERS.pop(store.path)
    assert "4 too many links" in refusal_summary(store)  # read back from the database by a new process


def test_no_refusals_yet_says_so(tmp_path, store):
    assert refusal_summary(store) == "<p><strong>Refused as likely spam:</strong> none so far.</p>"
