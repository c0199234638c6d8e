"""Connections to a reviews store (the live database, or a copy opened as one), the schema and its
migrations, and the review queries. Every connection of the project is opened by `connect()`: the
worker's mirror, snapshots, deltas and staged copies too (wal=False: each must stay one file).

Every live-store connection gets the same pragmas: WAL (checked, not assumed), a busy
timeout so that the web and the worker wait for each other instead of failing,
synchronous=NORMAL (safe in WAL: a power cut may lose the last commits, never
corrupt the file), and a journal size limit so the -wal file shrinks back after
a checkpoint.

Totals are kept in `review_stats` by triggers, so a submit never scans the
table: the seed's COUNT(id) grew with every review (60 ms at 1M rows).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import urllib.parse
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from shared.reviews import Review

BUSY_TIMEOUT_MS = 10_000
JOURNAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024
SCHEMA_VERSION = 4
# One name for the rating across the db, the CSV, the Parquet files and the card.
COLUMNS = ("id", "created_at", "name", "rating", "comments")
# What the owner decided about a review (shared.moderation): carried in every backup file
# after the review's own columns, so a reader of the older five finds them where they were.
MODERATION_COLUMNS = ("status", "reply", "reply_at")
BACKUP_COLUMNS = COLUMNS + MODERATION_COLUMNS
PUBLIC, HIDDEN, PENDING = "public", "hidden", "pending"
STATUSES = (PUBLIC, HIDDEN, PENDING)

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
    # by the statements in _DERIVED_V3_BACKFILL, and kept in step by triggers on the one
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
        "INSERT INTO reviews_fts (reviews_fts) VALUES ('rebuild')",
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


class StoreError(RuntimeError):
    """The database cannot be used as it is (not WAL, newer schema, ...)."""


def _uri(path: Path, *, readonly: bool = False) -> str:
    # Quoted: a "?" or "#" in a folder name would otherwise end the path part of the URI.
    return "file:" + urllib.parse.quote(str(path)) + ("?mode=ro" if readonly else "")


def connect(path: Path | str, *, readonly: bool = False, wal: bool = True,
            schema: Callable[[sqlite3.Connection], None] | None = None) -> sqlite3.Connection:
    """Open a connection with the project's pragmas. Autocommit mode: writers use `transaction()`.

    wal=False opens a single-file database (rollback journal) that stays one file and can be
    copied or published as it is: the worker's mirror, snapshots, deltas and staged copies.
    `schema` (e.g. ensure_schema) runs on the new connection; on any failure it is closed."""
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(_uri(path, readonly=readonly), uri=True, isolation_level=None,
                           check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal and not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"could not switch {path} to WAL: journal_mode={mode}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
        if schema is not None:
            schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def attached(conn: sqlite3.Connection, name: str, path: Path | str) -> Iterator[str]:
    """Another database file attached read-only as schema `name` for the block (cross-file
    INSERT ... SELECT in one transaction), detached afterwards."""
    conn.execute("ATTACH DATABASE ? AS " + name, (_uri(Path(path), readonly=True),))
    try:
        yield name
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # DETACH is refused inside a transaction
        raise
    finally:
        conn.execute("DETACH DATABASE " + name)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction: BEGIN IMMEDIATE takes the write lock up front
    (no deadlock-prone lock upgrade), rollback on any exception.

    As sqlite-utils' `atomic()`: roll back only while a transaction is open
    (SQLite may already have rolled it back, e.g. on SQLITE_FULL, and a second
    ROLLBACK would hide the real error), and roll back when COMMIT itself fails
    (a deferred constraint, a full disk), so the connection is never left inside
    a half-done transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Several reads that see one state of the database (WAL: one snapshot from the first read).

    Joins a transaction that is already open, so helpers can use it inside a
    caller's transaction."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # read-only: ending it is all that is needed, whatever happened


def schema_version(conn: sqlite3.Connection) -> int:
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
    """A read-write connection to a database whose schema is up to date."""
    return connect(path, schema=ensure_schema)


@dataclass(frozen=True)
class Summary:
    total: int
    counts: tuple[int, int, int, int, int]  # reviews per rating 1..5
    max_id: int
    changes: int
    # Public reviews per rating 1..5 (not hidden, not pending); () when not read.
    public_counts: tuple[int, ...] = ()

    def public(self) -> "Summary":
        """What the public page shows: only the public reviews count in the total, average and chart."""
        counts = self.public_counts or (0, 0, 0, 0, 0)
        return Summary(total=sum(counts), counts=counts, max_id=self.max_id, changes=self.changes,  # type: ignore[arg-type]
                       public_counts=counts)

    @property
    def average(self) -> float | None:
        if not self.total:
            return None
        return sum(r * n for r, n in zip(range(1, 6), self.counts)) / self.total

    @property
    def fingerprint(self) -> str:
        """Equal fingerprints mean the same data: used to skip empty backups."""
        return f"rows={self.total};max_id={self.max_id};changes={self.changes}"


def read_summary(conn: sqlite3.Connection, schema: str = "main") -> Summary:
    """Totals from the trigger-kept tables: constant cost whatever the table size.
    `schema`: an attached database's name, to read its totals on the same connection.

    One read transaction, so the parts agree with each other."""
    with read_transaction(conn):
        stats = {r: (n, p) for r, n, p in conn.execute(f"SELECT rating, n, public_n FROM {schema}.review_stats")}
        max_id = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {schema}.reviews").fetchone()[0]
        changes = conn.execute(f"SELECT value FROM {schema}.meta WHERE key = 'changes'").fetchone()[0]
    per_rating = tuple(int(stats.get(r, (0, 0))[0]) for r in range(1, 6))
    public = tuple(int(stats.get(r, (0, 0))[1]) for r in range(1, 6))
    return Summary(total=sum(per_rating), counts=per_rating, max_id=max_id, changes=changes,  # type: ignore[arg-type]
                   public_counts=public)


def insert_review(conn: sqlite3.Connection, review: Review, *, status: str = PUBLIC) -> int:
    """Store one review; `status` PENDING in pre-moderation mode (public after the owner approves)."""
    if status not in STATUSES:
        raise ValueError(f"unknown review status {status!r}")
    with transaction(conn):
        cur = conn.execute("INSERT INTO reviews (name, rating, comments, status) VALUES (?, ?, ?, ?)",
                           (review.name, review.rating, review.comments, status))
    assert cur.lastrowid is not None  # always set after an INSERT
    return cur.lastrowid


def latest_reviews(conn: sqlite3.Connection, limit: int = 10) -> list[tuple]:
    """The newest public reviews: (id, created_at, name, rating, comments, reply, reply_at).
    Hidden and pending ones are skipped (few, and reviews_moderated keeps the owner's side fast)."""
    return conn.execute(
        "SELECT id, created_at, name, rating, comments, reply, reply_at FROM reviews WHERE status = 'public' "
        "ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()


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
        clauses.append(f"{alias}.rating IN ({', '.join('?' * len(f.ratings))})")
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
        pattern = "%" + f.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
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
            sql += f" AND rating IN ({', '.join('?' * len(f.ratings))})"
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


def day_bounds(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """The first and last UTC day that has reviews (None for an empty table)."""
    row = conn.execute("SELECT MIN(day), MAX(day) FROM review_days WHERE n > 0").fetchone()
    return None if row[0] is None else (row[0], row[1])


def reviews_per_day(conn: sqlite3.Connection, first_day: str, last_day: str,
                    ratings: tuple[int, ...] = ()) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(day, reviews, rating sum, reviews per rating 1..5) for each day with reviews, in order."""
    sql = "SELECT day, rating, n FROM review_days WHERE day >= ? AND day <= ? AND n > 0"
    params: list = [first_day, last_day]
    if ratings:
        sql += f" AND rating IN ({', '.join('?' * len(ratings))})"
        params.extend(ratings)
    days: dict[str, list[int]] = {}
    for day, rating, n in conn.execute(sql + " ORDER BY day", params):
        if 1 <= (rating or 0) <= 5:
            days.setdefault(day, [0] * 5)[rating - 1] += n
    return [(day, sum(c), sum((i + 1) * n for i, n in enumerate(c)), tuple(c)) for day, c in days.items()]


class Store:
    """The web's handle on the database: one persistent connection per thread.

    Gradio runs handlers in a thread pool; opening a connection per request
    costs a file open plus pragmas each time, so each thread keeps its own.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = open_store_db(self.path)  # creates/migrates once, at start
        conn.close()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def add(self, review: Review, *, pending: bool = False) -> int:
        return insert_review(self.conn(), review, status=PENDING if pending else PUBLIC)

    def latest(self, limit: int = 10) -> list[tuple]:
        return latest_reviews(self.conn(), limit)

    def summary(self) -> Summary:
        return read_summary(self.conn())

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # closed from its own thread already
            self._all.clear()
