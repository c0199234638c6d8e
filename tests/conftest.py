"""Shared fixtures. The Hub client reads these at import time: set them before any test imports it."""

import os
import tempfile

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest

from shared.config import load_config
from tests.hub_fixtures import clocked_hub, hub_api, hub_server  # noqa: F401
# One chromium for the session, shared by every browser test module (two would each start
# Playwright's sync loop, which refuses to run inside another).
from tests.browser_fixtures import browser, page  # noqa: F401


# Markers by file, so a new file gets its kind from its name (register new kinds in pytest.ini).
# A file not listed here is `unit` unless its module or a test sets one of KINDS itself
# (`pytestmark = pytest.mark.e2e`); a test marked `slow` is never `unit`.
#   pytest -m unit                 fast tests on real files, seconds
#   pytest -m "hub and not slow"   against the in-process test Hub server
#   pytest -m e2e / browser / faults / container / slow
KINDS = ("unit", "hub", "e2e", "browser", "faults", "container")
FILE_MARKERS: dict[str, tuple[str, ...]] = {
    "test_hub_sync.py": ("hub",),
    "test_hub_citizen.py": ("hub",),
    "test_hubserver.py": ("hub",),
    "test_never_fewer.py": ("hub",),
    "test_incremental.py": ("hub",),
    "test_dataset.py": ("hub", "slow"),  # datasets/pandas over hf://, Xet
    "test_e2e.py": ("e2e", "slow"),
    "test_web_api.py": ("e2e", "slow"),
    "test_bad_input.py": ("e2e", "slow"),
    "test_harden_web.py": ("e2e", "slow"),
    "test_security.py": ("e2e", "hub", "slow"),
    "test_browser.py": ("browser", "e2e", "slow"),
    "test_accessibility.py": ("browser", "e2e", "slow"),
    "test_container.py": ("container", "slow"),
    "test_harden_worker.py": ("hub", "e2e", "slow"),
    "test_harden_browser.py": ("browser", "e2e", "slow"),
}
FOLDER_MARKERS: dict[str, tuple[str, ...]] = {
    "faults": ("faults", "e2e", "hub", "slow"),
}


def _kinds_for(path) -> tuple[str, ...]:
    from pathlib import Path

    path = Path(str(path))
    if path.name in FILE_MARKERS:
        return FILE_MARKERS[path.name]
    for folder, kinds in FOLDER_MARKERS.items():
        if folder in path.parts:
            return kinds
    return ()


def pytest_collection_modifyitems(config, items):
    for item in items:
        for kind in _kinds_for(item.path):
            item.add_marker(kind)
        own = {m.name for m in item.iter_markers()}
        if not own.intersection(KINDS) and "slow" not in own:
            item.add_marker("unit")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def config(data_dir):
    return load_config({"FEEDBACK_DATA_DIR": str(data_dir), "BACKUP_INTERVAL_SECONDS": "1"})
