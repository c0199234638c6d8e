"""Parquet shards from real database files: types, raw values, and which shards a change rewrites."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.db import insert_review, open_store_db, read_summary
from shared.reviews import Review
from worker import parquet


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(parquet, "SHARD_ROWS", 10)


def _rows(folder, files):
    return pa.concat_tables([pq.read_table(folder / f) for f in files]).to_pylist()


def _mtimes(folder, files):
    return {f: (folder / f).stat().st_mtime_ns for f in files}


def test_types_and_raw_values(tmp_path):
    db = tmp_path / "r.db"
    conn = open_store_db(db)
    conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)", [
        ("2026-11-25T10:00:00.999Z", None, 5, ""),
        ("2026-11-25 10:00:01", "NULL", 1, "NA"),  # the seed's time format
        ("2026-11-25T10:00:02.000Z", "", 3, None),
        ("2026-11-25T10:00:03.001Z", "=HYPERLINK(x)", 2, "'=x"),  # raw: no guard here
    ])
    update = parquet.update_shards(db, tmp_path / "pq", read_summary(conn))
    table = pq.read_table(tmp_path / "pq" / update.files[0])
    assert table.schema.equals(parquet.schema())
    assert str(table.schema.field("created_at").type) == "timestamp[ms, tz=UTC]"
    assert table.schema.field("rating").type == pa.int8()
    got = table.to_pylist()
    assert [(r["name"], r["comments"]) for r in got] == [(None, ""), ("NULL", "NA"), ("", None),
                                                         ("=HYPERLINK(x)", "'=x")]
    assert [r["created_at"].isoformat(timespec="milliseconds") for r in got] == [
        "2026-11-25T10:00:00.999+00:00", "2026-11-25T10:00:01.000+00:00",
        "2026-11-25T10:00:02.000+00:00", "2026-11-25T10:00:03.001+00:00"]
    meta = pq.ParquetFile(tmp_path / "pq" / update.files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_a_new_review_rewrites_only_the_last_shard(tmp_path, small_shards):
    db, folder = tmp_path / "r.db", tmp_path / "pq"
    conn = open_store_db(db)
    for i in range(25):
        insert_review(conn, Review(f"n{i}", 1 + i % 5, f"c{i}"))
    first = parquet.update_shards(db, folder, read_summary(conn))
    assert first.files == ("data/reviews-0000000001-0000000010.parquet", "data/reviews-0000000011-0000000020.parquet",
                           "data/reviews-0000000021-0000000030.parquet")
    assert first.written == first.files
    before = _mtimes(folder, first.files)

    insert_review(conn, Review("new", 4, ""))
    second = parquet.update_shards(db, folder, read_summary(conn))
    assert second.written == (first.files[-1],)
    assert _mtimes(folder, first.files[:2]) == {f: before[f] for f in first.files[:2]}
    assert [r["id"] for r in _rows(folder, second.files)] == list(range(1, 27))

    # Nothing new: nothing written.
    assert parquet.update_shards(db, folder, read_summary(conn)).written == ()

    # Crossing into a new range: the old last shard (now full) and the new one.
    for i in range(5):
        insert_review(conn, Review("more", 2, ""))
    third = parquet.update_shards(db, folder, read_summary(conn))
    assert third.written == (first.files[-1], "data/reviews-0000000031-0000000040.parquet")


def test_an_update_or_delete_rewrites_every_shard_and_gaps_leave_no_empty_file(tmp_path, small_shards):
    db, folder = tmp_path / "r.db", tmp_path / "pq"
    conn = open_store_db(db)
    for i in range(25):
        insert_review(conn, Review(f"n{i}", 3, ""))
    parquet.update_shards(db, folder, read_summary(conn))
    conn.execute("UPDATE reviews SET comments = 'edited' WHERE id = 2")
    conn.execute("DELETE FROM reviews WHERE id BETWEEN 11 AND 20")
    update = parquet.update_shards(db, folder, read_summary(conn))
    assert update.files == ("data/reviews-0000000001-0000000010.parquet", "data/reviews-0000000021-0000000030.parquet")
    assert update.written == update.files
    assert update.removed == ("data/reviews-0000000011-0000000020.parquet",)
    assert not (folder / update.removed[0]).exists()
    rows = _rows(folder, update.files)
    assert [r["id"] for r in rows] == list(range(1, 11)) + list(range(21, 26))
    assert rows[1]["comments"] == "edited"


def test_switching_to_blanked_names_rewrites_everything(tmp_path, small_shards):
    db, folder = tmp_path / "r.db", tmp_path / "pq"
    conn = open_store_db(db)
    for i in range(15):
        insert_review(conn, Review(f"n{i}", 3, ""))
    summary = read_summary(conn)
    parquet.update_shards(db, folder, summary)
    again = parquet.update_shards(db, folder, summary, names="blank")
    assert again.written == again.files


def test_a_shard_filled_exactly_is_not_rewritten_when_the_next_begins(tmp_path, small_shards):
    db, folder = tmp_path / "r.db", tmp_path / "pq"
    conn = open_store_db(db)
    for i in range(20):
        insert_review(conn, Review(f"n{i}", 3, ""))
    parquet.update_shards(db, folder, read_summary(conn))
    insert_review(conn, Review("next", 3, ""))
    update = parquet.update_shards(db, folder, read_summary(conn))
    assert update.written == ("data/reviews-0000000021-0000000030.parquet",)


def test_shards_are_ours_only_whatever_the_umask(tmp_path):
    import os
    import stat

    db, folder = tmp_path / "r.db", tmp_path / "pq"
    conn = open_store_db(db)
    insert_review(conn, Review("Ada", 5, ""))
    old = os.umask(0o022)
    try:
        update = parquet.update_shards(db, folder, read_summary(conn))
    finally:
        os.umask(old)
    for path in [folder / update.files[0], folder / parquet.MANIFEST]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((folder / "data").stat().st_mode) & 0o077 == 0


def test_another_history_with_the_same_counts_rewrites_every_shard(tmp_path, small_shards):
    """A restore of another machine's backup: same row count, ids and write counter, other rows."""
    import shutil

    db, other, folder = tmp_path / "r.db", tmp_path / "other.db", tmp_path / "pq"
    conn = open_store_db(db)
    for i in range(15):
        insert_review(conn, Review(f"here {i}", 3, ""))
    parquet.update_shards(db, folder, read_summary(conn))
    conn.close()
    theirs = open_store_db(other)
    for i in range(16):
        insert_review(theirs, Review(f"there {i}", 4, "x"))
    theirs.close()
    shutil.copyfile(other, db)
    conn = open_store_db(db)
    update = parquet.update_shards(db, folder, read_summary(conn))
    assert update.written == update.files
    assert [r["name"] for r in _rows(folder, update.files)] == [f"there {i}" for i in range(16)]
