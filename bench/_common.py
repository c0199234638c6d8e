"""Small helpers shared by the bench scripts: paths, child-process measurement, tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PYTHON = str(ROOT / ".venv" / "bin" / "python")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class ProcResult:
    seconds: float      # wall time of the whole child process
    max_rss_kib: int    # peak RSS of the child (and its waited-for children), from wait4
    returncode: int
    stdout: str
    stderr: str


def run_measured(cmd: list[str], *, env: dict | None = None, stdout_path: Path | None = None,
                 cwd: Path | None = None, timeout: float = 600.0) -> ProcResult:
    """Run `cmd` in a fresh process; wall time and peak RSS via os.wait4 (per child, not cumulative).

    stdout goes to `stdout_path` (or is captured); both streams go through temporary files,
    so a chatty child can never block on a full pipe."""
    import tempfile

    with tempfile.TemporaryFile() as err_f, tempfile.TemporaryFile() as cap_f:
        out_f = open(stdout_path, "wb") if stdout_path else cap_f
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, cwd=cwd or ROOT, stdout=out_f, stderr=err_f)
            deadline = started + timeout
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    pid, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.002)
            seconds = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if stdout_path:
                out_f.close()
        err_f.seek(0)
        cap_f.seek(0)
        stderr = err_f.read().decode(errors="replace")
        stdout = "" if stdout_path else cap_f.read().decode(errors="replace")
    return ProcResult(seconds, rusage.ru_maxrss, proc.returncode, stdout, stderr)


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    """A plain-text table (also valid GitHub markdown)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines.append(f"\n{title}\n")
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def drop_caches_hint(path: Path) -> None:
    """Read a file once so that every variant starts with it in the page cache (a fair, warm start)."""
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass
