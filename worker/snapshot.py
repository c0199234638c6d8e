"""A consistent copy of the live database, made with SQLite's online backup API.

`shutil.copyfile` (the seed) can copy a page mid-write and misses the -wal
file, where recent commits live. The backup API copies a single consistent
state. It runs in one step (`pages=-1`): a stepwise backup restarts each time
the web writes between steps, and under steady load it never finishes.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from shared.db import Summary, connect, read_summary
from worker.errors import WorkerError

log = logging.getLogger("worker.snapshot")


class SnapshotError(WorkerError):
    """The snapshot is unusable (failed integrity check, unreadable, not writable)."""

    defect = True  # read from a backup: that backup cannot be restored, restore tries an older one


@dataclass(frozen=True)
class Snapshot:
    """A checked copy and what it holds, read while it was checked: nobody re-opens it to ask."""

    path: Path
    summary: Summary
    seconds: float
    tip: str | None = None  # created_at of the row with the highest id (see BackupManifest.tip)

    def created_at(self, row_id: int) -> str | None:
        """created_at of one row; the tip is known, any other row costs one read."""
        if row_id == self.summary.max_id:
            return self.tip
        return _created_at(self.path, row_id)

    def tombstoned(self, upto: int) -> tuple[int, int, bool]:
        """(rows, tombstones) with an id up to `upto`, and whether id `upto` itself is a tombstone:
        rows + tombstones up to an id only grow while reviews are only added or deleted on
        purpose (the never-fewer guard, worker.backup)."""
        conn = connect(self.path, readonly=True)
        try:
            rows = conn.execute("SELECT COUNT(*) FROM reviews WHERE id <= ?", (upto,)).fetchone()[0]
            try:
                dead = conn.execute("SELECT COUNT(*) FROM tombstones WHERE review_id <= ?", (upto,)).fetchone()[0]
                top = conn.execute("SELECT 1 FROM tombstones WHERE review_id = ?", (upto,)).fetchone() is not None
            except sqlite3.OperationalError:  # a database from before tombstones
                dead, top = 0, False
        finally:
            conn.close()
        return int(rows), int(dead), top


def _created_at(path: Path, row_id: int, conn: sqlite3.Connection | None = None) -> str | None:
    own = conn is None
    conn = conn or connect(path, readonly=True)
    try:
        row = conn.execute("SELECT created_at FROM reviews WHERE id = ?", (row_id,)).fetchone()
    finally:
        if own:
            conn.close()
    return str(row[0]) if row else None


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path.name}: not a readable database ({exc})") from exc
    if rows != [("ok",)]:
        detail = "; ".join(str(r[0]) for r in rows[:5])
        raise SnapshotError(f"{path.name}: integrity_check failed: {detail}")


def integrity_check(path: Path) -> None:
    """Raise SnapshotError unless `PRAGMA integrity_check` says ok."""
    try:
        conn = connect(path, readonly=True)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path.name}: not a readable database ({exc})") from exc
    try:
        _check(conn, path)
    finally:
        conn.close()


def take_snapshot(db_path: Path, dest: Path) -> Snapshot:
    """Copy `db_path` into `dest` (a self-contained file, no -wal), checked."""
    started = time.monotonic()
    dest.unlink(missing_ok=True)
    src = connect(db_path)
    try:
        dst = connect(dest, wal=False)
        try:
            src.backup(dst, pages=-1)
            # The copy inherits WAL mode; a backup must be a single file.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
        # The read transaction of the backup kept the WAL from being reset;
        # checkpoint now so journal_size_limit can shrink it. PASSIVE never
        # blocks the web's writers.
        src.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError as exc:
        dest.unlink(missing_ok=True)
        free_mb = shutil.disk_usage(dest.parent).free // (1024 * 1024)
        raise SnapshotError(f"could not write the snapshot to {dest.parent}: {exc} "
                            f"(disk full or write limit? free_mb={free_mb}); the last good backup is kept") from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    try:
        # One connection for the check and for what the snapshot holds.
        conn = connect(dest, readonly=True)
        try:
            _check(conn, dest)
            summary = read_summary(conn)
            tip = _created_at(dest, summary.max_id, conn)
        finally:
            conn.close()
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return Snapshot(path=dest, summary=summary, seconds=time.monotonic() - started, tip=tip)
