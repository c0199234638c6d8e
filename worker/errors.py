"""The worker's error policy, in one place: how an error is described, whether
it is expected (one log line says it all, no traceback), whether retrying soon
can help (permanent: ops must act, so the loop waits the longest backoff), and
how long the server asked us to wait (Retry-After).

Errors the worker raises itself derive from `WorkerError` and say so with
class attributes (or, for `HubError`, per instance). Errors from the Hub
client and its HTTP library are expected too: `hub.translate` turns the ones
it sees into a `HubError`, and anything that slips past is still one line.
"""

from __future__ import annotations


class WorkerError(RuntimeError):
    """A failure the worker understands: its message names the cause and what to do."""

    expected = True  # the message says it all: no traceback in the log
    permanent = False  # True: retrying soon cannot help, ops must act
    retry_after: float | None = None  # seconds the server asked us to wait


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
    if isinstance(exc, (OSError, TimeoutError)):
        return True  # disk full, connection refused, ...: the message names it
    return type(exc).__module__.startswith(("huggingface_hub", "httpx"))


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, WorkerError) and exc.permanent


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
