"""tests/required.py: a missing tool skips on a developer's machine and fails the run under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASE = '''
from tests.required import need

def test_needs_a_missing_tool():
    need(False, "no frobnicator here")

def test_needs_a_present_tool():
    need(True, "never shown")
'''


@pytest.mark.parametrize("ci, outcome", [("", "1 passed, 1 skipped"), ("true", "1 failed, 1 passed")])
def test_a_missing_tool_skips_locally_and_fails_in_ci(tmp_path, ci, outcome):
    (tmp_path / "test_case.py").write_text(CASE)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_case.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert outcome in res.stdout, res.stdout + res.stderr
    assert "no frobnicator here" in res.stdout
    assert res.returncode == (1 if ci else 0)
