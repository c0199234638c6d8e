"""The store on real database files."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from shared.db import (SCHEMA_VERSION, Store, StoreError, attached, connect, ensure_schema, insert_review, open_store_db,
                       read_summary, transaction)
from shared.reviews import Review


def test_wal_mode_and_pragmas_are_on(tmp_path):
    conn = open_store_db(tmp_path / "r.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    insert_review(conn, Review("a", 3, "b"))
    assert (tmp_path / "r.db-wal").exists()


def test_schema_creation_is_idempotent(tmp_path):
    path = tmp_path / "r.db"
    conn = open_store_db(path)
    insert_review(conn, Review("a", 5, ""))
    ensure_schema(conn)
    conn.close()
    conn = open_store_db(path)
    assert read_summary(conn).total == 1


def test_a_seed_database_is_migrated_with_its_reviews(tmp_path):
    path = tmp_path / "seed.db"
    seed = sqlite3.connect(path)
    seed.execute("""CREATE TABLE reviews (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL,
                    name TEXT, review INTEGER, comments TEXT)""")
    seed.executemany("INSERT INTO reviews (name, review, comments) VALUES (?, ?, ?)",
                     [("a", 5, ""), ("b", 4, ""), ("c", 5, "")])
    seed.commit()
    seed.close()
    conn = open_store_db(path)
    summary = read_summary(conn)
    assert summary.total == 3 and summary.counts == (0, 0, 0, 1, 2) and summary.max_id == 3
    insert_review(conn, Review("d", 1, ""))
    assert read_summary(conn).counts == (1, 0, 0, 1, 2)
    assert conn.execute("SELECT name, rating FROM reviews ORDER BY id").fetchall() == [
        ("a", 5), ("b", 4), ("c", 5), ("d", 1)]


def test_a_version_1_database_is_migrated_to_the_rating_column(tmp_path):
    """A v1 database (column `review`, triggers naming it) keeps its rows, ids and totals."""
    from shared.db import _MIGRATIONS

    path = tmp_path / "v1.db"
    v1 = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[1]:
        v1.execute(statement)
    v1.execute("PRAGMA user_version = 1")
    v1.executemany("INSERT INTO reviews (created_at, name, review, comments) VALUES (?, ?, ?, ?)",
                   [("2026-01-01T00:00:00.000Z", "a", 5, None), ("2026-01-02T00:00:00.000Z", None, 2, "NULL")])
    v1.execute("DELETE FROM reviews WHERE id = 1")
    v1.execute("INSERT INTO reviews (created_at, name, review, comments) VALUES ('2026-01-03T00:00:00.000Z', '', 4, '')")
    before = v1.execute("SELECT * FROM reviews ORDER BY id").fetchall()
    changes = v1.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()[0]
    v1.close()

    conn = open_store_db(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    assert [c[1] for c in conn.execute("PRAGMA table_info(reviews)")] == ["id", "created_at", "name", "rating",
                                                                         "comments", "status", "reply", "reply_at"]
    assert conn.execute("SELECT id, created_at, name, rating, comments FROM reviews ORDER BY id").fetchall() == before
    assert read_summary(conn).counts == (0, 1, 0, 1, 0) and read_summary(conn).changes == changes
    # The recreated triggers follow the new column: insert, update and delete keep the totals.
    new_id = insert_review(conn, Review("c", 1, ""))
    conn.execute("UPDATE reviews SET rating = 5 WHERE id = 2")
    conn.execute("DELETE FROM reviews WHERE id = ?", (new_id,))
    summary = read_summary(conn)
    assert summary.counts == (0, 0, 0, 1, 1) and summary.changes == changes + 3
    assert not [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
                if "review;" in sql or ".review" in sql]


def test_summary_tracks_inserts_updates_and_deletes(tmp_path):
    conn = open_store_db(tmp_path / "r.db")
    for rating in (1, 2, 2, 5):
        insert_review(conn, Review("", rating, ""))
    s = read_summary(conn)
    assert (s.total, s.counts, s.average) == (4, (1, 2, 0, 0, 1), 2.5)
    conn.execute("UPDATE reviews SET rating = 3 WHERE id = 1")
    conn.execute("DELETE FROM reviews WHERE id = 4")
    s2 = read_summary(conn)
    assert (s2.total, s2.counts) == (3, (0, 2, 1, 0, 0))
    assert s2.fingerprint != s.fingerprint
    # The trigger-kept totals agree with a full count.
    assert s2.counts == tuple(conn.execute(f"SELECT COUNT(*) FROM reviews WHERE rating = {r}").fetchone()[0]
                              for r in range(1, 6))


def test_readonly_connection_cannot_write(tmp_path):
    path = tmp_path / "r.db"
    open_store_db(path).close()
    ro = connect(path, readonly=True)
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("INSERT INTO reviews (name, rating, comments) VALUES ('x', 1, '')")


def test_store_latest_is_newest_first(tmp_path):
    store = Store(tmp_path / "r.db")
    for i in range(15):
        store.add(Review(f"n{i}", 1 + i % 5, f"c{i}"))
    latest = store.latest(10)
    assert [row[0] for row in latest] == list(range(15, 5, -1))
    assert latest[0][2] == "n14" and latest[0][1].endswith("Z")  # UTC
    store.close()


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from shared.db import open_store_db, insert_review
    from shared.reviews import Review
    conn = open_store_db({path!r})
    for i in range({n}):
        insert_review(conn, Review({tag!r}, 1 + i % 5, str(i)))
    print("done")
""")


def test_two_processes_writing_at_once_both_succeed(tmp_path):
    import pathlib
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    path = str(tmp_path / "r.db")
    open_store_db(path).close()
    n = 400
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, path=path, n=n, tag=tag)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    conn = connect(path, readonly=True)
    counts = dict(conn.execute("SELECT name, COUNT(*) FROM reviews GROUP BY name").fetchall())
    assert counts == {"a": n, "b": n}
    assert read_summary(conn).total == 2 * n
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _scratch(tmp_path):
    """A connection with a deferred foreign key: its violation is reported by COMMIT, not the INSERT."""
    conn = connect(tmp_path / "t.db")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, "
                 "parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    return conn


def test_a_failing_commit_is_rolled_back(tmp_path):
    from shared.db import transaction

    conn = _scratch(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        with transaction(conn):
            conn.execute("INSERT INTO child (parent_id) VALUES (42)")  # no parent 42: COMMIT fails
    assert not conn.in_transaction, "a failed COMMIT must not leave the transaction open"
    assert conn.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    with transaction(conn):  # the connection is usable again
        conn.execute("INSERT INTO parent (id) VALUES (1)")
    assert conn.execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 1


def test_the_real_error_is_raised_when_sqlite_already_rolled_back(tmp_path):
    from shared.db import transaction

    conn = _scratch(tmp_path)
    with pytest.raises(ValueError, match="the real cause"):
        with transaction(conn):
            conn.execute("INSERT INTO parent (id) VALUES (1)")
            conn.execute("ROLLBACK")  # as SQLite does by itself on some errors (SQLITE_FULL, ...)
            raise ValueError("the real cause")
    assert not conn.in_transaction


def test_read_transaction_sees_one_state_and_joins_an_open_one(tmp_path):
    from shared.db import read_transaction

    path = tmp_path / "r.db"
    reader, writer = open_store_db(path), open_store_db(path)
    insert_review(writer, Review("a", 5, ""))
    with read_transaction(reader):
        before = reader.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
        insert_review(writer, Review("b", 4, ""))  # WAL: the writer is not blocked by the reader
        assert read_summary(reader).total == before == 1  # joins the open read: the same snapshot
    assert not reader.in_transaction
    assert read_summary(reader).total == 2
    with pytest.raises(RuntimeError):
        with read_transaction(reader):
            raise RuntimeError("ends the read anyway")
    assert not reader.in_transaction


def test_one_factory_opens_single_file_copies_odd_paths_and_attached_files(tmp_path):
    # A folder name with URI delimiters: the path must not be cut at "?" or "#".
    folder = tmp_path / "a?b#c%20d"
    live = open_store_db(folder / "live.db")
    insert_review(live, Review("a", 4, "x"))
    live.close()
    assert (folder / "live.db").exists() and not (tmp_path / "a").exists()

    copy = connect(folder / "copy.db", wal=False, schema=ensure_schema)
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # stays one file
    assert copy.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    with attached(copy, "live", folder / "live.db"):
        assert read_summary(copy, "live").counts == (0, 0, 0, 1, 0)
        with pytest.raises(sqlite3.OperationalError):  # attached read-only
            copy.execute("DELETE FROM live.reviews")
    assert "live" not in [r[1] for r in copy.execute("PRAGMA database_list")]

    # A failed block inside a transaction is rolled back and the file still detached.
    with pytest.raises(RuntimeError), attached(copy, "live", folder / "live.db"), transaction(copy):
        copy.execute("INSERT INTO main.reviews (name, rating, comments) SELECT name, rating, comments "
                      "FROM live.reviews")
        raise RuntimeError("boom")
    assert read_summary(copy).total == 0
    assert "live" not in [r[1] for r in copy.execute("PRAGMA database_list")]
    copy.close()


def test_the_factory_closes_the_connection_when_the_schema_step_fails(tmp_path):
    opened: list[sqlite3.Connection] = []

    def refuse(conn: sqlite3.Connection) -> None:
        opened.append(conn)
        raise StoreError("no")

    with pytest.raises(StoreError):
        connect(tmp_path / "r.db", schema=refuse)
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        opened[0].execute("SELECT 1")
