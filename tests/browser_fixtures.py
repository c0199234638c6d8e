"""A real browser for the tests: Playwright driving Debian's chromium.

Playwright's own browser download does not work here (no network), so the
browser is the system's `chromium` (scripts/test apt-installs it). Without the
background-networking flags chromium keeps trying to reach Google's servers
through the closed network, which slows every page.

tests/conftest.py imports the fixtures, so every module shares one browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.required import need, need_module

__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "CHROMIUM_PATH", "browser", "page"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots; gitignored
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
DEFAULT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    sync_api = need_module("playwright.sync_api", "playwright is not installed (requirements-test.txt)")
    need(Path(CHROMIUM_PATH).exists(), f"no chromium at {CHROMIUM_PATH} (scripts/test apt-installs it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    """A fresh page (own cookies, downloads allowed) at desktop width; fails the test on a JS error."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
