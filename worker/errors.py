"""The worker's error policy, in one place: every error the worker meets, its own
or a library's, is judged here and nowhere else.

For each error it says:
- `describe_error`: one line naming the cause (logs, `status`, the CLI);
- `is_expected`: that line says it all, no traceback in the log;
- `is_permanent`: retrying soon cannot help, ops must act (the loop waits its longest backoff);
- `retry_after_seconds`: how long the server asked us to wait (Retry-After);
- `is_backup_defect`: the backup itself is unusable (restore walks back past it), as
  opposed to a target we cannot reach (an outage: never skipped).

The worker's own errors derive from `WorkerError` and say so with class attributes
(or, for `HubError`, per instance). Errors of other libraries that the worker meets
are in `_FOREIGN` below; anything else is unexpected (its traceback is logged).
"""

from __future__ import annotations

import sqlite3


class WorkerError(RuntimeError):
    """A failure the worker understands: its message names the cause and what to do."""

    expected = True  # the message says it all: no traceback in the log
    permanent = False  # True: retrying soon cannot help, ops must act
    retry_after: float | None = None  # seconds the server asked us to wait
    defect = False  # True: the backup being read is unusable (restore tries an older one)


def _foreign() -> tuple[tuple[type[BaseException], bool, bool], ...]:
    """(class, expected, defect) for errors raised by code that is not the worker's."""
    from shared.db import StoreError  # the web's package: it cannot derive from WorkerError

    return (
        # A backup that is not SQLite, or is damaged, or that our schema code refuses.
        (sqlite3.DatabaseError, True, True),
        (StoreError, True, True),
        # Disk full, connection refused, a missing file...: the message names it.
        (OSError, True, False),
        (TimeoutError, True, False),
    )


def _lookup(exc: BaseException) -> tuple[bool, bool] | None:
    for cls, expected, defect in _foreign():
        if isinstance(exc, cls):
            return expected, defect
    return None


def describe_error(exc: BaseException) -> str:
    """One line naming the cause, for logs, `status` and the CLI."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, WorkerError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_expected(exc: BaseException) -> bool:
    """Errors whose one-line cause says it all: no traceback in the log."""
    if isinstance(exc, WorkerError):
        return exc.expected
    found = _lookup(exc)
    if found is not None:
        return found[0]
    return type(exc).__module__.startswith(("huggingface_hub", "httpx"))


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, WorkerError) and exc.permanent


def is_backup_defect(exc: BaseException) -> bool:
    """The backup read is unusable (not an outage): restore and the drill try an older one."""
    if isinstance(exc, WorkerError):
        return exc.defect
    found = _lookup(exc)
    return found is not None and found[1]


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After, when the error carries one (or an HTTP response with one)."""
    own = getattr(exc, "retry_after", None)
    if own is not None:
        return float(own)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
