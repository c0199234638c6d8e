"""Parquet shards from real database files: types, raw values, id ranges.
(Which shards a cycle rewrites, and the files' mode, is worker/tree.py's: tests/test_tree.py.)"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from worker import parquet, shards


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(shards, "SHARD_ROWS", 10)


def test_types_and_raw_values(tmp_path):
    db = tmp_path / "r.db"
    conn = open_store_db(db)
    conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)", [
        ("2026-11-25T10:00:00.999Z", None, 5, ""),
        ("2026-11-25 10:00:01", "NULL", 1, "NA"),  # the seed's time format
        ("2026-11-25T10:00:02.000Z", "", 3, None),
        ("2026-11-25T10:00:03.001Z", "=HYPERLINK(x)", 2, "'=x"),  # raw: no guard here
    ])
    dest = tmp_path / "shard.parquet"
    assert parquet.write_shard(conn, 0, dest) == 4
    table = pq.read_table(dest)
    assert table.schema.equals(parquet.schema())
    assert str(table.schema.field("created_at").type) == "timestamp[ms, tz=UTC]"
    assert table.schema.field("rating").type == pa.int8()
    got = table.to_pylist()
    assert [(r["name"], r["comments"]) for r in got] == [(None, ""), ("NULL", "NA"), ("", None),
                                                         ("=HYPERLINK(x)", "'=x")]
    assert [r["created_at"].isoformat(timespec="milliseconds") for r in got] == [
        "2026-11-25T10:00:00.999+00:00", "2026-11-25T10:00:01.000+00:00",
        "2026-11-25T10:00:02.000+00:00", "2026-11-25T10:00:03.001+00:00"]
    meta = pq.ParquetFile(dest).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_shards_are_id_ranges_and_an_empty_range_writes_nothing(tmp_path, small_shards):
    db = tmp_path / "r.db"
    conn = open_store_db(db)
    for i in range(25):
        insert_review(conn, Review(f"n{i}", 1 + i % 5, ""))
    conn.execute("DELETE FROM reviews WHERE id BETWEEN 11 AND 20")
    conn.execute("INSERT INTO reviews (id, name, rating, comments) VALUES (-7, 'hand-edited', 1, '')")
    assert [shards.parquet_name(i) for i in range(3)] == [
        "data/reviews-0000000001-0000000010.parquet", "data/reviews-0000000011-0000000020.parquet",
        "data/reviews-0000000021-0000000030.parquet"]
    written = {}
    for i in range(3):
        dest = tmp_path / f"s{i}.parquet"
        written[i] = parquet.write_shard(connect(db, readonly=True), i, dest)
    assert written == {0: 11, 1: 0, 2: 5} and not (tmp_path / "s1.parquet").exists()
    ids = pq.read_table(tmp_path / "s0.parquet").column("id").to_pylist()
    assert ids == [-7] + list(range(1, 11))  # an id below 1 still lands in a shard
