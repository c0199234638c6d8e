"""Hostile backups: a restored database keeps only the schema we create (worker/schema_guard.py).

Real SQLite files made with shared/db.py, with the objects an attacker with write
access to the dataset would add; after the guard, the form's writes behave.
"""

from __future__ import annotations

import sqlite3

import pytest

from shared.db import insert_review, open_store_db
from shared.reviews import Review
from worker.schema_guard import SchemaRefused, expected_schema, remove_foreign_objects


def rating_column(conn: sqlite3.Connection) -> str:
    columns = [row[1] for row in conn.execute("PRAGMA table_info(reviews)")]
    return "rating" if "rating" in columns else "review"  # renamed by schema migration 2


def _trigger_sql(conn: sqlite3.Connection, name: str) -> str:
    return conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)).fetchone()[0]


HOSTILE = {
    "extra AFTER INSERT ... DELETE trigger": lambda col: [
        f"CREATE TRIGGER zz_drop_low AFTER INSERT ON reviews WHEN NEW.{col} <= 3 "
        "BEGIN DELETE FROM reviews WHERE id = NEW.id; END"],
    "UPDATE comments trigger": lambda col: [
        f"CREATE TRIGGER zz_rewrite AFTER INSERT ON reviews WHEN NEW.{col} >= 4 "
        "BEGIN UPDATE reviews SET comments = 'rewritten' WHERE id = NEW.id; END"],
    "a view over reviews": lambda col: [
        "CREATE VIEW zz_everyone AS SELECT name, comments FROM reviews"],
    "an extra table and index": lambda col: [
        "CREATE TABLE zz_loot (x TEXT)", "CREATE INDEX zz_loot_x ON zz_loot (x)",
        "CREATE INDEX zz_reviews_name ON reviews (name)"],
}


@pytest.fixture
def db(tmp_path):
    conn = open_store_db(tmp_path / "restored.db")
    insert_review(conn, Review(name="before", rating=5, comments="kept"))
    yield conn
    conn.close()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_foreign_objects_are_dropped_and_the_form_writes_behave(db, case):
    for statement in HOSTILE[case](rating_column(db)):
        db.execute(statement)
    dropped = remove_foreign_objects(db, source="test")
    assert dropped and all("zz_" in item and "not in our schema" in item for item in dropped)
    for rating in range(1, 6):
        insert_review(db, Review(name=f"after-{rating}", rating=rating, comments=f"comment {rating}"))
    rows = db.execute("SELECT name, comments FROM reviews ORDER BY id").fetchall()
    assert rows == [("before", "kept")] + [(f"after-{r}", f"comment {r}") for r in range(1, 6)]
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if n.startswith("zz_")}
    assert remove_foreign_objects(db) == []  # nothing left to do


def test_a_changed_trigger_of_ours_is_replaced_by_ours(db):
    ours, _ = expected_schema()
    name = next(key[1] for key in ours if key[0] == "trigger")  # one of the totals triggers
    original = _trigger_sql(db, name)
    table = ours[("trigger", name)].table
    db.execute(f"DROP TRIGGER {name}")
    # Same name, hostile body: every insert also wipes the table.
    db.execute(f"CREATE TRIGGER {name} AFTER INSERT ON {table} BEGIN DELETE FROM reviews; END")
    dropped = remove_foreign_objects(db)
    assert dropped == [f"trigger {name} (changed)"]
    assert " ".join(_trigger_sql(db, name).split()) == " ".join(original.split())
    insert_review(db, Review(name="after", rating=2, comments="stays"))
    assert db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 2


def test_a_missing_trigger_of_ours_is_created_again(db):
    ours, _ = expected_schema()
    name = next(key[1] for key in ours if key[0] == "trigger")
    db.execute(f"DROP TRIGGER {name}")
    assert remove_foreign_objects(db) == []
    assert _trigger_sql(db, name)


def test_a_table_of_ours_with_other_columns_is_refused(tmp_path):
    conn = open_store_db(tmp_path / "odd.db")
    try:
        conn.execute("ALTER TABLE reviews ADD COLUMN owner_note TEXT")
        with pytest.raises(SchemaRefused, match="owner_note"):
            remove_foreign_objects(conn)
    finally:
        conn.close()


def test_the_expected_schema_is_built_by_shared_db_not_listed_here():
    ours, columns = expected_schema()
    assert "reviews" in columns and ("table", "reviews") in ours
    assert any(kind == "trigger" for kind, _ in ours)  # the totals triggers, whatever migrations added since
