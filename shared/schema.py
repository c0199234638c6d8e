"""The reviews store's schema: its columns and statuses, the migrations that build it, and the
derived things only the schema's own rules may write (the write counter, the search index).

A database carries its version in PRAGMA user_version; `ensure_schema` runs the missing
migrations in one write transaction, so any process may open a store first (the web, the
worker, a restore). The migrations are also the one description of the schema:
worker/schema_guard.py builds the expected schema by running them into a scratch database.

Totals are kept in `review_stats` by triggers, so a submit never scans the
table: the seed's COUNT(id) grew with every review (60 ms at 1M rows).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shared.db import StoreError, connect, transaction

SCHEMA_VERSION = 4
# One name for the rating across the db, the CSV, the Parquet files and the card.
COLUMNS = ("id", "created_at", "name", "rating", "comments")
# What the owner decided about a review (shared.moderation): carried in every backup file
# after the review's own columns, so a reader of the older five finds them where they were.
MODERATION_COLUMNS = ("status", "reply", "reply_at")
BACKUP_COLUMNS = COLUMNS + MODERATION_COLUMNS
PUBLIC, HIDDEN, PENDING = "public", "hidden", "pending"
STATUSES = (PUBLIC, HIDDEN, PENDING)

# Rebuilds the FTS index from `reviews` (external content): migration 3's backfill, and
# rebuild_search_index below.
_REBUILD_SEARCH_INDEX = "INSERT INTO reviews_fts (reviews_fts) VALUES ('rebuild')"

# created_at is UTC, ISO 8601 with milliseconds: sortable as text, and precise
# enough to keep the order of reviews when two databases are merged.
_MIGRATIONS: dict[int, list[str]] = {
    1: [
        # IF NOT EXISTS: a database made by the seed app already has this table.
        """CREATE TABLE IF NOT EXISTS reviews (
               id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
               created_at TIMESTAMP DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
               name TEXT, review INTEGER, comments TEXT)""",
        "CREATE TABLE review_stats (rating INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        "INSERT INTO review_stats (rating, n) VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)",
        """UPDATE review_stats SET n = (SELECT COUNT(*) FROM reviews WHERE review = review_stats.rating)""",
        # `changes` counts every write ever made; with the row count and the
        # highest id it tells the worker cheaply whether anything changed.
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('changes', (SELECT COUNT(*) FROM reviews))",
        """CREATE TRIGGER reviews_ai AFTER INSERT ON reviews BEGIN
               UPDATE review_stats SET n = n + 1 WHERE rating = NEW.review;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_ad AFTER DELETE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1 WHERE rating = OLD.review;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_au AFTER UPDATE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1 WHERE rating = OLD.review;
               UPDATE review_stats SET n = n + 1 WHERE rating = NEW.review;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
    ],
    # v2: the column `review` held the rating; it is now called `rating`
    # everywhere (db, CSV, Parquet, card). The triggers are dropped first and
    # recreated after, so that no trigger body ever names a missing column.
    2: [
        "DROP TRIGGER IF EXISTS reviews_ai",
        "DROP TRIGGER IF EXISTS reviews_ad",
        "DROP TRIGGER IF EXISTS reviews_au",
        "ALTER TABLE reviews RENAME COLUMN review TO rating",
        """CREATE TRIGGER reviews_ai AFTER INSERT ON reviews BEGIN
               UPDATE review_stats SET n = n + 1 WHERE rating = NEW.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_ad AFTER DELETE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1 WHERE rating = OLD.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_au AFTER UPDATE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1 WHERE rating = OLD.rating;
               UPDATE review_stats SET n = n + 1 WHERE rating = NEW.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
    ],
    # v3: the owner's page at scale. Derived data only, rebuilt from `reviews`
    # by the statements in DERIVED_V3_BACKFILL, and kept in step by triggers on the one
    # table every write goes through (the form, the worker's merge and restore alike):
    # - reviews_fts: FTS5 over name + comments, external content (the text is stored once,
    #   in `reviews`); a search reads posting lists instead of LIKE '%q%' over every row.
    # - review_days: reviews and rating sum per UTC day and rating, so the summary's charts
    #   and the filtered counts read ~5 rows a day instead of the table.
    # - an index on created_at for the date-range filter of the list.
    3: [
        """CREATE VIRTUAL TABLE reviews_fts USING fts5(
               name, comments, content='reviews', content_rowid='id',
               tokenize='unicode61 remove_diacritics 2', columnsize=0)""",
        # min_id/max_id: bounds on the ids of the day's reviews (a delete or a changed created_at
        # leaves them wider, never narrower), so a date filter pages through only that id span.
        """CREATE TABLE review_days (
               day TEXT NOT NULL, rating INTEGER NOT NULL, n INTEGER NOT NULL,
               min_id INTEGER NOT NULL, max_id INTEGER NOT NULL,
               PRIMARY KEY (day, rating)) WITHOUT ROWID""",
        "CREATE INDEX reviews_created_at ON reviews (created_at)",
        """CREATE TRIGGER reviews_derived_ai AFTER INSERT ON reviews BEGIN
               INSERT INTO reviews_fts (rowid, name, comments) VALUES (NEW.id, NEW.name, NEW.comments);
               INSERT INTO review_days (day, rating, n, min_id, max_id)
                   VALUES (substr(NEW.created_at, 1, 10), NEW.rating, 1, NEW.id, NEW.id)
                   ON CONFLICT (day, rating) DO UPDATE SET n = n + 1, min_id = min(min_id, excluded.min_id),
                                                          max_id = max(max_id, excluded.max_id);
           END""",
        """CREATE TRIGGER reviews_derived_ad AFTER DELETE ON reviews BEGIN
               INSERT INTO reviews_fts (reviews_fts, rowid, name, comments)
                   VALUES ('delete', OLD.id, OLD.name, OLD.comments);
               UPDATE review_days SET n = n - 1 WHERE day = substr(OLD.created_at, 1, 10) AND rating = OLD.rating;
           END""",
        """CREATE TRIGGER reviews_derived_au AFTER UPDATE ON reviews BEGIN
               INSERT INTO reviews_fts (reviews_fts, rowid, name, comments)
                   VALUES ('delete', OLD.id, OLD.name, OLD.comments);
               INSERT INTO reviews_fts (rowid, name, comments) VALUES (NEW.id, NEW.name, NEW.comments);
               UPDATE review_days SET n = n - 1 WHERE day = substr(OLD.created_at, 1, 10) AND rating = OLD.rating;
               INSERT INTO review_days (day, rating, n, min_id, max_id)
                   VALUES (substr(NEW.created_at, 1, 10), NEW.rating, 1, NEW.id, NEW.id)
                   ON CONFLICT (day, rating) DO UPDATE SET n = n + 1, min_id = min(min_id, excluded.min_id),
                                                          max_id = max(max_id, excluded.max_id);
           END""",
        # Existing databases: fill both from the rows they hold (~6 s at 1M rows, see bench/owner_queries.py).
        _REBUILD_SEARCH_INDEX,
        """INSERT INTO review_days (day, rating, n, min_id, max_id)
               SELECT substr(created_at, 1, 10), rating, COUNT(*), MIN(id), MAX(id) FROM reviews
               WHERE rating IS NOT NULL GROUP BY 1, 2""",
    ],
    # v4: the owner's moderation (shared/moderation.py).
    # - reviews.status: public (shown), hidden (taken down by the owner), pending (waiting for
    #   approval in pre-moderation mode); reviews.reply / reply_at: the owner's public answer.
    # - review_stats.public_n: the public reviews per rating, what the public page's total,
    #   average and chart show; n still counts every row (what the worker's guards compare).
    # - moderation_log: every action, what/when/which review; never the text of a review.
    # - tombstones: the id and time of each deleted review, no content, so that no merge,
    #   restore or backup cycle brings it back, and the never-fewer guard can tell a deliberate
    #   delete from a loss.
    # - erase_requests: the owner asked (from the web, which cannot reach the Hub) for the
    #   dataset's history to be rewritten without the erased reviews; the worker does it.
    # The totals triggers are recreated with the public count; every write to the log also
    # counts as a change, so the worker's fingerprint sees every moderation action.
    4: [
        "DROP TRIGGER IF EXISTS reviews_ai",
        "DROP TRIGGER IF EXISTS reviews_ad",
        "DROP TRIGGER IF EXISTS reviews_au",
        """ALTER TABLE reviews ADD COLUMN status TEXT NOT NULL DEFAULT 'public'
               CHECK (status IN ('public', 'hidden', 'pending'))""",
        "ALTER TABLE reviews ADD COLUMN reply TEXT",
        "ALTER TABLE reviews ADD COLUMN reply_at TEXT",
        "ALTER TABLE review_stats ADD COLUMN public_n INTEGER NOT NULL DEFAULT 0",
        "UPDATE review_stats SET public_n = n",
        """CREATE TRIGGER reviews_ai AFTER INSERT ON reviews BEGIN
               UPDATE review_stats SET n = n + 1, public_n = public_n + (NEW.status = 'public')
                   WHERE rating = NEW.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_ad AFTER DELETE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1, public_n = public_n - (OLD.status = 'public')
                   WHERE rating = OLD.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TRIGGER reviews_au AFTER UPDATE ON reviews BEGIN
               UPDATE review_stats SET n = n - 1, public_n = public_n - (OLD.status = 'public')
                   WHERE rating = OLD.rating;
               UPDATE review_stats SET n = n + 1, public_n = public_n + (NEW.status = 'public')
                   WHERE rating = NEW.rating;
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        # The owner's queue (pending first) and the hidden list, without a scan of the public rows.
        "CREATE INDEX reviews_moderated ON reviews (status, id) WHERE status <> 'public'",
        """CREATE TABLE moderation_log (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
               action TEXT NOT NULL, review_id INTEGER, detail TEXT NOT NULL DEFAULT '')""",
        """CREATE TRIGGER moderation_log_ai AFTER INSERT ON moderation_log BEGIN
               UPDATE meta SET value = value + 1 WHERE key = 'changes';
           END""",
        """CREATE TABLE tombstones (
               review_id INTEGER PRIMARY KEY NOT NULL,
               deleted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))""",
        """CREATE TABLE erase_requests (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
               done_at TEXT, result TEXT NOT NULL DEFAULT '')""",
    ],
}

# Derived tables rebuilt from `reviews` (bench/make_db.py after a bulk load with the triggers off).
DERIVED_V3_BACKFILL = _MIGRATIONS[3][-2:]


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version a database is at (0: empty)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the schema; safe to call from several processes at once."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        version = schema_version(conn)  # re-read under the write lock
        if version > SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} is newer than this code ({SCHEMA_VERSION})")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")


def open_store_db(path: Path | str) -> sqlite3.Connection:
    """A read-write connection to a database whose schema is up to date: `connect(path,
    schema=ensure_schema)` under the name the callers mean (the store, migrated), so none of
    them can open a live store and forget the migrations."""
    return connect(path, schema=ensure_schema)


def write_count(conn: sqlite3.Connection, schema: str = "main") -> int:
    """The write counter (meta 'changes'): the triggers add one for every row written and every
    moderation action; with the row count and the highest id it makes a store's fingerprint.
    `schema`: an attached database's name."""
    return conn.execute(f"SELECT value FROM {schema}.meta WHERE key = 'changes'").fetchone()[0]


@contextmanager
def uncounted(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Writes in the block leave the write counter as it was: for a derived copy that must keep the
    fingerprint of the store it was made from (worker/privacy.py blanks the names in a copy of a
    snapshot; the triggers count each row like any write, yet the copy holds the same reviews).
    Use it inside the caller's transaction, so the writes and the counter commit together.

    The counter is history, not a function of the rows (the migrations start it at the row count),
    so it cannot be recounted: it is kept. The one writer of `changes` besides the triggers."""
    if not conn.in_transaction:
        raise StoreError("uncounted() needs an open transaction")  # else a failure leaves the count off
    before = write_count(conn)
    yield conn
    conn.execute("UPDATE meta SET value = ? WHERE key = 'changes'", (before,))


def rebuild_search_index(conn: sqlite3.Connection) -> None:
    """Rebuild the FTS index from the rows as they are now (as migration 3's backfill does).
    FTS5 keeps a deleted term in its older segments until they merge; a rebuild writes only what
    the rows hold. A store from before migration 3 has no index: nothing to do."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'reviews_fts'").fetchone():
        conn.execute(_REBUILD_SEARCH_INDEX)


def merge_search_index(conn: sqlite3.Connection) -> None:
    """Merge every FTS5 segment into one ('optimize'). A delete only appends a "delete" marker
    in a new segment; the older ones hold the deleted review's words until they are merged.
    The caller holds the write transaction (shared.moderation retries it when locked)."""
    conn.execute("INSERT INTO reviews_fts (reviews_fts) VALUES ('optimize')")
