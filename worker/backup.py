"""One backup run: snapshot -> integrity check -> CSV from the snapshot -> publish.

Before publishing, the run learns what the target's newest backup holds
(rows, highest id and that row's time, recorded with every backup) and
refuses to publish a database that lacks any of it: a fresh, emptier
database must never become the newest backup. Two ways past that guard:
- a worker that started on a fresh disk while the target was unreachable
  merges the newest backup in first (`pending_merge`, see `worker.merge`);
- ops say so explicitly: `python -m worker publish --allow-fewer`.

The files of a run are staged in `backups/.work/`; when publishing fails
they stay there (the newest snapshot is on disk until a push succeeds).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from shared.config import Config
from shared.csv_export import write_reviews_csv
from shared.db import connect, read_summary
from worker.errors import WorkerError
from worker.lock import worker_lock
from worker.manifest import BackupManifest, utc_now_iso
from worker.merge import merge_newest_backup
from worker.snapshot import Snapshot, take_snapshot
from worker.state import WorkerState, load_state, update_state
from worker.targets import Target

log = logging.getLogger("worker.backup")


class BackupConflict(WorkerError):
    """Publishing would drop reviews that the newest backup holds."""

    permanent = True  # retrying soon cannot help: ops must choose restore --force or publish --allow-fewer


@dataclass(frozen=True)
class Outcome:
    published: BackupManifest | None  # None: nothing changed, nothing published
    rows: int


class Backup:
    def __init__(self, config: Config, target: Target):
        self.config = config
        self.target = target
        self.work_dir = config.backups_dir / ".work"

    def run(self, *, force: bool = False, allow_fewer: bool = False) -> Outcome:
        with worker_lock(self.config.data_dir):
            return self._run_locked(force=force, allow_fewer=allow_fewer)

    def _run_locked(self, *, force: bool, allow_fewer: bool) -> Outcome:
        state = load_state(self.config.state_path)
        if state.pending_merge:
            merge_newest_backup(self.config, self.target)  # raises while the target is unreachable
            state = update_state(self.config, pending_merge=False)
        ours = state.last_published if state.target == self.target.name else None
        live = connect(self.config.db_path, readonly=True)
        try:
            current = read_summary(live)
        finally:
            live.close()
        # No change since our last backup: no snapshot, no request to the target.
        if ours is not None and ours.fingerprint == current.fingerprint and not force:
            log.debug("no change since last backup, nothing published rows=%d target=%s",
                      current.total, self.target.name)
            return Outcome(published=None, rows=current.total)

        self.work_dir.mkdir(parents=True, exist_ok=True)
        snap = take_snapshot(self.config.db_path, self.work_dir / "reviews.db")
        newest = self.target.newest()
        if newest is not None and newest.fingerprint == snap.summary.fingerprint and not force:
            log.debug("target already holds this data, nothing published rows=%d target=%s",
                      snap.summary.total, self.target.name)
            self._clear_work()
            self._remember(state, newest)
            return Outcome(published=None, rows=snap.summary.total)
        if newest is not None and not allow_fewer:
            self._guard(snap, newest)
        csv_path = self.work_dir / "reviews.csv"
        write_reviews_csv(snap.path, csv_path)
        info = self.target.publish(snap, csv_path, BackupManifest.for_snapshot(snap))
        self._remember(state, info)
        self._clear_work()
        log.info("backup published rows=%d max_id=%d target=%s location=%s revision=%s snapshot_s=%.2f",
                 info.rows, info.max_id, self.target.name, info.location, info.revision, snap.seconds)
        return Outcome(published=info, rows=info.rows)

    def _guard(self, snap: Snapshot, newest: BackupManifest) -> None:
        """Raise BackupConflict unless the snapshot holds everything the newest backup holds."""
        lacking = snap.summary.total < newest.rows or snap.summary.max_id < newest.max_id
        if not lacking and newest.tip is not None and newest.max_id > 0:
            # Same history: the backup's last row is ours too, with the same time.
            lacking = snap.created_at(newest.max_id) != newest.tip
        if lacking:
            self._clear_work()
            raise BackupConflict(
                f"not publishing: the local database (rows={snap.summary.total} max_id={snap.summary.max_id}) "
                f"lacks reviews that the newest backup at {self.target.name} holds (rows={newest.rows} "
                f"max_id={newest.max_id} revision={newest.revision}). To take the backup: "
                "`python -m worker restore --force`; to publish the local database anyway: "
                "`python -m worker publish --allow-fewer`")

    def _remember(self, state: WorkerState, info: BackupManifest) -> None:
        if state.target != self.target.name or state.last_published != info:
            update_state(self.config, target=self.target.name, last_published=info, last_attempt_at=utc_now_iso())

    def _clear_work(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
