"""The mirror: a snapshot kept up to date by appending only new rows (issue 14).

Real SQLite files; the mirror must equal the live database row for row after
every refresh, and any change that is not "new rows on top" must be caught
and answered with a full snapshot."""

import shutil

from shared.db import COLUMNS, connect, insert_review, open_store_db, read_summary, transaction
from shared.reviews import Review
from tests.backup_tree_support import review_rows as rows
from tests.store_support import add_reviews as add
from worker.merge import merge_backup_into
from worker.mirror import Mirror

COLS = ", ".join(COLUMNS)


def same_as_live(mirror, live):
    assert rows(mirror.path) == rows(live)
    a, b = connect(mirror.path, readonly=True), connect(live, readonly=True)
    try:
        assert read_summary(a) == read_summary(b)
        seq = "SELECT seq FROM sqlite_sequence WHERE name = 'reviews'"
        assert a.execute(seq).fetchone() == b.execute(seq).fetchone()
        assert a.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert a.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "the mirror is one self-contained file"
    finally:
        a.close()
        b.close()


def mirrored(tmp_path, rows):
    """A live database with `rows` reviews and a mirror brought up to date with it."""
    live = tmp_path / "reviews.db"
    add(live, rows)
    mirror = Mirror(tmp_path / ".mirror")
    mirror.refresh(live)
    return live, mirror


def test_first_refresh_is_full_then_only_new_rows_are_appended(tmp_path):
    live = tmp_path / "reviews.db"
    add(live, 20)
    mirror = Mirror(tmp_path / ".mirror")
    first = mirror.refresh(live)
    assert (first.kind, first.reason) == ("full", "no mirror yet")
    same_as_live(mirror, live)

    assert mirror.refresh(live).kind == "same"
    add(live, 7, tag="new")
    second = mirror.refresh(live)
    assert (second.kind, second.new_rows) == ("append", 7)
    assert second.summary.total == 27
    same_as_live(mirror, live)


def test_update_delete_and_a_replaced_database_fall_back_to_a_full_snapshot(tmp_path):
    live, mirror = mirrored(tmp_path, 10)

    conn = open_store_db(live)
    with transaction(conn):
        conn.execute("UPDATE reviews SET comments = 'edited by the owner' WHERE id = 3")
    insert_review(conn, Review("after", 5, ""))
    conn.close()
    edited = mirror.refresh(live)
    assert edited.kind == "full" and "not only new rows" in edited.reason
    same_as_live(mirror, live)

    conn = open_store_db(live)
    with transaction(conn):
        conn.execute("DELETE FROM reviews WHERE id = 2")
    conn.close()
    add(live, 1, tag="x")  # one insert and one delete: rows +0, changes +2
    assert mirror.refresh(live).kind == "full"
    same_as_live(mirror, live)

    # A different database put in place (restore --force of another history)
    # whose counters line up with the mirror's: its last row gives it away.
    other = tmp_path / "other" / "reviews.db"
    ours = mirror.summary()
    add(other, ours.max_id, tag="other")
    conn = open_store_db(other)
    with transaction(conn):
        conn.execute("DELETE FROM reviews WHERE id = 1")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'changes'", (ours.changes,))
    conn.close()
    add(other, 1, tag="other-new")  # rows +1, changes +1, one row above our max id
    replaced = connect(live)
    src = connect(other, readonly=True)
    src.backup(replaced, pages=-1)
    src.close()
    replaced.close()
    result = mirror.refresh(live)
    assert result.kind == "full" and f"row with id {ours.max_id} differs" in result.reason, result
    same_as_live(mirror, live)


def test_merge_after_a_split_brain_falls_back_to_a_full_snapshot(tmp_path):
    backup = tmp_path / "backup" / "reviews.db"
    add(backup, 5, tag="hub")
    live = tmp_path / "reviews.db"
    add(live, 3, tag="local")
    mirror = Mirror(tmp_path / ".mirror")
    mirror.refresh(live)
    merge_backup_into(live, backup)
    result = mirror.refresh(live)
    assert result.kind == "full"
    assert result.summary.total == 8
    same_as_live(mirror, live)


def test_a_torn_mirror_is_rebuilt_not_trusted(tmp_path):
    live, mirror = mirrored(tmp_path, 50)
    with open(mirror.path, "r+b") as f:  # a torn write: the header page is garbage
        f.write(b"\x00" * 100)
    add(live, 2)
    result = mirror.refresh(live)
    assert result.kind == "full" and "unusable" in result.reason
    same_as_live(mirror, live)


def test_a_migration_of_the_live_database_falls_back_to_a_full_snapshot(tmp_path):
    live, mirror = mirrored(tmp_path, 4)
    conn = open_store_db(live)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.execute(f"PRAGMA user_version = {version + 1}")  # what a new migration does
    conn.close()
    result = mirror.refresh(live)
    assert result.kind == "full" and "schema" in result.reason
    shutil.rmtree(mirror.folder)
    assert mirror.refresh(live).reason == "no mirror yet"


def test_a_full_snapshot_comes_at_least_weekly_even_with_only_appends(tmp_path):
    from worker import mirror as mirror_mod

    live = tmp_path / "reviews.db"
    add(live, 3)
    mirror = Mirror(tmp_path / ".mirror")
    first = mirror.refresh(live)
    add(live, 1)
    assert mirror.refresh(live).kind == "append"
    add(live, 1)
    later = mirror.lineage_path.stat().st_mtime + mirror_mod.FULL_SNAPSHOT_SECONDS + 1
    result = mirror.refresh(live, now=later)
    assert result.kind == "full" and "weekly" in result.reason
    assert result.lineage != first.lineage, "a new lineage: every backup file is rewritten from it"
    same_as_live(mirror, live)
