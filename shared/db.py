"""The one place that opens database connections, plus the schema and the review queries.

Every connection gets the same pragmas: WAL (checked, not assumed), a busy
timeout so that the web and the worker wait for each other instead of failing,
synchronous=NORMAL (safe in WAL: a power cut may lose the last commits, never
corrupt the file), and a journal size limit so the -wal file shrinks back after
a checkpoint.

Totals are kept in `review_stats` by triggers, so a submit never scans the
table: the seed's COUNT(id) grew with every review (60 ms at 1M rows).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from shared.reviews import Review

BUSY_TIMEOUT_MS = 10_000
JOURNAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024
SCHEMA_VERSION = 1
COLUMNS = ("id", "created_at", "name", "review", "comments")

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
}


class StoreError(RuntimeError):
    """The database cannot be used as it is (not WAL, newer schema, ...)."""


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection with the project's pragmas. Autocommit mode: writers use `transaction()`."""
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"could not switch {path} to WAL: journal_mode={mode}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
    except BaseException:
        conn.close()
        raise
    return conn


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
    conn = connect(path)
    try:
        ensure_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(frozen=True)
class Summary:
    total: int
    counts: tuple[int, int, int, int, int]  # reviews per rating 1..5
    max_id: int
    changes: int

    @property
    def average(self) -> float | None:
        if not self.total:
            return None
        return sum(r * n for r, n in zip(range(1, 6), self.counts)) / self.total

    @property
    def fingerprint(self) -> str:
        """Equal fingerprints mean the same data: used to skip empty backups."""
        return f"rows={self.total};max_id={self.max_id};changes={self.changes}"


def read_summary(conn: sqlite3.Connection) -> Summary:
    """Totals from the trigger-kept tables: constant cost whatever the table size.

    One read transaction, so the parts agree with each other."""
    with read_transaction(conn):
        counts = dict(conn.execute("SELECT rating, n FROM review_stats").fetchall())
        max_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM reviews").fetchone()[0]
        changes = conn.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()[0]
    per_rating = tuple(int(counts.get(r, 0)) for r in range(1, 6))
    return Summary(total=sum(per_rating), counts=per_rating, max_id=max_id, changes=changes)  # type: ignore[arg-type]


def insert_review(conn: sqlite3.Connection, review: Review) -> int:
    with transaction(conn):
        cur = conn.execute("INSERT INTO reviews (name, review, comments) VALUES (?, ?, ?)",
                           (review.name, review.rating, review.comments))
    return int(cur.lastrowid)


def latest_reviews(conn: sqlite3.Connection, limit: int = 10) -> list[tuple]:
    return conn.execute(
        "SELECT id, created_at, name, review, comments FROM reviews ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()


def search_reviews(conn: sqlite3.Connection, *, query: str = "", limit: int = 50,
                   offset: int = 0) -> tuple[list[tuple], int]:
    """A page of reviews, newest first, whose name or comments contain `query` (for the owner)."""
    if not query:
        rows = conn.execute(
            "SELECT id, created_at, name, review, comments FROM reviews ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset)).fetchall()
        return rows, read_summary(conn).total
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = "WHERE name LIKE ?1 ESCAPE '\\' OR comments LIKE ?1 ESCAPE '\\'"
    rows = conn.execute(
        f"SELECT id, created_at, name, review, comments FROM reviews {where} ORDER BY id DESC LIMIT ?2 OFFSET ?3",
        (pattern, limit, offset)).fetchall()
    total = conn.execute(f"SELECT COUNT(*) FROM reviews {where}", (pattern,)).fetchone()[0]
    return rows, total


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

    def add(self, review: Review) -> int:
        return insert_review(self.conn(), review)

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
