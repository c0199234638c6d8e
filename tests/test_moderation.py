"""The owner's moderation on a real database file: statuses, figures, log, replies, and a
delete that leaves no byte of the text in reviews.db, its -wal or its -shm."""

import sqlite3
from pathlib import Path

import pytest

from shared import moderation as mod
from shared.db import connect
from shared.owner_search import ReviewFilter, find_reviews
from shared.schema import SCHEMA_VERSION, _MIGRATIONS, open_store_db
from shared.store import insert_review, latest_reviews, read_summary
from shared.reviews import Review
from web import moderation_panel, owner_list, review_list

pytestmark = pytest.mark.unit

SECRET = "zqxjvphone0176secret"


def add(conn, comments, rating=4, name="Ann", status="public"):
    return insert_review(conn, Review(name=name, rating=rating, comments=comments), status=status)


@pytest.fixture
def db(tmp_path):
    conn = open_store_db(tmp_path / "reviews.db")
    yield conn
    conn.close()


def file_bytes(path: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def test_a_version_3_database_is_migrated_with_every_review_public(tmp_path):
    path = tmp_path / "v3.db"
    old = sqlite3.connect(path, isolation_level=None)
    for version in (1, 2, 3):
        for statement in _MIGRATIONS[version]:
            old.execute(statement)
    old.execute("PRAGMA user_version = 3")
    old.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)",
                    [("2026-03-01T10:00:00.000Z", "Ann", 5, "great"), ("2026-03-02T10:00:00.000Z", "Bob", 1, "slow")])
    old.close()
    conn = open_store_db(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        s = read_summary(conn)
        assert s.counts == s.public_counts == (1, 0, 0, 0, 1)
        assert [r[0] for r in latest_reviews(conn)] == [2, 1]
        assert conn.execute("SELECT DISTINCT status FROM reviews").fetchall() == [("public",)]
    finally:
        conn.close()


def test_hide_leaves_the_public_list_and_figures_and_the_owner_still_sees_it(db):
    a, b = add(db, "fine", 5), add(db, "abusive words", 1)
    before = read_summary(db)
    assert mod.hide(db, [b]) == 1
    s = read_summary(db)
    assert s.public().total == 1 and s.public().average == 5.0 and s.public().counts == (0, 0, 0, 0, 1)
    assert s.total == 2, "the worker's count keeps every row"
    assert s.changes > before.changes, "the backup's fingerprint sees the hide"
    assert [r[0] for r in latest_reviews(db)] == [a]
    assert mod.statuses(db, [a, b]) == {a: ("public", None), b: ("hidden", None)}
    assert mod.unhide(db, [b]) == 1
    assert [r[0] for r in latest_reviews(db)] == [b, a]
    log = mod.log_entries(db)
    assert [(e.action, e.review_id, e.detail) for e in log] == [("unhide", b, "hidden->public"),
                                                                ("hide", b, "public->hidden")]


def test_pending_reviews_wait_for_approval(db):
    a = add(db, "first", 3, status="pending")
    assert latest_reviews(db) == [] and read_summary(db).public().total == 0
    assert mod.approve(db, [a]) == 1
    assert [r[0] for r in latest_reviews(db)] == [a]
    assert mod.approve(db, [a]) == 0, "already public: nothing to do, nothing logged"
    assert [e.action for e in mod.log_entries(db)] == ["approve"]


def test_an_unknown_review_changes_nothing(db):
    a = add(db, "x")
    changes = read_summary(db).changes
    with pytest.raises(mod.ModerationError, match="No review #99"):
        mod.hide(db, [a, 99])
    with pytest.raises(mod.ModerationError, match="No review #99"):
        mod.delete(db, [99])
    with pytest.raises(mod.ModerationError):
        mod.hide(db, ["abc"])
    assert mod.statuses(db, [a]) == {a: ("public", None)}
    assert read_summary(db).changes == changes and mod.log_entries(db) == []


def test_a_reply_is_shown_as_the_owners_and_escaped(db):
    a = add(db, "where is my order?")
    mod.reply(db, a, "Sorry! <script>alert(1)</script> ${x}")
    rows = latest_reviews(db)
    assert rows[0][5].startswith("Sorry!") and rows[0][6]
    html = review_list.render(rows, hide_names=False)
    assert review_list.OWNER_REPLY_LABEL in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "${" not in html
    with pytest.raises(mod.ModerationError, match="at most"):
        mod.reply(db, a, "x" * (mod.MAX_REPLY_CHARS + 1))
    mod.reply(db, a, "")
    assert latest_reviews(db)[0][5] is None
    assert [e.action for e in mod.log_entries(db)] == ["reply-removed", "reply"]


def test_the_owners_list_marks_hidden_and_pending_reviews_and_shows_the_reply_as_text(db):
    a, b, c = add(db, "fine", 5), add(db, "rude", 1), add(db, "new", 4, status="pending")
    mod.hide(db, [b])
    mod.reply(db, a, "Thanks \u202e<img src=x onerror=alert(1)> ${x}")
    rows = moderation_panel.mark_rows(db, find_reviews(db, ReviewFilter(), limit=10))
    assert [r[5:] for r in rows] == [("pending", None), ("hidden", None), ("public", rows[2][6])]
    html = owner_list.render(rows, show_ids=False)
    assert f'data-review="{b}" data-rating="1" data-status="hidden"' in html
    assert f'data-review="{c}" data-rating="4" data-status="pending"' in html
    assert html.count('class="mod-mark') == 2 and "Waiting for approval" in html and ">Hidden<" in html
    assert html.count('class="owner-reply"') == 1 and '<p class="reply-text" dir="auto">Thanks &lt;img' in html
    assert "<img" not in html and "\u202e" not in html and "${" not in html
    # The public list drops the same bidi control from the reply (web/display_text.py).
    public = review_list.render(latest_reviews(db), hide_names=False)
    assert "\u202e" not in public and "&lt;img" in public and public.count('class="reply"') == 1


def test_bulk_hide_over_a_filter_needs_a_filter(db):
    ids = [add(db, f"buy cheap pills {i}", 1) for i in range(5)] + [add(db, "real review", 4)]
    with pytest.raises(mod.ModerationError, match="Narrow"):
        mod.bulk(db, "hide", ReviewFilter())
    assert mod.bulk(db, "hide", ReviewFilter(query="pills")) == 5
    assert [r[0] for r in latest_reviews(db)] == [ids[-1]]
    assert sum(1 for e in mod.log_entries(db) if e.detail.endswith("bulk")) == 5


def test_delete_leaves_a_tombstone_and_no_byte_of_the_text_in_any_file(tmp_path):
    path = tmp_path / "reviews.db"
    conn = open_store_db(path)
    reader = connect(path)  # the web's connection, open all along
    try:
        # Many small transactions: the FTS index gets several segments, the -wal many frames.
        for i in range(300):
            add(conn, f"ordinary review number {i} about delivery")
        victim = add(conn, f"call me on {SECRET} anytime", 2, name=f"Name{SECRET}")
        for i in range(50):
            add(conn, f"later review {i}")
        reader.execute("SELECT COUNT(*) FROM reviews").fetchone()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the text is in the main file too, as it would be
        assert SECRET.encode() in file_bytes(path)
        assert mod.delete(conn, [victim]) == 1
        assert conn.execute("SELECT review_id FROM tombstones").fetchall() == [(victim,)]
        log = mod.log_entries(conn)
        assert [(e.action, e.review_id) for e in log] == [("delete", victim)]
        assert SECRET not in repr(conn.execute("SELECT * FROM moderation_log").fetchall())
        conn.execute("INSERT INTO reviews_fts (reviews_fts, rank) VALUES ('integrity-check', 1)")
        assert read_summary(conn).total == 350
        raw = file_bytes(path)
        assert SECRET.encode() not in raw and b"zqxjvphone" not in raw
        assert Path(str(path) + "-wal").stat().st_size == 0
        # Still a working database: search, submit and the reader all go on.
        assert mod.filter_ids(conn, ReviewFilter(query="delivery"), limit=1000)[:1] == [300]
        add(conn, "after the delete")
        assert reader.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 351
    finally:
        reader.close()
        conn.close()


def test_bulk_delete_erases_every_matching_text(tmp_path):
    path = tmp_path / "reviews.db"
    conn = open_store_db(path)
    try:
        for i in range(40):
            add(conn, f"spamword{i:03d}x visit example dot com", 1)
            add(conn, f"kept review {i}", 5)
        assert mod.bulk(conn, "delete", ReviewFilter(query="visit example")) == 40
        raw = file_bytes(path)
        assert b"spamword" not in raw
        assert conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0] == 40
        assert read_summary(conn).public().total == 40
    finally:
        conn.close()


def test_history_rewrite_requests_are_one_at_a_time(db):
    first = mod.request_history_rewrite(db)
    assert mod.request_history_rewrite(db) == first
    assert mod.open_history_request(db)[0] == first
    mod.finish_history_request(db, first, "rewritten: 3 revisions")
    assert mod.open_history_request(db) is None
    assert mod.last_history_rewrite(db)[1] == "rewritten: 3 revisions"


def test_an_old_backups_delta_applies_to_its_migrated_base(tmp_path):
    """A backup made before the moderation columns: restore migrates its base, and its delta's
    five columns fill the first five (the new ones take their defaults)."""
    from worker.delta import apply_delta

    base, delta = tmp_path / "base.db", tmp_path / "delta.db"
    for path, rows in ((base, [(1, "a"), (2, "b")]), (delta, [(3, "c"), (4, "d")])):
        old = sqlite3.connect(path, isolation_level=None)
        for version in (1, 2, 3):
            for statement in _MIGRATIONS[version]:
                old.execute(statement)
        old.execute("PRAGMA user_version = 3")
        old.executemany("INSERT INTO reviews (id, created_at, name, rating, comments) "
                        "VALUES (?, '2026-01-01T00:00:00.000Z', ?, 3, 'x')", rows)
        old.close()
    open_store_db(base).close()  # what restore does to the downloaded base (migrations)
    assert apply_delta(base, delta, base_max_id=2) == 2
    conn = connect(base, readonly=True)
    try:
        assert conn.execute("SELECT id, name, status, reply FROM reviews ORDER BY id").fetchall() == [
            (1, "a", "public", None), (2, "b", "public", None), (3, "c", "public", None), (4, "d", "public", None)]
        assert read_summary(conn).public_counts == (0, 0, 4, 0, 0)
    finally:
        conn.close()


def test_premoderation_setting_is_checked():
    from shared.config import ConfigError, load_config

    assert load_config({"FEEDBACK_PREMODERATION": "true"}).premoderation is True
    assert load_config({}).premoderation is False
    with pytest.raises(ConfigError, match="FEEDBACK_PREMODERATION='maybe'"):
        load_config({"FEEDBACK_PREMODERATION": "maybe"})
