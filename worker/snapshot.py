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


@dataclass(frozen=True)
class Snapshot:
    path: Path
    summary: Summary
    seconds: float


def integrity_check(path: Path) -> None:
    """Raise SnapshotError unless `PRAGMA integrity_check` says ok."""
    try:
        conn = connect(path, readonly=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path.name}: not a readable database ({exc})") from exc
    if rows != [("ok",)]:
        detail = "; ".join(str(r[0]) for r in rows[:5])
        raise SnapshotError(f"{path.name}: integrity_check failed: {detail}")


def take_snapshot(db_path: Path, dest: Path) -> Snapshot:
    """Copy `db_path` into `dest` (a self-contained file, no -wal), checked."""
    started = time.monotonic()
    dest.unlink(missing_ok=True)
    src = connect(db_path)
    try:
        dst = sqlite3.connect(dest, isolation_level=None)
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
        integrity_check(dest)
        conn = connect(dest, readonly=True)
        try:
            summary = read_summary(conn)
        finally:
            conn.close()
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return Snapshot(path=dest, summary=summary, seconds=time.monotonic() - started)
