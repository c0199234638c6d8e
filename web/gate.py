"""Wait until the worker says the database is ready (any restore done).

On a fresh disk the worker restores the newest backup before the form may
write; if the web created an empty database first, that backup would be
shadowed. The worker writes `worker-ready` holding its supervisord run's id
(pid, start time, boot id: see `shared.supervisor_run`); under supervisord
that is also our parent, so a file left by an earlier run never counts, even
in a container where supervisord is always pid 1. Only used when
FEEDBACK_WAIT_FOR_WORKER is on (supervisord.conf sets it).
"""

from __future__ import annotations

import logging
import time

from shared.config import Config
from shared.supervisor_run import supervisor_run_id

log = logging.getLogger("web.gate")

POLL_SECONDS = 0.2
REMIND_SECONDS = 10.0


def worker_ready(config: Config) -> bool:
    try:
        return config.ready_path.read_text(encoding="utf-8").strip() == supervisor_run_id()
    except (FileNotFoundError, ValueError):
        return False


def wait_for_worker(config: Config, *, max_wait: float) -> bool:
    started = last_note = time.monotonic()
    # Outside supervisord nothing writes that file with our parent's pid: say so, not a silent wait.
    log.info("waiting for the worker's ready file path=%s expected_run=%s max_wait_s=%.0f "
             "(FEEDBACK_WAIT_FOR_WORKER is on: under supervisord the worker writes it after any restore; "
             "without supervisord unset FEEDBACK_WAIT_FOR_WORKER)", config.ready_path, supervisor_run_id(), max_wait)
    while not worker_ready(config):
        now = time.monotonic()
        if now - started > max_wait:
            # Safe to go on: the worker merges local reviews with the newest
            # backup before its first push (never pushes a smaller database).
            log.error("worker not ready after %.0fs, opening the form anyway", max_wait)
            return False
        if now - last_note >= REMIND_SECONDS:
            log.info("waiting for the worker to prepare the database waited_s=%.0f", now - started)
            last_note = now
        time.sleep(POLL_SECONDS)
    log.info("worker ready after %.1fs", time.monotonic() - started)
    return True
