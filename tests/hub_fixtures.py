"""pytest fixtures around tests/hubserver.py (a local Hugging Face Hub-compatible server).

Import them from tests/conftest.py::

    from tests.hub_fixtures import hub_server, hub_api  # noqa: F401

Constants (tokens and users known to the servers started here) are importable too.
"""

from __future__ import annotations

import os
import sys

import pytest

try:  # tests/ is a package (tests/__init__.py)
    from tests.hubserver import HubServer
except ImportError:  # flat layout: tests/ itself on sys.path
    from hubserver import HubServer

__all__ = [
    "HUB_USER",
    "HUB_TOKEN",
    "HUB_OTHER_USER",
    "HUB_OTHER_TOKEN",
    "HUB_READ_TOKEN",
    "HUB_TOKENS",
    "HUB_LFS_THRESHOLD",
    "hub_client_env",
    "hub_server",
    "hub_api",
    "FakeClock",
    "clocked_hub",
]

HUB_USER = "alice"
HUB_TOKEN = "tok-write"  # alice, write access
HUB_OTHER_USER = "bob"
HUB_OTHER_TOKEN = "tok-bob"  # bob, write access (to bob/*)
HUB_READ_TOKEN = "tok-read"  # alice, read-only
HUB_TOKENS = {HUB_TOKEN: HUB_USER, HUB_OTHER_TOKEN: HUB_OTHER_USER, HUB_READ_TOKEN: (HUB_USER, "read")}
HUB_LFS_THRESHOLD = 1_000_000


def hub_client_env(endpoint: str, token: str | None = HUB_TOKEN, hf_home: str | None = None, base: dict | None = None) -> dict:
    """Environment for a child process that uses huggingface_hub against the local server."""
    env = dict(os.environ if base is None else base)
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    # No commit budget against the tests' own server: the fault and sync tests wait for a commit per
    # cycle (1-2 s). tests/test_hub_citizen.py sets a budget where the budget is what it tests.
    env.setdefault("HF_COMMITS_PER_HOUR", "0")
    if hf_home is not None:
        env["HF_HOME"] = hf_home
    if token is None:
        env.pop("HF_TOKEN", None)
    else:
        env["HF_TOKEN"] = token
    return env


def _force_client_test_settings() -> None:
    """If huggingface_hub was imported before the env vars were set, still disable Xet and telemetry."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_DISABLE_XET = True
        constants.HF_HUB_DISABLE_TELEMETRY = True


class FakeClock:
    """Seconds since the epoch that move only when told: one clock for the test Hub (commit dates,
    its commit quota) and the worker's HubTarget (its budget, the kept points), so a test drives
    a simulated year in seconds."""

    def __init__(self, start: float):
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clocked_hub():
    """(server, clock): a HubServer whose time is a FakeClock starting 2026-01-01T00:00Z."""
    _force_client_test_settings()
    clock = FakeClock(1767225600.0)
    srv = HubServer(tokens=HUB_TOKENS, lfs_threshold=HUB_LFS_THRESHOLD, clock=clock)
    srv.start()
    try:
        yield srv, clock
    finally:
        srv.stop()


@pytest.fixture
def hub_server():
    """A started in-process HubServer (memory state, tokens HUB_TOKENS, lfs_threshold 1 MB); stopped afterwards."""
    _force_client_test_settings()
    srv = HubServer(tokens=HUB_TOKENS, lfs_threshold=HUB_LFS_THRESHOLD)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hub_api(hub_server):
    """HfApi bound to the in-process server, authenticated as HUB_USER (write)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN)
