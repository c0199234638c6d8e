"""The worker's main loop: a `schedule` job, backoff on failure, clean stop on signals.

- Every job runs inside `tick()`, which catches everything: `schedule` lets a
  job's exception escape `run_pending()` and that would end the loop.
- A failing streak is logged once when it starts (with its cause), then only
  as a reminder every REMINDER_SECONDS, and once on recovery.
- Retries back off exponentially up to a cap, honouring Retry-After.
- The loop waits on "next job or stop", so a signal wakes it at once.
"""

from __future__ import annotations

import logging
import os
import select
import time
from typing import Callable, Protocol

import schedule

from worker import erase_history
from worker.backup import Backup, BackupConflict
from worker.errors import describe_error, is_expected, is_permanent, retry_after_seconds
from worker.manifest import utc_now_iso
from worker.state import load_state, update_state

log = logging.getLogger("worker.loop")

REMINDER_SECONDS = 600.0
DRILL_CHECK_SECONDS = 60.0  # how often the loop asks whether a restore drill is due (a state-file read)


class Stop(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class StopSignal:
    """A stop request that is safe to set from a signal handler.

    `threading.Event.set()` takes a non-reentrant lock; if the signal lands
    while the main thread is inside `Event.wait()` holding that lock, the
    handler deadlocks and the process never stops (seen here: supervisord had
    to SIGKILL the worker). Writing a byte to a pipe is signal-safe, and the
    loop sleeps in `select()` on that pipe, so it still wakes at once.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._flag = False

    def set(self) -> None:
        self._flag = True
        try:
            os.write(self._write, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe already holds a wake-up byte

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if not self._flag:
            select.select([self._read], [], [], timeout)
        return self._flag


class BackupLoop:
    def __init__(self, backup: Backup, *, interval: float, backoff_cap: float,
                 clock: Callable[[], float] = time.monotonic, drill=None):
        self.backup = backup
        self.drill = drill  # worker.drill.RestoreDrill, or None: checked every DRILL_CHECK_SECONDS
        self.interval = interval
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.failures = load_state(backup.config.state_path).consecutive_failures
        self.not_before = 0.0
        self._last_reported = 0.0
        self._last_cause: str | None = None

    def tick(self, *, final: bool = False) -> None:
        """Run one backup unless backing off; never raises."""
        now = self.clock()
        if now < self.not_before and not final:
            return
        try:
            self.backup.run()
            if not final:  # the owner's request to rewrite the Hub history (worker.erase_history)
                erase_history.maybe_run(self.backup.config, self.backup.target)
        except Exception as exc:  # noqa: BLE001 - the loop must survive any job failure
            self._failed(exc)
        else:
            self._succeeded()

    def _failed(self, exc: Exception) -> None:
        failures = self.failures + 1
        cause = describe_error(exc)
        # The state file first, the counter after: whoever sees the counter change
        # (a test, `status`) finds the file already written.
        self._save(failures=failures, error=cause, conflict=cause if isinstance(exc, BackupConflict) else None)
        self.failures = failures
        if is_permanent(exc):
            delay = self.backoff_cap  # retrying soon cannot help: ops must act
        else:
            delay = min(self.backoff_cap, self.interval * 2 ** (self.failures - 1))
        retry_after = retry_after_seconds(exc)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.not_before = self.clock() + delay
        now = self.clock()
        if self.failures == 1:
            log.error("backup failed failures=%d next_try_in_s=%.0f cause=%s", self.failures, delay, cause,
                      exc_info=not is_expected(exc))
            self._last_reported = now
        elif cause != self._last_cause:
            log.warning("backup still failing, cause changed failures=%d next_try_in_s=%.0f cause=%s",
                        self.failures, delay, cause)
            self._last_reported = now
        elif now - self._last_reported >= REMINDER_SECONDS:
            log.warning("backup still failing failures=%d next_try_in_s=%.0f cause=%s", self.failures, delay, cause)
            self._last_reported = now
        else:
            log.debug("backup failed again failures=%d cause=%s", self.failures, cause)
        self._last_cause = cause

    def _succeeded(self) -> None:
        self._save(failures=0, error=None, conflict=None)  # before the counter: see _failed
        if self.failures:
            log.info("backup recovered after %d failures", self.failures)
        self.failures = 0
        self.not_before = 0.0
        self._last_cause = None

    def _save(self, *, failures: int, error: str | None, conflict: str | None) -> None:
        try:
            update_state(self.backup.config, consecutive_failures=failures, last_error=error,
                         conflict=conflict, last_attempt_at=utc_now_iso())
        except OSError as exc:  # a full disk must not kill the loop
            log.debug("could not save state error=%s", exc)

    def _drill(self) -> None:
        try:
            self.drill.maybe_run()
        except Exception:  # noqa: BLE001 - maybe_run catches its own; the loop must survive anything
            log.exception("restore drill crashed")

    def run(self, stop: Stop) -> None:
        scheduler = schedule.Scheduler()
        scheduler.every(self.interval).seconds.do(self.tick)
        if self.drill is not None:
            scheduler.every(min(self.interval, DRILL_CHECK_SECONDS)).seconds.do(self._drill)
        self.tick()  # a first backup at start, not one interval later
        while not stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            stop.wait(timeout=max(0.0, idle if idle is not None else self.interval))

