"""Verify a backup without touching the live database, and the scheduled "restore drill".

`python -m worker verify [--revision R]` downloads a backup into a scratch
folder (`<data>/.verify-<pid>`, removed afterwards) and puts it through the same
checks as a restore (`worker.restore.fetch_checked`: integrity check, schema
migration, foreign schema objects). The live database and the state of
backups are not touched.

The loop runs the same check on the newest backup every
RESTORE_DRILL_INTERVAL_SECONDS (daily by default; 0 = off) and records the
result in the state file, so `python -m worker status` shows it and exits
non-zero when the newest backup could not be restored. A backup that cannot
be restored is worse than none: it is found out on the day it is needed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from shared import utc
from shared.config import Config
from worker.errors import describe_error, is_backup_defect
from worker.restore import NoBackup, fetch_checked, staging_dir
from worker.state import load_state, update_state
from worker.targets import Target

log = logging.getLogger("worker.drill")

FIRST_DRILL_DELAY_SECONDS = 300.0
UNREACHABLE_RETRY_SECONDS = 600.0


@dataclass(frozen=True)
class Verdict:
    ok: bool
    revision: str | None
    rows: int | None
    detail: str
    dropped: tuple[str, ...] = ()


def verify(config: Config, target: Target, revision: str | None = None) -> Verdict:
    """Check one backup (the newest, or `revision`) as a restore would, in a scratch folder."""
    dropped: list[str] = []
    # Per process: a `verify` from a shell and the running worker's drill never share a folder.
    with staging_dir(config.data_dir / f".verify-{os.getpid()}") as scratch:
        try:
            _fetched, info, summary = fetch_checked(target, scratch, revision, dropped=dropped)
        except NoBackup as exc:
            return Verdict(False, revision, None, f"no backup to check: {exc}")
        except Exception as exc:  # the error policy decides: a defect is a verdict, an outage raised
            if not is_backup_defect(exc):
                raise
            return Verdict(False, revision, None, f"the backup would be refused: {exc}")
    detail = f"restorable: {summary.total} reviews"
    if dropped:
        detail += f"; a restore drops {len(dropped)} schema object(s) we do not create: " + ", ".join(dropped)
    return Verdict(True, info.revision or revision, summary.total, detail, tuple(dropped))


class RestoreDrill:
    """The scheduled check of the newest backup; `maybe_run` is called by the loop and never raises."""

    def __init__(self, config: Config, target: Target, *, clock=time.time):
        self.config, self.target, self.clock = config, target, clock
        self.interval = config.restore_drill_interval_seconds
        # With no drill on record, the first comes soon after start (a Space that restarts
        # more often than the interval would otherwise never run one).
        self.not_before = clock() + min(self.interval, FIRST_DRILL_DELAY_SECONDS)

    def due(self) -> bool:
        if self.interval <= 0 or self.clock() < self.not_before:
            return False
        last = _parse_utc(load_state(self.config.state_path).last_drill_at)
        return last is None or self.clock() - last >= self.interval

    def maybe_run(self) -> Verdict | None:
        if not self.due():
            return None
        try:
            verdict = verify(self.config, self.target)
        except Exception as exc:  # noqa: BLE001 - unreachable target: not a verdict on the backup
            self.not_before = self.clock() + min(self.interval, UNREACHABLE_RETRY_SECONDS)
            log.warning("restore drill could not run, will retry cause=%s", describe_error(exc))
            return None
        try:
            at = utc.iso(self.clock())
            update_state(self.config, last_drill_at=at, last_drill_ok=verdict.ok,
                         last_drill_revision=verdict.revision, last_drill_detail=verdict.detail)
        except OSError as exc:  # a full disk must not kill the loop
            log.debug("could not save the drill result error=%s", exc)
        if verdict.ok:
            log.info("restore drill passed revision=%s rows=%s dropped=%d", verdict.revision, verdict.rows,
                     len(verdict.dropped))
        else:
            log.error("restore drill FAILED: the newest backup could not be restored revision=%s cause=%s",
                      verdict.revision or "newest", verdict.detail)
        return verdict


def _parse_utc(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return utc.parse_iso(stamp)
    except ValueError:
        return None
