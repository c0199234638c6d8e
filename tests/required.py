"""What a test needs from the machine: skipped on a developer's machine without it, a failure in CI.

Under CI=true (CI systems set it; .ci/run sets it) a missing chromium, podman or npm package fails the
run, so CI cannot pass without the browser, accessibility and container tests having run."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(ok: bool, what: str) -> None:
    """Skip (fail under CI=true) unless `ok`; `what` says what is missing and how to get it."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"{what} (CI=true: a missing tool fails the run instead of skipping)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def need_module(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        need(False, what)
        raise  # unreachable: need() skipped or failed
