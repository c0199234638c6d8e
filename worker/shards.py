"""The shard: a fixed range of ids, written once as CSV and once as Parquet.

Shard k holds the ids [k*n + 1, (k+1)*n] (n = SHARD_ROWS) and is named after
that range: `csv/reviews-<first>-<last>.csv` and `data/reviews-<first>-<last>.parquet`.
Ids only grow (AUTOINCREMENT), so once the ids are past a shard's end it never
changes again while the history is append-only: a run rewrites only the shards
that hold new ids (normally the last one). worker/tree.py decides which.
"""

from __future__ import annotations

# 100,000 ids per shard: a shard is ~2-4 MB (zstd), so 1M reviews are 10
# files and 10M are 100 (well under the Hub's per-folder file guidance), and a
# cycle rewrites at most 100k rows (~0.2 s) however large the form grows.
# Much smaller shards multiply files and requests; much larger ones make
# every cycle re-read and re-hash more data for the same few new rows.
SHARD_ROWS = 100_000
CSV_DIR = "csv"
DATA_DIR = "data"


def _size(shard_rows: int | None) -> int:
    # Read at call time, not bound as a default: a test shrinks SHARD_ROWS here, in one place.
    return shard_rows or SHARD_ROWS


def shard_index(row_id: int, shard_rows: int | None = None) -> int:
    return (row_id - 1) // _size(shard_rows)


def shard_bounds(index: int, shard_rows: int | None = None) -> tuple[int, int]:
    """The ids a shard holds (inclusive), for the query that fills both its files. The first
    shard's lower bound is open: it also takes ids below 1, which only a hand-edited file can
    hold, so that no row of the database is left out of every shard."""
    size = _size(shard_rows)
    return (index * size + 1 if index else -(2 ** 63)), (index + 1) * size


def shards_between(after_id: int, max_id: int, shard_rows: int | None = None) -> list[int]:
    """Indexes of the shards that hold ids in (after_id, max_id]."""
    if max_id <= after_id:
        return []
    return list(range(shard_index(after_id + 1, shard_rows), shard_index(max_id, shard_rows) + 1))


def _range_name(index: int, shard_rows: int | None) -> str:
    size = _size(shard_rows)
    return f"reviews-{index * size + 1:010d}-{(index + 1) * size:010d}"


def csv_name(index: int, shard_rows: int | None = None) -> str:
    """The CSV file of shard `index`, relative to the backup (formula-guarded text, shared.csv_export)."""
    return f"{CSV_DIR}/{_range_name(index, shard_rows)}.csv"


def parquet_name(index: int, shard_rows: int | None = None) -> str:
    """The Parquet file of shard `index`, relative to the backup (typed values, worker.parquet)."""
    return f"{DATA_DIR}/{_range_name(index, shard_rows)}.parquet"
