"""What the worker does before the form may take its first review.

Under supervisord the web waits for the ready file (see `web.gate`), so this
runs before any write, whatever order supervisord starts the programs in:
1. a corrupt local database is moved aside (never deleted);
2. with no local database, the newest backup across the targets is restored
   (the mount's copy when it holds the same as the Hub: it is faster), trying
   for up to RESTORE_TIMEOUT_SECONDS while no target can be reached; past that
   the form starts empty, and for every target not reached the worker merges
   its newest backup before its first push there;
3. the schema is created or migrated;
4. the ready file is written, naming this supervisord run.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence, cast

from shared.config import Config
from shared.schema import open_store_db
from shared.supervisor_run import supervisor_run_id
from shared.fsutil import write_text_atomic
from worker.lock import worker_lock
from worker.errors import describe_error
from worker.restore import NoBackup, move_aside_if_corrupt, restore_locked
from worker.manifest import BackupManifest
from worker.state import update_target
from worker.targets import Target

log = logging.getLogger("worker.startup")

RESTORE_RETRY_SECONDS = 2.0


def prepare(config: Config, targets: Target | Sequence[Target]) -> None:
    every = list(targets) if isinstance(targets, (list, tuple)) else [cast(Target, targets)]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with worker_lock(config.data_dir):
        move_aside_if_corrupt(config.db_path)
        if not config.db_path.exists():
            _restore_on_fresh_disk(config, every)
        open_store_db(config.db_path).close()
    mark_ready(config)


def choose_source(found: dict[int, BackupManifest]) -> int | None:
    """The target (its index in the list) whose newest backup to restore: the one no other
    holds more than (more rows, a higher id), as the never-fewer rule compares them; of equal
    backups the first listed, which is the faster one (a mount before the Hub)."""
    best: int | None = None
    for i in sorted(found):
        m = found[i]
        if best is None or (m.max_id, m.rows) > (found[best].max_id, found[best].rows):
            best = i
    return best


def _restore_on_fresh_disk(config: Config, targets: list[Target]) -> None:
    """Restore the newest backup across the targets. A target that cannot be reached may hold
    a newer one: the worker merges it in before its first push there (`pending_merge`)."""
    deadline = time.monotonic() + config.restore_timeout_seconds
    attempts = 0
    while True:
        attempts += 1
        found: dict[int, BackupManifest] = {}
        unreachable: dict[int, str] = {}
        for i, target in enumerate(targets):
            try:
                newest = target.newest()
            except Exception as exc:  # noqa: BLE001 - unreachable: retried until the deadline
                unreachable[i] = describe_error(exc)
                continue
            if newest is not None:
                found[i] = newest
        chosen = choose_source(found)
        if chosen is not None:
            try:
                restore_locked(config, targets[chosen])
            except NoBackup:
                pass  # gone since newest(): as if none
            except Exception as exc:  # noqa: BLE001 - unreachable mid-download: retried until the deadline
                unreachable[chosen] = describe_error(exc)
            else:
                others = ", ".join(f"{targets[i].name}(rows={m.rows} max_id={m.max_id})"
                                   for i, m in found.items() if i != chosen) or "-"
                log.info("restored on a fresh disk from=%s rows=%d max_id=%d other_targets=%s unreachable=%s",
                         targets[chosen].name, found[chosen].rows, found[chosen].max_id, others,
                         ",".join(targets[i].name for i in unreachable) or "-")
                _merge_later(config, [targets[i] for i in unreachable])
                return
        if not unreachable:
            log.info("no local database and no backup yet, starting empty targets=%s",
                     ",".join(t.name for t in targets))
            return
        cause = "; ".join(f"{targets[i].name}: {c}" for i, c in unreachable.items())
        if attempts == 1:
            log.warning("restore failed, retrying for up to %.0fs cause=%s", config.restore_timeout_seconds, cause)
        if time.monotonic() + RESTORE_RETRY_SECONDS > deadline:
            log.error("could not restore on a fresh disk, starting empty; the worker will merge with the "
                      "newest backup before its first push attempts=%d cause=%s", attempts, cause)
            _merge_later(config, [targets[i] for i in unreachable])
            return
        time.sleep(RESTORE_RETRY_SECONDS)


def _merge_later(config: Config, targets: list[Target]) -> None:
    for target in targets:
        update_target(config, target.name, pending_merge=True)


def mark_ready(config: Config) -> None:
    """Tell the web (same supervisord run = same id) that it may open the database."""
    write_text_atomic(config.ready_path, f"{supervisor_run_id()}\n")
