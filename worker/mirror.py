"""A copy of the live database kept up to date by appending only the new reviews.

A full snapshot (`worker.snapshot.take_snapshot`) copies every page of the
live database: ~7 s with its integrity check at 10M reviews. The mirror is
such a snapshot kept between runs in `backups/.mirror/reviews.db`; each run
copies only the rows above the mirror's highest id, in ONE transaction on
the mirror that reads the live database through ATTACH, so what it copies is
one consistent point in time of the live database (WAL snapshot isolation).

That is only right when everything that happened to the live database since
the mirror was made is "new rows appended above the old highest id". The
write counter kept by the triggers (`meta.changes`) tells: every insert,
update and delete adds 1, so
    live.changes - mirror.changes == live.rows - mirror.rows == rows above mirror.max_id
holds exactly when every write was such an insert. A restore --force, a merge
after a split brain or an owner's edit breaks it and the run falls back to a
full snapshot. Belt and braces: same schema (user_version and sqlite_master),
the mirror's last row unchanged in the live db (a replaced database whose
counters happen to line up), and after the copy the mirror's totals equal
the live ones, or the copy is rolled back.

The mirror uses a rollback journal (a single self-contained file, like every
snapshot): a crash mid-append leaves it at the previous state.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared import utc
from shared.db import BACKUP_COLUMNS, Summary, attached, connect, read_summary, transaction
from worker.errors import WorkerError
from worker.fsutil import replace_durably, write_text_atomic
from worker.snapshot import Snapshot, SnapshotError, _created_at, integrity_check, take_snapshot

log = logging.getLogger("worker.mirror")

# A full snapshot at least this often, changes or not: it is what sees a change made
# behind the triggers' back (which keeps the counters consistent), and it starts a
# new lineage, so every file is rewritten and re-checked from the live database.
FULL_SNAPSHOT_SECONDS = 7 * 86_400.0
MIRROR_DIR = ".mirror"
MIRROR_FILE = "reviews.db"
LINEAGE_FILE = "lineage"


@dataclass(frozen=True)
class Refresh:
    """What one refresh did."""

    path: Path
    summary: Summary        # the mirror now: equal to the live database at one point in time
    kind: str               # "full" (snapshot of every page), "append" (new rows only) or "same" (nothing new)
    lineage: str            # changes with every full snapshot: equal lineage = only rows appended since
    new_rows: int           # rows copied by an append; the whole table for "full"
    reason: str             # why a full snapshot was needed ("" for append/same)
    seconds: float

    def snapshot(self) -> Snapshot:
        """The mirror as a Snapshot (what the "never publish fewer" guard reads)."""
        tip = _created_at(self.path, self.summary.max_id) if self.summary.max_id else None
        return Snapshot(path=self.path, summary=self.summary, seconds=self.seconds, tip=tip)


class NotAppendOnly(WorkerError):
    """The live database changed in another way than new rows on top (caught: a full snapshot follows)."""


def _open_mirror(path: Path) -> sqlite3.Connection:
    # Not WAL: the mirror must stay a single file that can be copied or published as it is.
    return connect(path, wal=False)


def _schema(conn: sqlite3.Connection, schema: str) -> list[tuple]:
    return conn.execute(f"SELECT type, name, tbl_name, sql FROM {schema}.sqlite_master "
                        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()


def _erase_deleted_traces(path: Path) -> None:
    """A snapshot of a database that has tombstones may have been taken between a delete and
    the end of its erasure (shared.moderation.erase_traces): the FTS index's old segments then
    still hold the deleted reviews' words. Merged here, on our private copy, with freed pages
    zeroed, before any backup file is made from it (~1 s at 1M reviews; only when there are
    tombstones). The reviews and their counters are untouched: same fingerprint."""
    conn = _open_mirror(path)
    try:
        try:
            if conn.execute("SELECT 1 FROM tombstones LIMIT 1").fetchone() is None:
                return
        except sqlite3.OperationalError:
            return  # a database from before tombstones
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO reviews_fts (reviews_fts) VALUES ('optimize')")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


class Mirror:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / MIRROR_FILE
        self.lineage_path = folder / LINEAGE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def lineage(self) -> str:
        try:
            return self.lineage_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""

    def summary(self) -> Summary:
        conn = _open_mirror(self.path)
        try:
            return read_summary(conn)
        finally:
            conn.close()

    def refresh(self, live_db: Path, *, full: bool = False, now: float | None = None) -> Refresh:
        """Bring the mirror to the live database's current state: by appending when
        that is provably enough, else by a full snapshot."""
        started = time.monotonic()
        now = time.time() if now is None else now
        reason = "asked for a full snapshot" if full else ""
        if not reason and not (self.path.exists() and self.lineage()):
            reason = "no mirror yet"
        if not reason and now - self.lineage_path.stat().st_mtime > FULL_SNAPSHOT_SECONDS:
            reason = f"the weekly full snapshot (every {FULL_SNAPSHOT_SECONDS / 86400:.0f} days)"
        if not reason:
            try:
                summary, new_rows = self._append(live_db)
                kind = "append" if new_rows else "same"
                return Refresh(self.path, summary, kind, self.lineage(), new_rows, "", time.monotonic() - started)
            except NotAppendOnly as exc:
                reason = str(exc)
            except (sqlite3.DatabaseError, SnapshotError) as exc:
                reason = f"mirror unusable: {exc}"
        summary = self._rebuild(live_db)
        log.info("mirror rebuilt from a full snapshot rows=%d reason=%s", summary.total, reason)
        return Refresh(self.path, summary, "full", self.lineage(), summary.total, reason, time.monotonic() - started)

    def _rebuild(self, live_db: Path) -> Summary:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.folder / (MIRROR_FILE + ".tmp")
        snap = take_snapshot(live_db, tmp)  # backup API + integrity_check
        _erase_deleted_traces(tmp)
        # The new lineage is written BEFORE the new mirror replaces the old one: a
        # crash in between leaves an old mirror under a new name (costs a full
        # export next time), never a new mirror under the old name (which would
        # let stale CSV/Parquet shards pass for an append-only history).
        lineage = f"{utc.stamp()}-{uuid.uuid4().hex[:12]}\n"
        write_text_atomic(self.lineage_path, lineage, mode=0o600)
        Path(str(self.path) + "-journal").unlink(missing_ok=True)
        os.chmod(tmp, 0o600)  # the reviews: ours only, whatever the umask of the command
        replace_durably(tmp, self.path)
        return snap.summary

    def _append(self, live_db: Path) -> tuple[Summary, int]:
        conn = _open_mirror(self.path)
        try:
            with attached(conn, "live", live_db):
                # IMMEDIATE: the mirror's write lock first; the first read of `live`
                # then fixes the live database's point in time for the whole transaction.
                with transaction(conn):
                    new_rows = self._append_in_txn(conn)
                    summary = read_summary(conn)
        finally:
            conn.close()
        return summary, new_rows

    def _append_in_txn(self, conn: sqlite3.Connection) -> int:
        # The versions first: the totals are read with the current schema's columns.
        if conn.execute("PRAGMA live.user_version").fetchone() != conn.execute("PRAGMA main.user_version").fetchone():
            raise NotAppendOnly("the live schema version changed (a migration)")
        live = read_summary(conn, "live")
        ours = read_summary(conn)
        if live == ours:
            return 0
        if _schema(conn, "live") != _schema(conn, "main"):
            raise NotAppendOnly("the live schema changed")
        cols = ", ".join(BACKUP_COLUMNS)
        above = conn.execute("SELECT COUNT(*) FROM live.reviews WHERE id > ?", (ours.max_id,)).fetchone()[0]
        if not (live.total - ours.total == above and live.changes - ours.changes == above and above > 0):
            raise NotAppendOnly(f"not only new rows since the mirror (rows {ours.total}->{live.total}, "
                                f"changes {ours.changes}->{live.changes}, rows above id {ours.max_id}: {above})")
        if ours.max_id:
            tip_live = conn.execute(f"SELECT {cols} FROM live.reviews WHERE id = ?", (ours.max_id,)).fetchone()
            tip_ours = conn.execute(f"SELECT {cols} FROM main.reviews WHERE id = ?", (ours.max_id,)).fetchone()
            if tip_live != tip_ours:
                raise NotAppendOnly(f"the row with id {ours.max_id} differs from the mirror's (a replaced database)")
        conn.execute(f"INSERT INTO main.reviews ({cols}) SELECT {cols} FROM live.reviews WHERE id > ? ORDER BY id",
                     (ours.max_id,))
        # AUTOINCREMENT's high-water mark: a restore must hand out the same next id.
        conn.execute("UPDATE main.sqlite_sequence SET seq = (SELECT seq FROM live.sqlite_sequence "
                     "WHERE name = 'reviews') WHERE name = 'reviews'")
        after = read_summary(conn)
        if after != live:
            raise NotAppendOnly(f"after the copy the mirror's totals differ from the live ones ({after} vs {live})")
        return above

    def check(self) -> None:
        """The fuller check: `PRAGMA integrity_check` over every page (O(table))."""
        integrity_check(self.path)
