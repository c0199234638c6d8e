"""Hostile backups: a restored database keeps only the schema we create (worker/schema_guard.py).

Real SQLite files made with shared/schema.py, with the objects an attacker with write
access to the dataset would add; after the guard, the form's writes behave.
"""

from __future__ import annotations

import sqlite3

import pytest

from shared.db import placeholders
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from worker.schema_guard import SchemaRefused, expected_schema, normalised_sql, remove_foreign_objects


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


@pytest.mark.parametrize("column", ["owner_note TEXT", "shown TEXT GENERATED ALWAYS AS (upper(comments)) VIRTUAL"],
                         ids=["another column", "a generated column"])
def test_a_table_of_ours_with_another_or_a_generated_column_is_refused(tmp_path, column):
    conn = open_store_db(tmp_path / "odd.db")
    try:
        conn.execute(f"ALTER TABLE reviews ADD COLUMN {column}")
        with pytest.raises(SchemaRefused, match=column.split()[0]):
            remove_foreign_objects(conn)
    finally:
        conn.close()


def test_the_expected_schema_is_built_by_shared_schema_not_listed_here():
    ours, columns = expected_schema()
    assert "reviews" in columns and ("table", "reviews") in ours
    assert any(kind == "trigger" for kind, _ in ours)  # the totals triggers, whatever migrations added since


# ---------------------------------------------------------------- our own tables, redefined

NOW_PREFIX = "20"  # created_at of a review stored today starts with the century, not "2001-"


def _reviews_sql(conn: sqlite3.Connection) -> str:
    return conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'reviews'").fetchone()[0]


def _redefine(path, change) -> None:
    """What someone with write access to the dataset can do in two statements: rewrite the stored
    definition of our `reviews` table (the rows stay, integrity_check still passes)."""
    conn = sqlite3.connect(path)
    try:
        sql = _reviews_sql(conn)
        hostile = change(sql)
        assert hostile != sql
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'reviews'", (hostile,))
        conn.commit()
    finally:
        conn.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()


def _add_clause(clause):
    return lambda sql: sql.rstrip()[:-1] + f", {clause})"


REDEFINED = {
    "CHECK refuses low ratings": _add_clause("CHECK (rating >= 3 OR id <= 1)"),
    "CHECK refuses a word": _add_clause("CHECK (comments NOT LIKE '%refund%')"),
    "back-dating DEFAULT": lambda sql: sql.replace("DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                                   "DEFAULT ('2001-01-01T00:00:00.000Z')"),
    "DEFAULT with another format": lambda sql: sql.replace("'%Y-%m-%dT%H:%M:%fZ'", "'%Y-%M-%dT%H:%m:%fZ'"),
    "COLLATE on the name": lambda sql: sql.replace("name TEXT", "name TEXT COLLATE NOCASE"),
}


def _form_writes_behave(conn: sqlite3.Connection) -> None:
    ids = [insert_review(conn, Review(name=f"after-{r}", rating=r, comments=f"a refund please {r}"))
           for r in range(1, 6)]
    rows = conn.execute(f"SELECT rating, comments, created_at FROM reviews WHERE id IN ({placeholders(5)}) "
                        "ORDER BY id", ids).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(r, f"a refund please {r}") for r in range(1, 6)]
    assert all(r[2].startswith(NOW_PREFIX) and not r[2].startswith("2001-") and r[2][4] == "-" for r in rows)


@pytest.mark.parametrize("case", list(REDEFINED))
def test_a_redefined_table_of_ours_is_rebuilt_from_our_sql_with_its_rows(tmp_path, case):
    path = tmp_path / "restored.db"
    conn = open_store_db(path)
    insert_review(conn, Review(name="before", rating=5, comments="kept"))
    conn.close()
    _redefine(path, REDEFINED[case])
    conn = open_store_db(path)
    try:
        ours, _ = expected_schema()
        dropped = remove_foreign_objects(conn, source="test")
        assert any("table reviews (rebuilt" in d for d in dropped), dropped
        assert normalised_sql(_reviews_sql(conn)) == normalised_sql(ours[("table", "reviews")].sql)
        assert conn.execute("SELECT name, comments FROM reviews").fetchall() == [("before", "kept")]
        _form_writes_behave(conn)
        # Our triggers are back on the rebuilt table: totals and the search index follow every insert.
        assert conn.execute("SELECT SUM(n) FROM review_stats").fetchone()[0] == 6
        assert conn.execute("SELECT COUNT(*) FROM reviews_fts WHERE reviews_fts MATCH 'refund'").fetchone()[0] == 5
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'reviews'").fetchone()[0] == 6
        assert remove_foreign_objects(conn) == []
    finally:
        conn.close()


def test_a_redefined_search_index_is_created_again_from_our_sql(tmp_path):
    conn = open_store_db(tmp_path / "fts.db")
    try:
        insert_review(conn, Review(name="n", rating=4, comments="Überall schnell"))
        conn.execute("DROP TABLE reviews_fts")  # the triggers name it: recreated with another tokenizer
        conn.execute("CREATE VIRTUAL TABLE reviews_fts USING fts5(name, comments, content='reviews', "
                     "content_rowid='id', tokenize='ascii')")
        dropped = remove_foreign_objects(conn)
        assert "table reviews_fts (search index created again from our SQL)" in dropped
        ours, _ = expected_schema()
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'reviews_fts'").fetchone()[0]
        assert normalised_sql(sql) == normalised_sql(ours[("table", "reviews_fts")].sql)
        # remove_diacritics again: "uberall" finds "Überall", as our index does.
        assert conn.execute("SELECT COUNT(*) FROM reviews_fts WHERE reviews_fts MATCH 'uberall'").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_hostile_v1_backup_is_cleaned_after_its_migration(tmp_path):
    """The restore's path for an older backup (worker/restore.py calls guard_and_migrate)."""
    from shared.schema import _MIGRATIONS
    from worker.schema_guard import guard_and_migrate

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    try:
        for statement in _MIGRATIONS[1]:
            if statement.strip().startswith("CREATE TABLE IF NOT EXISTS reviews"):
                statement = statement.rstrip()[:-1] + ", CHECK (review >= 3 OR id <= 1))"
                statement = statement.replace("DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                              "DEFAULT ('2001-01-01T00:00:00.000Z')")
            conn.execute(statement)
        conn.execute("INSERT INTO reviews (name, review, comments) VALUES ('old', 5, 'kept')")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    finally:
        conn.close()
    conn = sqlite3.connect(path)
    try:
        removed = guard_and_migrate(conn, source="test")
        assert any("table reviews (rebuilt" in d for d in removed), removed
        assert conn.execute("SELECT name, rating, comments FROM reviews").fetchall() == [("old", 5, "kept")]
        _form_writes_behave(conn)
    finally:
        conn.close()


def test_normalised_sql_ignores_spacing_case_and_quotes_but_not_literals():
    assert normalised_sql('CREATE TABLE "reviews" (\n  id  INTEGER)') == normalised_sql("create table reviews (id integer)")
    assert normalised_sql("DEFAULT ('%Y-%m')") != normalised_sql("DEFAULT ('%Y-%M')")
    assert normalised_sql("a TEXT") != normalised_sql("a TEXT COLLATE NOCASE")
