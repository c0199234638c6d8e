"""One home for the tests' store helpers: add reviews to a database, read its rows back, export them."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from shared.config import load_config
from shared.csv_export import write_reviews_csv
from shared.db import connect
from shared.schema import COLUMNS, open_store_db
from shared.store import insert_review
from shared.reviews import Review


def add_reviews(where, n: int = 0, *, ratings: Iterable[int] | None = None, tag: str = "r",
                comment: str | None = None) -> list[int]:
    """Add reviews as the form does (one `insert_review` each) to `where`: a Config or a database path.

    Names tag0, tag1...; ratings cycle 1-5, or `ratings` (which then also says how many); the
    comment is `comment` or "<tag> comment <i>". Returns the new ids."""
    db = getattr(where, "db_path", where)
    chosen = list(ratings) if ratings is not None else [1 + i % 5 for i in range(n)]
    conn = open_store_db(db)
    try:
        return [insert_review(conn, Review(f"{tag}{i}", rating, comment if comment is not None else f"{tag} comment {i}"))
                for i, rating in enumerate(chosen)]
    finally:
        conn.close()


def all_rows(db_path: Path, columns: Sequence[str] = COLUMNS) -> list[tuple]:
    """Every review of a database file (read-only), in id order: `columns` of each."""
    conn = connect(db_path, readonly=True)
    try:
        return conn.execute(f"SELECT {', '.join(columns)} FROM reviews ORDER BY id").fetchall()
    finally:
        conn.close()


def exported_comments(tmp_path: Path, texts: Iterable[str]) -> list[str]:
    """One review per text in a fresh database under `tmp_path` (its data folder: tmp_path/data),
    written out by the product's CSV export: the comments column as a spreadsheet reads it back."""
    db = load_config({"FEEDBACK_DATA_DIR": str(tmp_path / "data")}).db_path
    conn = open_store_db(db)
    try:
        for text in texts:
            insert_review(conn, Review("n", 3, text))
    finally:
        conn.close()
    out = tmp_path / "reviews.csv"
    write_reviews_csv(db, out)
    with open(out, newline="", encoding="utf-8") as f:
        return [row[4] for row in list(csv.reader(f))[1:]]
