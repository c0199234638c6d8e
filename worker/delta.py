"""The delta: every review above the base's highest id, in a database file of its own.

A backup is base + delta (worker/tree.py). The worker writes the delta after
each refresh of the mirror (`write_delta`: only the rows after the previous
delta are copied); restore applies it to the downloaded base (`apply_delta_conn`),
checking that it starts right above the base and that the result holds what
the manifest says. worker.tree re-makes the base before the delta grows large.

The delta, like the base and every snapshot, is a plain single-file database
(rollback journal, `wal=False`): a file that can be published as it is.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from shared.db import attached, connect, transaction
from shared.schema import BACKUP_COLUMNS
from shared.store import read_summary
from shared.fsutil import atomic_write
from shared.reviews import WITHHELD_NAME_SQL
from worker.manifest import BackupManifest
from worker.privacy import BLANK, KEEP
from worker.snapshot import SnapshotError, integrity_check


def select_list(names: str) -> str:
    """The backup's columns for a SELECT from `reviews`, the name withheld (NULL) when names are."""
    return ", ".join(f"{WITHHELD_NAME_SQL} AS name" if names == BLANK and c == "name" else c for c in BACKUP_COLUMNS)


def write_delta(mirror_db: Path, dest: Path, *, above_id: int, previous: Path | None = None,
                previous_max_id: int | None = None, names: str = KEEP) -> int:
    """Write to `dest` every row of `mirror_db` with id > above_id. With `previous`
    (the last delta, holding ids up to previous_max_id) only the rows after it are
    copied. Returns the delta's row count. Checked before it is renamed into place."""
    def write(tmp: Path) -> int:
        cols = ", ".join(BACKUP_COLUMNS)
        if previous is not None and previous.exists() and previous_max_id is not None:
            shutil.copyfile(previous, tmp)
            start, fresh = previous_max_id, False
        else:
            start, fresh = above_id, True
        conn = connect(tmp, wal=False)
        try:
            with attached(conn, "mirror", mirror_db):
                if fresh:  # the mirror's own table definition, created in the new file (main)
                    conn.execute(conn.execute("SELECT sql FROM mirror.sqlite_master "
                                              "WHERE type = 'table' AND name = 'reviews'").fetchone()[0])
                with transaction(conn):
                    # Names withheld: never written, so no old name lingers in a free page either.
                    conn.execute(f"INSERT INTO main.reviews ({cols}) SELECT {select_list(names)} "
                                 "FROM mirror.reviews WHERE id > ? ORDER BY id", (start,))
            rows, low = conn.execute("SELECT COUNT(*), MIN(id) FROM main.reviews").fetchone()
        finally:
            conn.close()
        if rows and low <= above_id:
            raise SnapshotError(f"delta starts at id {low}, not above the base's {above_id}")
        integrity_check(tmp)  # small: the delta is bounded by worker.tree's REBASE_FRACTION
        return int(rows)

    return atomic_write(dest, write, mode=0o600)


def _columns(conn: sqlite3.Connection, schema: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info(reviews)")]


def _insert_delta(conn: sqlite3.Connection, delta_db: Path, base_max_id: int) -> int:
    """Insert the delta's rows into `conn`'s reviews (a staged copy, never the live db)
    in one transaction; the triggers bring totals and counters along. Refuses a delta
    that does not start right above the base. Columns are matched by position: the
    base may have been migrated since (a renamed column keeps its place)."""
    integrity_check(delta_db)  # small: every page of it
    with attached(conn, "delta", delta_db):
        have = conn.execute("SELECT COALESCE(MAX(id), 0) FROM main.reviews").fetchone()[0]
        low, count = conn.execute("SELECT MIN(id), COUNT(*) FROM delta.reviews").fetchone()
        if have != base_max_id:
            raise SnapshotError(f"the base ends at id {have}, the manifest says {base_max_id}")
        if count and low <= base_max_id:
            raise SnapshotError(f"the delta starts at id {low}, not above the base's highest id {base_max_id}")
        ours, theirs = _columns(conn, "main"), _columns(conn, "delta")
        # A delta made before a migration that added columns (at the end) fills the first ones;
        # the new ones take their defaults, as the migration gave the base's rows.
        if len(theirs) > len(ours) or not theirs:
            raise SnapshotError(f"the delta's columns {theirs} do not match the base's {ours}")
        ours = ours[:len(theirs)]
        with transaction(conn):
            conn.execute(f"INSERT INTO main.reviews ({', '.join(ours)}) "
                         f"SELECT {', '.join(theirs)} FROM delta.reviews ORDER BY {theirs[0]}")
    return int(count)


def apply_delta(base_db: Path, delta_db: Path, *, base_max_id: int) -> int:
    """`_insert_delta` on a database file. Returns the rows added."""
    conn = connect(base_db, wal=False)
    try:
        return _insert_delta(conn, delta_db, base_max_id)
    finally:
        conn.close()


def apply_delta_conn(conn: sqlite3.Connection, delta_db: Path, manifest: BackupManifest) -> None:
    """Restore side, last step on the staged copy: add the delta's reviews (when the
    backup has any), then check the result holds what the manifest says."""
    if manifest.base_max_id is None:
        return  # a backup made before the incremental layout: the db holds everything
    if manifest.max_id > manifest.base_max_id:
        if not delta_db.exists():
            raise SnapshotError(f"backup {manifest.revision}: the db holds ids up to {manifest.base_max_id}, "
                                f"its {delta_db.name} (up to {manifest.max_id}) is missing")
        _insert_delta(conn, delta_db, manifest.base_max_id)
    got = read_summary(conn)
    if manifest.fingerprint and got.fingerprint != manifest.fingerprint:
        raise SnapshotError(f"backup {manifest.revision}: db + delta hold {got.fingerprint}, "
                            f"its manifest says {manifest.fingerprint}")
