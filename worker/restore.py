"""Restore: bring a backup back into the live database, safely.

- The downloaded copy must pass `integrity_check` before it touches anything.
- It goes into the live database with the backup API in one step: a single
  write transaction, so the web (which may have the file open) sees the old
  data or the new, never a mix, and no -wal file is orphaned. Renaming a file
  over a database that another process has open would not be safe.
- A non-empty database is never overwritten without `force`; with it, a
  timestamped copy of the old one is kept first.
- It carries only the schema we create (`worker.schema_guard`): a foreign
  trigger or view in a backup is dropped, and logged, before it goes live.
- When the newest backup is unusable (not SQLite, fails its checks, a table
  of ours with other columns), restore walks back to the newest revision
  that passes, logging each one it skipped and why. A backup that cannot be
  reached (network) is not skipped: that is an outage, not a bad backup.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shared import utc
from shared.config import Config
from shared.db import Summary, connect, ensure_schema, read_summary, transaction
from shared.moderation import erase_traces
from shared.logs import q
from worker.errors import WorkerError, is_backup_defect
from worker.fsutil import replace_durably
from worker.lock import worker_lock
from worker.schema_guard import guard_and_migrate
from worker.snapshot import SnapshotError, integrity_check
from worker.manifest import BackupManifest
from worker.targets import Target
from worker.tree import DELTA_FILE, apply_delta_conn

log = logging.getLogger("worker.restore")


class RestoreRefused(WorkerError):
    """Restoring would overwrite reviews and --force was not given."""

    permanent = True  # ops must choose: --force


class NoBackup(FileNotFoundError):
    """The target holds no backup to restore."""




def local_review_count(db_path: Path) -> int:
    """Reviews in the local database; 0 when it is missing or has no table yet."""
    if not db_path.exists():
        return 0
    conn = connect(db_path, readonly=True)
    try:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
    finally:
        conn.close()


def local_tombstones(db_path: Path) -> list[tuple[int, str]]:
    """(review id, deleted at) of every review deleted on purpose in the local database."""
    if not db_path.exists():
        return []
    conn = connect(db_path, readonly=True)
    try:
        try:
            return conn.execute("SELECT review_id, deleted_at FROM tombstones").fetchall()
        except sqlite3.OperationalError:
            return []  # no such table yet: nothing was ever deleted through moderation
    finally:
        conn.close()


def apply_tombstones(staged_db: Path, tombstones: list[tuple[int, str]]) -> int:
    """Delete the tombstoned reviews from a staged (downloaded, migrated) copy and record the
    tombstones in it, their text erased from its pages (shared.moderation); the rows removed."""
    if not tombstones:
        return 0
    conn = connect(staged_db)
    try:
        ensure_schema(conn)  # a copy kept aside before a migration has no tombstones table yet
        conn.execute("PRAGMA secure_delete = ON")
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO tombstones (review_id, deleted_at) VALUES (?, ?)", tombstones)
            removed = conn.execute("DELETE FROM reviews WHERE id IN (SELECT review_id FROM tombstones)").rowcount
        if removed:
            erase_traces(conn)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return removed


def _copy_db(src: sqlite3.Connection, dest_path: Path) -> None:
    dest = connect(dest_path, wal=False)
    try:
        src.backup(dest, pages=-1)
    finally:
        dest.close()


@contextmanager
def staging_dir(path: Path) -> Iterator[Path]:
    """An empty folder for a download, removed afterwards whatever happens."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fetch_checked(target: Target, staging: Path, revision: str | None = None, *,
                  dropped: list[str] | None = None) -> tuple[Path, BackupManifest, Summary]:
    """Download a backup (the newest, or `revision`) into `staging`, check it, migrate it.

    Nothing touches the live database before this returns: the copy passed
    `integrity_check`, its schema is brought up to date and it is in WAL mode
    like the live db (the backup API needs equal page sizes and journal kinds),
    and any schema object we do not create is gone (appended to `dropped`).
    Raises NoBackup when the target holds none, an error `is_backup_defect` says so of when it is unusable."""
    try:
        fetched, info = target.fetch(staging, revision)
    except FileNotFoundError as exc:
        raise NoBackup(str(exc)) from exc
    if info.base_sha256 is None:
        integrity_check(fetched)
    # else the target checked that the download is byte for byte the base that passed
    # integrity_check when it was made (worker.tree.verify_base): a second pass over
    # every page would double the restore time of a large db.
    source = info.revision or revision or "newest"
    staged = connect(fetched)
    try:
        removed = guard_and_migrate(staged, source=source)
        # The reviews since the base go in last, once only our own triggers are left to fire.
        apply_delta_conn(staged, staging / DELTA_FILE, info)
        summary = read_summary(staged)
    finally:
        staged.close()
    if dropped is not None:
        dropped.extend(removed)
    return fetched, info, summary


def fetch_newest_usable(target: Target, staging: Path) -> tuple[Path, BackupManifest, Summary]:
    """fetch_checked on the newest backup, else on the next older one that passes, and so on."""
    try:
        return fetch_checked(target, staging / "newest")
    except Exception as exc:  # the error policy decides: a defect is skipped, an outage raised
        if not is_backup_defect(exc):
            raise
        first_cause = exc
    older = backup_revisions(target)
    newest = older[0] if older else "newest"
    log.error("skipped backup revision=%s cause=%s; trying older revisions", q(newest), q(first_cause))
    for i, revision in enumerate(older[1:], start=1):
        try:
            fetched, info, summary = fetch_checked(target, staging / f"older-{i}", revision)
        except Exception as exc:  # as above: the error policy decides
            if not is_backup_defect(exc):
                raise
            log.error("skipped backup revision=%s cause=%s", q(revision), q(exc))
            continue
        log.warning("restoring an older backup: the %d newer one(s) failed their checks revision=%s rows=%d",
                    i, q(revision), summary.total)
        return fetched, info, summary
    raise SnapshotError(f"no backup in {target.name} passes the checks (newest: {first_cause})")


def backup_revisions(target: Target) -> list[str]:
    """Every revision that may hold a backup, newest first (the head first, whoever made it)."""
    return [entry.revision for entry in target.history(every_commit=True)]


def restore(config: Config, target: Target, *, revision: str | None = None, force: bool = False) -> BackupManifest:
    with worker_lock(config.data_dir):
        return restore_locked(config, target, revision=revision, force=force)


def restore_locked(config: Config, target: Target, *, revision: str | None = None,
                   force: bool = False) -> BackupManifest:
    db_path = config.db_path
    existing = local_review_count(db_path)
    if existing and not force:
        raise RestoreRefused(
            f"{db_path} already holds {existing} reviews; restore would replace them. "
            "Run again with --force to replace it (a copy of the current database is kept).")
    with staging_dir(config.data_dir / ".restore") as staging:
        if revision:  # asked for by name: that one or nothing
            fetched, info, restored = fetch_checked(target, staging, revision)
        else:
            fetched, info, restored = fetch_newest_usable(target, staging)
        # Reviews the owner deleted here stay deleted, whatever the backup holds (an older one).
        dropped = apply_tombstones(fetched, local_tombstones(db_path))
        if dropped:
            log.warning("restore left out reviews deleted here on purpose count=%d", dropped)
        if not db_path.exists():
            _move_into_place(fetched, db_path)
        else:
            _copy_into_live(fetched, db_path, existing)
    log.info("restored backup rows=%d max_id=%d from=%s revision=%s", restored.total, restored.max_id,
             target.name, info.revision or "newest")
    return info


def _move_into_place(fetched: Path, db_path: Path) -> None:
    """No database yet, so nobody has it open (the web waits for the worker at
    start): a rename is atomic and costs nothing, even for a large backup."""
    for suffix in ("-wal", "-shm"):  # a stray -wal would be replayed into the new file
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    replace_durably(fetched, db_path)


def _copy_into_live(fetched: Path, db_path: Path, existing: int) -> None:
    """Over an existing database the web may have open: one backup-API step,
    a single write transaction, after keeping a copy of what is replaced."""
    live = connect(db_path)
    try:
        if existing:
            keep = db_path.with_name(f"{db_path.name}.pre-restore-{utc.stamp()}")
            _copy_db(live, keep)
            log.warning("kept a copy of the database being replaced path=%s reviews=%d", keep, existing)
        src = connect(fetched, readonly=True)
        try:
            src.backup(live, pages=-1)  # one step: atomic for every reader
        finally:
            src.close()
    finally:
        live.close()


def move_aside_if_corrupt(db_path: Path) -> Path | None:
    """A local database that fails its check is moved aside (never deleted) and logged loudly."""
    if not db_path.exists():
        return None
    try:
        integrity_check(db_path)
        return None
    except SnapshotError as exc:
        cause = str(exc)
    aside = db_path.with_name(f"{db_path.name}.corrupt-{utc.stamp()}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(db_path) + suffix)
        if part.exists():
            part.rename(Path(str(aside) + suffix))
    log.critical("local database is corrupt, moved aside path=%s cause=%s; restoring the newest backup",
                 aside, cause)
    return aside
