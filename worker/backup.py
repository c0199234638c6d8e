"""One backup run: mirror (new rows, or a full snapshot) -> backup files -> publish.

The cost of a run follows the new reviews (see worker.mirror and worker.tree):
the mirror copies the rows above its highest id, the tree rewrites the delta
and the shards they land in, and the target receives what it lacks. Any change
that is not "new rows on top" makes a full run (`--full` asks for one).

Before publishing, the run learns what the target's newest backup holds
(rows, highest id and that row's time, recorded with every backup) and
refuses to publish a database that lacks any of it: a fresh, emptier
database must never become the newest backup. Two ways past that guard:
- a worker that started on a fresh disk while the target was unreachable
  merges the newest backup in first (`pending_merge`, see `worker.merge`);
- ops say so explicitly: `python -m worker publish --allow-fewer`.

The files of a run are kept in `backups/.mirror/tree/`; when publishing
fails they stay there (the newest backup is on disk until a push succeeds),
and the next run sends the target everything its newest backup lacks.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from typing import Callable

from shared import utc
from shared.config import Config
from shared.db import connect, read_summary
from worker.errors import WorkerError
from worker.lock import worker_lock
from worker.manifest import BackupManifest
from worker.fsutil import write_text_atomic
from worker.merge import merge_newest_backup
from worker.mirror import MIRROR_DIR, Mirror
from worker.restore import apply_tombstones
from worker.snapshot import Snapshot
from worker.privacy import KEEP
from worker.state import TargetState, load_state, update_target
from worker.targets import Target
from worker.tree import Tree

log = logging.getLogger("worker.backup")

PUBLISHING_DIR = ".publishing"  # a frozen copy of the tree per target, while that target publishes
# How many tombstones a target's older copies have been cleaned of (see _erase_older_copies).
ERASED_FILE = ".erased-{slug}"


def _tombstones(snap: Snapshot) -> list[tuple[int, str]]:
    conn = connect(snap.path, readonly=True)
    try:
        return conn.execute("SELECT review_id, deleted_at FROM tombstones").fetchall()
    finally:
        conn.close()


class BackupConflict(WorkerError):
    """Publishing would drop reviews that the newest backup holds."""

    permanent = True  # retrying soon cannot help: ops must choose restore --force or publish --allow-fewer


@dataclass(frozen=True)
class Outcome:
    published: BackupManifest | None  # None: nothing changed, nothing published
    rows: int
    cycle: str = "none"  # "full" | "rebase" | "append" | "same" (what the backup files needed)


class Backup:
    """One target's backup run. Every target has its own Backup (and its own state,
    backoff and cadence in the loop); they share the mirror, and a tree per names
    rule (a public dataset with names blanked and the owner's bucket with names kept
    do not rebuild each other's files)."""

    def __init__(self, config: Config, target: Target, *, now: Callable[[], str] = utc.iso):
        """`now`: the UTC time a backup records as made (a bench or a test dates backups on other days)."""
        self.config = config
        self.target = target
        self.now = now
        self.work_dir = config.backups_dir / ".work"  # before the mirror: removed when found
        self.mirror = Mirror(config.backups_dir / MIRROR_DIR)
        self.tree = Tree(self.mirror)

    def _tree_for(self, names: str) -> Tree:
        return self.tree if names == KEEP else Tree(self.mirror, variant=names)

    def run(self, *, force: bool = False, allow_fewer: bool = False, full: bool = False) -> Outcome:
        """`force`: publish even when the target holds this data; `full`: a full
        snapshot and every file rewritten, whatever the mirror says.

        The worker lock (the live db's mirror, the trees, the state) is held only while
        the files are made; the target's requests (what it holds, the upload) run under
        this target's own publish lock, so a slow Hub never holds back the copy on a mount."""
        with worker_lock(self.config.data_dir, self._publish_lock):  # one publisher per target, any process
            return self._run(force=force, allow_fewer=allow_fewer, full=full)

    @property
    def _publish_lock(self) -> str:
        return f"publish-{self._slug}.lock"

    @property
    def _slug(self) -> str:
        return hashlib.sha1(self.target.name.encode()).hexdigest()[:12]

    def _run(self, *, force: bool, allow_fewer: bool, full: bool = False) -> Outcome:
        with worker_lock(self.config.data_dir):
            state = load_state(self.config.state_path).target(self.target.name)
            if state.pending_merge:
                merge_newest_backup(self.config, self.target)  # raises while the target is unreachable
                state = update_target(self.config, self.target.name, pending_merge=False)
            ours = state.last_published
            live = connect(self.config.db_path, readonly=True)
            try:
                current = read_summary(live)
            finally:
                live.close()
        # No reviews, no backup: a revision with no rows cannot be loaded
        # ("corresponds to no data") and holds nothing worth restoring.
        # Also with --allow-fewer: an empty revision would be the one that cannot be read.
        if current.total == 0:
            log.debug("no reviews yet, nothing published target=%s", self.target.name)
            return Outcome(published=None, rows=0)
        # No change since our last backup: no snapshot, no request to the target.
        if ours is not None and ours.fingerprint == current.fingerprint and not (force or full):
            log.debug("no change since last backup, nothing published rows=%d target=%s",
                      current.total, self.target.name)
            return Outcome(published=None, rows=current.total)

        started = time.monotonic()
        newest = self.target.newest()  # a request to the Hub: outside the worker lock
        frozen_dir = self.config.backups_dir / PUBLISHING_DIR / self._slug
        with worker_lock(self.config.data_dir):
            self._clear_work()
            refresh = self.mirror.refresh(self.config.db_path, full=full)
            snap = refresh.snapshot()
            if newest is not None and newest.fingerprint == snap.summary.fingerprint and not (force or full):
                log.debug("target already holds this data, nothing published rows=%d target=%s",
                          snap.summary.total, self.target.name)
                self._remember(state, newest)
                return Outcome(published=None, rows=snap.summary.total, cycle=refresh.kind)
            if newest is not None and not allow_fewer:
                self._guard(snap, newest)
            names = self.target.names_policy()  # may refuse: a public dataset with no choice about names
            # The db, the CSV and the Parquet shards all come from the mirror, names withheld alike.
            tree = self._tree_for(names)
            update = tree.update(refresh, names=names)
            manifest = tree.manifest(snap, at=self.now())
            frozen = tree.freeze(frozen_dir)  # what this target sends, whatever the next cycle rewrites
            tombstones = _tombstones(snap)
        try:
            info = self.target.publish(frozen, manifest, snap.summary, names=names,
                                       previous_rows=newest.rows if newest is not None else None)
        finally:
            shutil.rmtree(frozen_dir, ignore_errors=True)
        self._remember(state, info)
        self._erase_older_copies(tombstones)
        log.info("backup published rows=%d max_id=%d target=%s location=%s revision=%s cycle=%s new_rows=%d "
                 "files_rewritten=%d mirror_s=%.2f files_s=%.2f total_s=%.2f reason=%s", info.rows, info.max_id,
                 self.target.name, info.location, info.revision, update.kind, refresh.new_rows, len(update.changed),
                 refresh.seconds, update.seconds, time.monotonic() - started, refresh.reason or "-")
        return Outcome(published=info, rows=info.rows, cycle=update.kind)

    def _guard(self, snap: Snapshot, newest: BackupManifest) -> None:
        """Raise BackupConflict unless the snapshot holds everything the newest backup holds,
        but for reviews the owner deleted on purpose (tombstones, shared.moderation.delete).

        Each review up to the backup's highest id is, in the snapshot, either still a row or a
        tombstone: rows + tombstones up to that id can only be equal or more. A row lost by
        accident (a hand edit, a wrong file) leaves no tombstone and is refused."""
        lacking = snap.summary.total < newest.rows or snap.summary.max_id < newest.max_id
        if lacking and newest.max_id > 0:
            rows, dead, top_deleted = snap.tombstoned(newest.max_id)
            lacking = rows + dead < newest.rows + (newest.tombstones or 0) or (
                snap.summary.max_id < newest.max_id and not top_deleted)
        if not lacking and newest.tip is not None and newest.max_id > 0:
            # Same history: the backup's last row is ours too, with the same time (or deleted on purpose).
            lacking = snap.created_at(newest.max_id) != newest.tip and not snap.tombstoned(newest.max_id)[2]
        if lacking:
            raise BackupConflict(
                f"not publishing: the local database (rows={snap.summary.total} max_id={snap.summary.max_id}) "
                f"lacks reviews that the newest backup at {self.target.name} holds (rows={newest.rows} "
                f"max_id={newest.max_id} revision={newest.revision}). To take the backup: "
                "`python -m worker restore --force`; to publish the local database anyway: "
                "`python -m worker publish --allow-fewer`")

    def _erase_older_copies(self, tombstones: list[tuple[int, str]]) -> None:
        """After a backup that holds the owner's newest deletes (`tombstones`, read from the
        snapshot it was made from), the older copies that may still hold those reviews go: a
        folder target's older backups (`erase_reviews`: the local folder and a mounted bucket
        alike) and the databases kept aside by `restore --force`. Done once per new tombstone:
        the count handled per target is kept in backups/ERASED_FILE."""
        marker = self.config.backups_dir / ERASED_FILE.format(slug=self._slug)
        try:
            done = int(marker.read_text(encoding="utf-8").strip() or 0)
        except (FileNotFoundError, ValueError):
            done = 0
        ids = {t[0] for t in tombstones}
        if not ids or len(ids) == done:
            return
        erase = getattr(self.target, "erase_reviews", None)
        if erase is not None:
            erase(ids)
        for kept in self.config.data_dir.glob(self.config.db_path.name + ".pre-restore-*"):
            if not kept.name.endswith(("-wal", "-shm", "-journal")):
                apply_tombstones(kept, tombstones)
        write_text_atomic(marker, f"{len(ids)}\n", mode=0o600)

    def _remember(self, state: TargetState, info: BackupManifest) -> None:
        if state.last_published != info:
            update_target(self.config, self.target.name, last_published=info, last_attempt_at=utc.iso())

    def _clear_work(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
