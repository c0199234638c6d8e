"""Typed Parquet shards of a snapshot: what readers of the dataset load.

The CSV is for spreadsheets (text only, formula-guarded); these files are for
`datasets.load_dataset`, pandas/polars over `hf://` and the Hub's viewer:
typed columns, raw values (no guard), NULL, '' and the text 'NULL' distinct.

Layout: `data/reviews-<first id>-<last id>.parquet`, one file per fixed range
of SHARD_ROWS ids. Ids only grow (AUTOINCREMENT), so a shard whose range
lies below the highest id is full and never changes again; a new review
rewrites only the last, partial shard. Files are written with pyarrow's
content-defined chunking, so that even that rewrite shares most of its
pages with the previous version in the Hub's Xet storage.

Which shards a cycle rewrites is decided by worker/tree.py (the backup's
files between runs), which writes each shard with `_write_shard`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from worker.fsutil import fsync_file

log = logging.getLogger("worker.parquet")

# 100,000 ids per shard: a shard is ~2-4 MB (zstd), so 1M reviews are 10
# files and 10M are 100 (well under the Hub's per-folder file guidance), and a
# cycle rewrites at most 100k rows (~0.2 s) however large the form grows.
# Much smaller shards multiply files and requests; much larger ones make
# every cycle re-read and re-hash more data for the same few new rows.
SHARD_ROWS = 100_000
DATA_DIR = "data"
COMPRESSION = "zstd"
BATCH_ROWS = 10_000

# created_at is stored as text 'YYYY-MM-DDTHH:MM:SS.sssZ' (or the seed's
# 'YYYY-MM-DD HH:MM:SS'): milliseconds since the epoch, exact, in SQL (no
# float julianday rounding). A value that is not a time becomes NULL here;
# the db keeps the original text.
_MS = ("CAST(strftime('%s', {c}) AS INTEGER) * 1000 "
       "+ CAST(substr(strftime('%f', {c}), 4, 3) AS INTEGER)")
# The rating must be a whole number that fits int8: the app only stores shared.reviews.RATINGS (1-5);
# anything else (a hand-edited file) is NULL here and kept as is in the db.
_RATING = "CASE WHEN typeof(rating) = 'integer' AND rating BETWEEN -128 AND 127 THEN rating END"
_TEXT = "CASE WHEN {c} IS NULL THEN NULL ELSE CAST({c} AS TEXT) END"
# After the review's own five columns, the owner's: status (public/hidden/pending), reply, reply_at.
SHARD_SQL = (f"SELECT id, {_MS.format(c='created_at')}, {_TEXT.format(c='name')}, {_RATING}, "
             f"{_TEXT.format(c='comments')}, {_TEXT.format(c='status')}, {_TEXT.format(c='reply')}, "
             f"{_MS.format(c='reply_at')} FROM reviews WHERE id BETWEEN ? AND ? ORDER BY id")


def schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("created_at", pa.timestamp("ms", tz="UTC")),
        pa.field("name", pa.string()),
        pa.field("rating", pa.int8()),
        pa.field("comments", pa.string()),
        pa.field("status", pa.string()),
        pa.field("reply", pa.string()),
        pa.field("reply_at", pa.timestamp("ms", tz="UTC")),
    ])


def shard_name(index: int) -> str:
    first = index * SHARD_ROWS + 1
    return f"{DATA_DIR}/reviews-{first:010d}-{first + SHARD_ROWS - 1:010d}.parquet"


def _id_range(index: int) -> tuple[int, int]:
    """Ids of a shard. The first also takes ids below 1, which only a hand-edited file can hold."""
    first = index * SHARD_ROWS + 1
    return (first if index else -(2 ** 63)), first + SHARD_ROWS - 1


def _read_rows(conn, index: int):
    """The shard's rows as an Arrow table, BATCH_ROWS rows at a time as Python
    objects. (Tried: adbc-driver-sqlite straight into Arrow: slower
    here (1.8 s vs 0.7 s per 100k rows, the NULL flags double the SQL) and no
    smaller at peak, so the simple path stays.)"""
    import pyarrow as pa

    cursor = conn.execute(SHARD_SQL, _id_range(index))
    batches = []
    while rows := cursor.fetchmany(BATCH_ROWS):
        columns = list(zip(*rows))
        batches.append(pa.record_batch([pa.array(col, type=field.type) for col, field in zip(columns, schema())],
                                       schema=schema()))
    return pa.Table.from_batches(batches, schema=schema()) if batches else None


def _write_shard(conn, index: int, dest: Path) -> int:
    """Write shard `index` of the database behind `conn` to `dest` (tmp + rename, 0600);
    the number of rows, 0 when the range holds none (then nothing is written)."""
    import pyarrow.parquet as pq

    table = _read_rows(conn, index)
    if table is None:
        return 0
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        # Page index: readers (the viewer, DuckDB, polars) can skip pages by id
        # and time. Content-defined chunking: page boundaries follow the data,
        # so a rewrite with a few rows more keeps the earlier pages byte-identical
        # and Xet deduplicates them.
        pq.write_table(table, tmp, compression=COMPRESSION, write_page_index=True,
                       use_content_defined_chunking=True, write_statistics=True)
        # The reviews, names included: ours only, whatever the umask of the
        # command that wrote it (a one-shot `python -m worker backup` from a shell).
        os.chmod(tmp, 0o600)
        fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return table.num_rows
