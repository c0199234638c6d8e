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


def test_names_choice_missing_goes_through_the_policy():
    """A bare RuntimeError with `permanent` attributes was invisible to the policy: the loop
    retried in small steps and logged a traceback for a setting only the owner can change."""
    from worker.privacy import NamesChoiceMissing

    exc = NamesChoiceMissing("not pushing: set HF_DATASET_PUBLISH_NAMES")
    assert is_permanent(exc) and is_expected(exc)
    assert describe_error(exc) == str(exc)


def test_backup_defects_are_the_policys_word_not_a_list_in_restore():
    import sqlite3

    import worker.restore
    from shared.db import StoreError
    from worker.errors import is_backup_defect
    from worker.schema_guard import SchemaRefused

    assert not hasattr(worker.restore, "BACKUP_DEFECTS")
    for exc in (SnapshotError("integrity_check failed"), SchemaRefused("other columns"), StoreError("newer schema"),
                sqlite3.DatabaseError("file is not a database")):
        assert is_backup_defect(exc) and is_expected(exc), exc
    for exc in (HubError("cannot reach the Hub"), OSError("connection refused"), KeyError("x")):
        assert not is_backup_defect(exc), exc  # an outage, or a bug: never skipped as a bad backup


def test_every_error_class_of_the_worker_goes_through_the_policy():
    """Every exception class the worker's modules define is a WorkerError (it states its policy),
    or one the policy knows by its base (OSError...): none is judged by a list of its own."""
    import importlib
    import inspect
    import pkgutil

    import worker

    outside = []
    for module_info in pkgutil.iter_modules(worker.__path__):
        module = importlib.import_module(f"worker.{module_info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            if issubclass(cls, WorkerError) or issubclass(cls, OSError):
                continue
            outside.append(f"{module.__name__}.{name}")
    assert outside == []
