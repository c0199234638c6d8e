"""The worker's error policy (worker/errors.py): one home for expected, permanent and Retry-After."""

import httpx

from worker.backup import BackupConflict
from worker.errors import WorkerError, describe_error, is_expected, is_permanent, retry_after_seconds
from worker.hub import HubError
from worker.snapshot import SnapshotError


def test_the_workers_own_errors_are_one_line_without_traceback():
    for exc in (BackupConflict("lacks reviews"), SnapshotError("x.db: integrity_check failed"),
                HubError("cannot reach the Hub")):
        assert isinstance(exc, WorkerError) and is_expected(exc)
        assert describe_error(exc) == str(exc)  # the message already names the cause: no class prefix


def test_permanent_errors_are_the_ones_ops_must_fix():
    assert is_permanent(BackupConflict("x"))
    assert is_permanent(HubError("401", permanent=True))
    assert not is_permanent(HubError("503"))
    assert not is_permanent(SnapshotError("disk full"))
    assert not is_permanent(OSError("disk full"))


def test_unknown_errors_get_a_traceback_and_their_class_named():
    exc = KeyError("boom")
    assert not is_expected(exc)
    assert describe_error(exc) == "KeyError: 'boom'"
    assert is_expected(OSError(28, "No space left on device"))
    assert describe_error(ValueError()) == "ValueError"


def test_retry_after_from_the_error_or_its_http_response():
    assert retry_after_seconds(HubError("429", retry_after=7)) == 7.0
    response = httpx.Response(429, headers={"Retry-After": "12"})
    assert retry_after_seconds(httpx.HTTPStatusError("429", request=httpx.Request("GET", "http://x"),
                                                     response=response)) == 12.0
    assert retry_after_seconds(RuntimeError("no response")) is None
    bad = httpx.Response(429, headers={"Retry-After": "soon"})
    assert retry_after_seconds(httpx.HTTPStatusError("429", request=httpx.Request("GET", "http://x"),
                                                     response=bad)) is None
