"""The reviews store as the pages use it: store a review, the newest public reviews, the totals
(`Summary`, also the worker's fingerprint of a store), the per-day counts of the owner's charts,
and `Store`, the web's handle with one connection per thread.

Every read here costs the same whatever the table size: it reads the trigger-kept tables
(review_stats, review_days, meta; shared/schema.py) or an index, never a scan of `reviews`.
The owner's search and its filtered counts are in shared/owner_search.py.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from shared.db import connect, placeholders, read_transaction, transaction
from shared.reviews import RATINGS, Review
from shared.schema import PENDING, PUBLIC, STATUSES, open_store_db, write_count


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
        return sum(r * n for r, n in zip(RATINGS, self.counts)) / self.total

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
        changes = write_count(conn, schema)
    per_rating = tuple(int(stats.get(r, (0, 0))[0]) for r in RATINGS)
    public = tuple(int(stats.get(r, (0, 0))[1]) for r in RATINGS)
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
        sql += f" AND rating IN ({placeholders(len(ratings))})"
        params.extend(ratings)
    days: dict[str, list[int]] = {}
    for day, rating, n in conn.execute(sql + " ORDER BY day", params):
        if rating in RATINGS:
            days.setdefault(day, [0] * len(RATINGS))[RATINGS.index(rating)] += n
    return [(day, sum(c), sum(r * n for r, n in zip(RATINGS, c)), tuple(c)) for day, c in days.items()]


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
