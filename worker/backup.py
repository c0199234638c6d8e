"""One backup run: snapshot -> integrity check -> CSV from the snapshot -> publish.

The files of a run are staged in `backups/.work/`; when publishing fails they
stay there (the newest snapshot is on disk until a push succeeds) and the
next run replaces them with a fresh one.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.config import Config
from shared.db import connect, read_summary
from worker.export import export_csv
from worker.lock import worker_lock
from worker.snapshot import take_snapshot
from worker.state import WorkerState, load_state, save_state
from worker.targets import Published, Target, utc_now_iso

log = logging.getLogger("worker.backup")


class BackupConflict(RuntimeError):
    """Publishing would drop reviews that the newest backup holds."""


@dataclass(frozen=True)
class Outcome:
    published: Published | None  # None: nothing changed, nothing published
    rows: int


class Backup:
    def __init__(self, config: Config, target: Target):
        self.config = config
        self.target = target
        self.work_dir = config.backups_dir / ".work"

    def state(self) -> WorkerState:
        return load_state(self.config.state_path)

    def _last_published(self, state: WorkerState) -> Published | None:
        """What the target holds now: our own record if it is about this target,
        else ask the target (after a restart with a lost state file, or a new target)."""
        if state.target == self.target.name and state.last_published is not None:
            return state.last_published
        return self.target.newest()

    def run(self, *, force: bool = False, allow_fewer: bool = False) -> Outcome:
        with worker_lock(self.config.data_dir):
            return self._run_locked(force=force, allow_fewer=allow_fewer)

    def _run_locked(self, *, force: bool, allow_fewer: bool) -> Outcome:
        state = self.state()
        last = self._last_published(state)
        live = connect(self.config.db_path, readonly=True)
        try:
            current = read_summary(live)
        finally:
            live.close()
        if last is not None and last.fingerprint == current.fingerprint and not force:
            log.debug("no change since last backup, nothing published rows=%d target=%s",
                      current.total, self.target.name)
            self._remember(state, last)
            return Outcome(published=None, rows=current.total)

        self.work_dir.mkdir(parents=True, exist_ok=True)
        snap = take_snapshot(self.config.db_path, self.work_dir / "reviews.db")
        if last is not None and last.fingerprint == snap.summary.fingerprint and not force:
            self._clear_work()
            self._remember(state, last)
            return Outcome(published=None, rows=snap.summary.total)
        if last is not None and not allow_fewer and (
                snap.summary.total < last.rows or snap.summary.max_id < last.max_id):
            raise BackupConflict(
                f"local database has rows={snap.summary.total} max_id={snap.summary.max_id} but the newest "
                f"backup at {self.target.name} has rows={last.rows} max_id={last.max_id}; not publishing. "
                "To take the backup: `python -m worker restore --force`; to publish the local "
                "database anyway: `python -m worker publish --allow-fewer`")
        csv_path = self.work_dir / "reviews.csv"
        export_csv(snap.path, csv_path)
        info = self.target.publish(snap.path, csv_path, snap.summary)
        self._remember(state, info)
        self._clear_work()
        log.info("backup published rows=%d max_id=%d target=%s location=%s snapshot_s=%.2f",
                 info.rows, info.max_id, self.target.name, info.location, snap.seconds)
        return Outcome(published=info, rows=info.rows)

    def _remember(self, state: WorkerState, info: Published) -> None:
        if state.target != self.target.name or state.last_published != info:
            save_state(self.config.state_path,
                       state.with_(target=self.target.name, last_published=info, last_attempt_at=utc_now_iso()))

    def _clear_work(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
