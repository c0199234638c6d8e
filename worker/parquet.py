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

`update_shards` is the one entry point: it compares the snapshot with what
the shard folder was last made from (a small manifest beside the files) and
rewrites only the shards that can have changed. Anything other than plain
inserts since then (an update, a delete, a merge, a restore, a switch to
blanked names) rewrites every shard: the triggers' write counter tells them
apart cheaply.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from shared.db import Summary, connect
from worker.fsutil import fsync_file, replace_durably

log = logging.getLogger("worker.parquet")

# 100,000 ids per shard: a shard is ~2-4 MB (zstd), so 1M reviews are 10
# files and 10M are 100 (well under the Hub's per-folder file guidance), and a
# cycle rewrites at most 100k rows (~0.2 s) however large the form grows.
# Much smaller shards multiply files and requests; much larger ones make
# every cycle re-read and re-hash more data for the same few new rows.
SHARD_ROWS = 100_000
DATA_DIR = "data"
MANIFEST = "shards.json"
COMPRESSION = "zstd"
BATCH_ROWS = 10_000

# created_at is stored as text 'YYYY-MM-DDTHH:MM:SS.sssZ' (or the seed's
# 'YYYY-MM-DD HH:MM:SS'): milliseconds since the epoch, exact, in SQL (no
# float julianday rounding). A value that is not a time becomes NULL here;
# the db keeps the original text.
_MS = ("CAST(strftime('%s', created_at) AS INTEGER) * 1000 "
       "+ CAST(substr(strftime('%f', created_at), 4, 3) AS INTEGER)")
# The rating must be a whole number that fits int8: the app only stores 1-5;
# anything else (a hand-edited file) is NULL here and kept as is in the db.
_RATING = "CASE WHEN typeof(rating) = 'integer' AND rating BETWEEN -128 AND 127 THEN rating END"
_TEXT = "CASE WHEN {c} IS NULL THEN NULL ELSE CAST({c} AS TEXT) END"
SHARD_SQL = (f"SELECT id, {_MS}, {_TEXT.format(c='name')}, {_RATING}, {_TEXT.format(c='comments')} "
             "FROM reviews WHERE id BETWEEN ? AND ? ORDER BY id")


def schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("created_at", pa.timestamp("ms", tz="UTC")),
        pa.field("name", pa.string()),
        pa.field("rating", pa.int8()),
        pa.field("comments", pa.string()),
    ])


def shard_name(index: int) -> str:
    first = index * SHARD_ROWS + 1
    return f"{DATA_DIR}/reviews-{first:010d}-{first + SHARD_ROWS - 1:010d}.parquet"


def shard_index(row_id: int) -> int:
    return (row_id - 1) // SHARD_ROWS if row_id > 0 else 0


def _id_range(index: int) -> tuple[int, int]:
    """Ids of a shard. The first also takes ids below 1, which only a hand-edited file can hold."""
    first = index * SHARD_ROWS + 1
    return (first if index else -(2 ** 63)), first + SHARD_ROWS - 1


@dataclass(frozen=True)
class ShardUpdate:
    """What `update_shards` did. Paths are relative to the shard folder, as in the dataset."""

    files: tuple[str, ...]  # every shard of the snapshot, in id order
    written: tuple[str, ...]  # rewritten this time (a subset of files)
    removed: tuple[str, ...]  # shards that no longer exist (their ids are gone)


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _only_inserts_since(conn, before: dict, summary: Summary) -> bool:
    """True when the only writes since `before` were inserts above its highest id."""
    inserted = summary.total - int(before["rows"])
    if inserted < 0 or summary.changes - int(before["changes"]) != inserted or summary.max_id < int(before["max_id"]):
        return False
    # An insert with an explicit low id would also pass the counts: check the old range is untouched.
    below = conn.execute("SELECT COUNT(*) FROM reviews WHERE id <= ?", (int(before["max_id"]),)).fetchone()[0]
    if below != int(before["rows"]):
        return False
    # Another history with the same counts (a restore of another machine's backup): its
    # last row then differs in time. The backup guard tells a stranger the same way.
    return _tip(conn, int(before["max_id"])) == before.get("tip")


def _tip(conn, max_id: int) -> str | None:
    row = conn.execute("SELECT created_at, name, comments FROM reviews WHERE id = ?", (max_id,)).fetchone()
    return None if row is None else json.dumps(row)


def _read_rows(conn, index: int):
    """The shard's rows as an Arrow table, BATCH_ROWS rows at a time as Python
    objects. (Tried: adbc straight into Arrow, as the CSV export does: slower
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


def update_shards(db_path: Path, folder: Path, summary: Summary, *, names: str = "keep") -> ShardUpdate:
    """Bring the shards in `folder`/data/ up to date with the snapshot at `db_path`.

    `summary` is the snapshot's own (rows, highest id, write counter); `names`
    ("keep" or "blank") records whether the snapshot's names were blanked, so
    that switching rewrites everything. Only shards that can differ are written.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / DATA_DIR).mkdir(mode=0o700, exist_ok=True)
    before = _read_manifest(folder)
    conn = connect(db_path, readonly=True)
    try:
        # The ranges that hold rows: one index lookup per range, not a scan of the table.
        wanted = [i for i in range(shard_index(summary.max_id) + 1)
                  if conn.execute("SELECT 1 FROM reviews WHERE id BETWEEN ? AND ? LIMIT 1", _id_range(i)).fetchone()]
        existing = {p.relative_to(folder).as_posix() for p in (folder / DATA_DIR).glob("reviews-*.parquet")}
        incremental = (before is not None and before.get("shard_rows") == SHARD_ROWS
                       and before.get("names") == names and set(before.get("files", [])) <= existing
                       and _only_inserts_since(conn, before, summary))
        # New ids are above the old highest: the first shard they can land in.
        first_dirty = shard_index(int(before["max_id"]) + 1) if incremental and before else -1
        written = []
        for index in wanted:
            name = shard_name(index)
            if incremental and index < first_dirty and name in existing:
                continue  # full before, and nothing but inserts above it since: unchanged
            if incremental and index == first_dirty and name in existing and summary.max_id == int(before["max_id"]):
                continue  # no new row at all
            _write_shard(conn, index, folder / name)
            written.append(name)
    finally:
        conn.close()
    files = [shard_name(i) for i in wanted]
    removed = sorted(existing - set(files))
    for name in removed:
        (folder / name).unlink(missing_ok=True)
    conn = connect(db_path, readonly=True)
    try:
        tip = _tip(conn, summary.max_id)
    finally:
        conn.close()
    manifest = {"rows": summary.total, "max_id": summary.max_id, "changes": summary.changes, "tip": tip,
                "shard_rows": SHARD_ROWS, "names": names, "files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.chmod(tmp, 0o600)
    replace_durably(tmp, folder / MANIFEST)
    log.debug("parquet shards updated files=%d written=%d removed=%d", len(files), len(written), len(removed))
    return ShardUpdate(files=tuple(files), written=tuple(written), removed=tuple(removed))
