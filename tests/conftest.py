"""Shared fixtures. The Hub client reads these at import time: set them before any test imports it."""

import os
import tempfile

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from shared.config import load_config  # noqa: E402
from tests.hub_fixtures import hub_api, hub_server  # noqa: E402,F401


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def config(data_dir):
    return load_config({"FEEDBACK_DATA_DIR": str(data_dir), "BACKUP_INTERVAL_SECONDS": "1"})
