"""The repository's own checks, so `scripts/test` (and CI) fails on them: ruff, mypy, and the
constraints file being the requirements' closure. Settings in pyproject.toml; why each rule is on
in the README ("Lint and types")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing():
    res = run(str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", ".")
    assert res.returncode == 0, f"ruff check . found:\n{res.stdout}{res.stderr}"


def test_mypy_finds_nothing():
    # Files and settings from pyproject.toml; the cache (.mypy_cache) makes a warm run ~1 s.
    res = run(sys.executable, "-m", "mypy")
    assert res.returncode == 0, f"mypy (shared, web, worker) found:\n{res.stdout}{res.stderr}"


def test_constraints_file_is_the_requirements_closure():
    res = run(sys.executable, "scripts/lock", "--check")
    assert res.returncode == 0, res.stderr


def test_the_readme_folder_table_names_every_module_and_no_gone_one():
    # The README's map is the new maintainer's first read: a module missing there, or one named
    # there that no longer exists, makes it lie.
    import re

    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(shared|web|worker)/` \|(.*)", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`([a-z_]+\.py)`", m.group(2)))
    assert set(rows) == {"shared", "web", "worker"}, "the README's folder table lost a row"
    for folder, named in rows.items():
        present = {p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"}
        assert not present - named, f"{folder}/ modules missing from the README's folder table: {sorted(present - named)}"
        assert not named - present, f"the README's folder table names {folder}/ modules that are gone: {sorted(named - present)}"
