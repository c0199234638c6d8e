"""The worker's main loop: a `schedule` job, backoff on failure, clean stop on signals.

- Every job runs inside `tick()`, which catches everything: `schedule` lets a
  job's exception escape `run_pending()` and that would end the loop.
- A failing streak is logged once when it starts (with its cause), then only
  as a reminder every REMINDER_SECONDS, and once on recovery.
- Retries back off exponentially up to a cap, honouring Retry-After.
- The loop waits on "next job or stop", so a signal wakes it at once.
- Each target (the Hub dataset, a folder on a mounted bucket, a local folder) has its
  own job, cadence, failure streak and backoff, and runs in its own thread (the
  worker lock is held only while files are made, see worker.backup): a Hub that is
  slow, fails or is throttled never holds back the copy on the mount, and the reverse.
  A target that asks to wait (`Target.wait_seconds()`, e.g. a spent commit budget) is
  skipped without counting a failure; its changes go in its next publish.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Callable, Iterable, Protocol

import schedule

from shared import utc
from worker import erase_history
from worker.backup import Backup, BackupConflict
from worker.errors import describe_error, is_expected, is_permanent, retry_after_seconds
from worker.state import load_state, update_target

log = logging.getLogger("worker.loop")

REMINDER_SECONDS = 600.0
LONG_WAIT_SECONDS = 600.0  # a target's wait this long or longer is logged at INFO, shorter ones at DEBUG
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


def _utc_in(seconds: float) -> str:
    return utc.iso(time.time() + seconds)


class TargetRunner:
    """One target's side of the loop: its backup job, failure streak and backoff."""

    def __init__(self, backup: Backup, *, interval: float, backoff_cap: float, clock: Callable[[], float]):
        self.backup = backup
        self.name = backup.target.name
        self.interval = interval
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.failures = load_state(backup.config.state_path).target(self.name).consecutive_failures
        self.not_before = 0.0
        self._last_reported = 0.0
        self._last_cause: str | None = None
        self._waiting = False
        self._wait_level = logging.DEBUG

    def tick(self, *, final: bool = False) -> None:
        """Run one backup unless backing off or the target asks to wait; never raises."""
        now = self.clock()
        if now < self.not_before and not final:
            return
        try:
            wait = float(getattr(self.backup.target, "wait_seconds", lambda: 0.0)())
        except Exception:  # noqa: BLE001 - a target that cannot tell is asked by publishing
            wait = 0.0
        # The final backup at a stop goes anyway: one commit over a budget is far inside the Hub's own limit.
        if wait > 0 and not final:
            if not self._waiting:  # once per stretch, not every tick
                # A commit budget's few minutes between commits is routine (DEBUG); a long wait
                # (a spent hour, a 429) is worth a line.
                self._wait_level = logging.INFO if wait >= LONG_WAIT_SECONDS else logging.DEBUG
                log.log(self._wait_level, "target asks to wait, changes go in its next backup target=%s "
                        "wait_s=%.0f", self.name, wait)
                self._waiting = True
                self._save(waiting=f"target asks to wait {wait:.0f}s", next_try_at=_utc_in(wait))
            return
        if self._waiting:
            log.log(self._wait_level, "target takes backups again target=%s", self.name)
            self._waiting = False
            self._save(waiting=None, next_try_at=None)
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
        if is_permanent(exc):
            delay = self.backoff_cap  # retrying soon cannot help: ops must act
        else:
            delay = min(self.backoff_cap, self.interval * 2 ** (failures - 1))
        retry_after = retry_after_seconds(exc)
        if retry_after is not None:
            delay = max(delay, retry_after)  # the server's word, even past our cap: never a tight retry
        # The state file first, the counter after: whoever sees the counter change
        # (a test, `status`) finds the file already written.
        self._save(consecutive_failures=failures, last_error=cause, next_try_at=_utc_in(delay),
                   conflict=cause if isinstance(exc, BackupConflict) else None)
        self.failures = failures
        self.not_before = self.clock() + delay
        now = self.clock()
        if self.failures == 1:
            log.error("backup failed target=%s failures=%d next_try_in_s=%.0f cause=%s", self.name, self.failures,
                      delay, cause, exc_info=not is_expected(exc))
            self._last_reported = now
        elif cause != self._last_cause:
            log.warning("backup still failing, cause changed target=%s failures=%d next_try_in_s=%.0f cause=%s",
                        self.name, self.failures, delay, cause)
            self._last_reported = now
        elif now - self._last_reported >= REMINDER_SECONDS:
            log.warning("backup still failing target=%s failures=%d next_try_in_s=%.0f cause=%s", self.name,
                        self.failures, delay, cause)
            self._last_reported = now
        else:
            log.debug("backup failed again target=%s failures=%d cause=%s", self.name, self.failures, cause)
        self._last_cause = cause

    def _succeeded(self) -> None:
        if self.failures:
            log.info("backup recovered after %d failures target=%s", self.failures, self.name)
        # Then the state file, then the counter: whoever sees either change finds the rest done.
        self._save(consecutive_failures=0, last_error=None, conflict=None, next_try_at=None)
        self.failures = 0
        self.not_before = 0.0
        self._last_cause = None

    def _save(self, **changes) -> None:
        try:
            update_target(self.backup.config, self.name, last_attempt_at=utc.iso(), **changes)
        except OSError as exc:  # a full disk must not kill the loop
            log.debug("could not save state error=%s", exc)


class BackupLoop:
    """Every target's runner on one `schedule` scheduler. Given one Backup, the loop
    is that target's runner (`failures`, `not_before` are its own)."""

    def __init__(self, backups: Backup | Iterable[Backup], *, interval: float, backoff_cap: float,
                 clock: Callable[[], float] = time.monotonic, drill=None,
                 intervals: dict[str, float] | None = None):
        backups = [backups] if isinstance(backups, Backup) else list(backups)
        intervals = intervals or {}
        self.runners = [TargetRunner(b, interval=intervals.get(b.target.name, interval), backoff_cap=backoff_cap,
                                     clock=clock) for b in backups]
        self.backup = backups[0]
        self.drill = drill  # worker.drill.RestoreDrill, or None: checked every DRILL_CHECK_SECONDS
        self.interval = interval
        self.backoff_cap = backoff_cap
        self.clock = clock
        self._threads: dict[str, threading.Thread] = {}

    # The first target's streak: what a caller with one target reads (and a test may reset).
    @property
    def failures(self) -> int:
        return self.runners[0].failures

    @property
    def not_before(self) -> float:
        return self.runners[0].not_before

    @not_before.setter
    def not_before(self, value: float) -> None:
        self.runners[0].not_before = value

    def tick(self, *, final: bool = False) -> None:
        """One backup to every target (each unless backing off); never raises. In the
        caller's thread, one target after the other; `final` (on stop): after any backup
        still running, every target at once."""
        if not final:
            for runner in self.runners:
                runner.tick()
            return
        for thread in list(self._threads.values()):
            thread.join()  # the caller bounds the whole stop (FINAL_BACKUP_TIMEOUT_SECONDS)
        finals = [threading.Thread(target=r.tick, kwargs={"final": True}, name=f"final-{i}", daemon=True)
                  for i, r in enumerate(self.runners)]
        for thread in finals:
            thread.start()
        for thread in finals:
            thread.join()

    def _dispatch(self, runner: TargetRunner) -> None:
        """Run `runner`'s tick in its own thread, so a slow target never delays another's.
        While its previous backup still runs, this tick is skipped: the next one carries it."""
        thread = self._threads.get(runner.name)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=runner.tick, name=f"backup-{len(self._threads)}", daemon=True)
        self._threads[runner.name] = thread
        thread.start()

    def _drill(self) -> None:
        try:
            self.drill.maybe_run()
        except Exception:  # maybe_run catches its own; the loop must survive anything
            log.exception("restore drill crashed")

    def run(self, stop: Stop) -> None:
        scheduler = schedule.Scheduler()
        # schedule's annotation says int; it takes float seconds (tests run sub-second intervals).
        for runner in self.runners:
            scheduler.every(runner.interval).seconds.do(self._dispatch, runner)  # type: ignore[arg-type]
        if self.drill is not None:
            scheduler.every(min(self.interval, DRILL_CHECK_SECONDS)).seconds.do(self._drill)  # type: ignore[arg-type]
        for runner in self.runners:
            self._dispatch(runner)  # a first backup at start, not one interval later
        while not stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            stop.wait(timeout=max(0.0, idle if idle is not None else self.interval))
