"""What the worker does before the form may take its first review.

Under supervisord the web waits for the ready file (see `web.gate`), so this
runs before any write, whatever order supervisord starts the programs in:
1. a corrupt local database is moved aside (never deleted);
2. with no local database, the newest backup is restored, trying for up to
   RESTORE_TIMEOUT_SECONDS when the target is unreachable; past that the
   form starts empty and the worker merges before its first push;
3. the schema is created or migrated;
4. the ready file is written, naming this supervisord run.
"""

from __future__ import annotations

import logging
import time

from shared.config import Config
from shared.db import open_store_db
from shared.supervisor_run import supervisor_run_id
from worker.fsutil import write_text_atomic
from worker.lock import worker_lock
from worker.errors import describe_error
from worker.restore import NoBackup, move_aside_if_corrupt, restore_locked
from worker.state import update_state
from worker.targets import Target

log = logging.getLogger("worker.startup")

RESTORE_RETRY_SECONDS = 2.0


def prepare(config: Config, target: Target) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with worker_lock(config.data_dir):
        move_aside_if_corrupt(config.db_path)
        if not config.db_path.exists():
            _restore_on_fresh_disk(config, target)
        open_store_db(config.db_path).close()
    mark_ready(config)


def _restore_on_fresh_disk(config: Config, target: Target) -> None:
    deadline = time.monotonic() + config.restore_timeout_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            restore_locked(config, target)
            return
        except NoBackup:
            log.info("no local database and no backup yet, starting empty target=%s", target.name)
            return
        except Exception as exc:  # noqa: BLE001 - unreachable target: retry until the deadline
            cause = describe_error(exc)
            if attempts == 1:
                log.warning("restore failed, retrying for up to %.0fs target=%s cause=%s",
                            config.restore_timeout_seconds, target.name, cause)
            if time.monotonic() + RESTORE_RETRY_SECONDS > deadline:
                log.error("could not restore on a fresh disk, starting empty; the worker will merge with the "
                          "newest backup before its first push attempts=%d cause=%s", attempts, cause)
                update_state(config, pending_merge=True)
                return
            time.sleep(RESTORE_RETRY_SECONDS)


def mark_ready(config: Config) -> None:
    """Tell the web (same supervisord run = same id) that it may open the database."""
    write_text_atomic(config.ready_path, f"{supervisor_run_id()}\n")
