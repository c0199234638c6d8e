"""Small helpers shared by the bench scripts: paths, child-process measurement, tables."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PYTHON = str(ROOT / ".venv" / "bin" / "python")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.apprunner import free_port, wait_until  # noqa: E402 - after the path above


# The repository and write token the benches use on the test Hub (tests/hubserver.py).
HUB_REPO = "bench/feedback"
HUB_TOKEN = "tok-bench"


def quiet_hub_client() -> None:
    """Set before huggingface_hub is imported (it reads these once): Xet off (the test Hub speaks
    LFS), no telemetry, no progress bars, a throwaway HF_HOME unless one is given."""
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-hf-home-"))


def parser(doc: str | None = None) -> argparse.ArgumentParser:
    """A bench's argument parser, with the --smoke every bench accepts (bench/README.md)."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0] or None)
    p.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None = None, *, smoke: dict) -> argparse.Namespace:
    """Parse a bench's arguments; with --smoke, `smoke`'s values replace theirs (the tiny run)."""
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(smoke)
    return args


def report(headers: list[str], rows: list[list], title: str, baseline: str) -> None:
    """A bench's result: its table, then the baseline it is read against."""
    print(table(headers, rows, title=title))
    print(f"\nbaseline {baseline}")


@dataclass
class ProcResult:
    seconds: float      # wall time of the whole child process
    max_rss_kib: int    # peak RSS of the child (and its waited-for children), from wait4
    returncode: int
    cpu: float          # user + sys seconds of the child (and its waited-for children)
    stdout: str
    stderr: str


TIME_BIN = "/usr/bin/time"  # GNU time: a small C parent, so the child's ru_maxrss is its own


def run_measured(cmd: list[str], *, env: dict | None = None, stdout_path: Path | None = None,
                 cwd: Path | None = None, timeout: float = 600.0) -> ProcResult:
    """Run `cmd` in a fresh process: wall time, CPU (user+sys) and peak RSS.

    Peak RSS comes from GNU time (`-f %M`): a child forked straight from this (large) Python
    process would report *our* RSS as its high-water mark (Linux counts the pre-exec image).
    stdout goes to `stdout_path` (or is captured); both streams go through temporary files,
    so a chatty child can never block on a full pipe."""

    with tempfile.NamedTemporaryFile(prefix="time-", suffix=".txt", delete=False) as tf:
        time_out = Path(tf.name)
    with tempfile.TemporaryFile() as err_f, tempfile.TemporaryFile() as cap_f:
        out_f = open(stdout_path, "wb") if stdout_path else cap_f
        try:
            started = time.perf_counter()
            proc = subprocess.Popen([TIME_BIN, "-f", "%U %S %M", "-o", str(time_out), *cmd], env=env,
                                    cwd=cwd or ROOT, stdout=out_f, stderr=err_f)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            seconds = time.perf_counter() - started
        finally:
            if stdout_path:
                out_f.close()
        err_f.seek(0)
        cap_f.seek(0)
        stderr = err_f.read().decode(errors="replace")
        stdout = "" if stdout_path else cap_f.read().decode(errors="replace")
    try:
        last = time_out.read_text().strip().splitlines()[-1].split()
        user, sys_s, rss = float(last[0]), float(last[1]), int(last[2])
    except (OSError, IndexError, ValueError):
        user = sys_s = float("nan")
        rss = 0
    finally:
        time_out.unlink(missing_ok=True)
    return ProcResult(seconds, rss, proc.returncode, user + sys_s, stdout, stderr)


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


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a child started with start_new_session=True (and its children), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Server:
    """A server process (`python -m web`, bench/noop_app.py...) on a free 127.0.0.1 port, in its own
    process group, started and waited for until its page answers; `stop()` ends the group."""

    def __init__(self, name: str, cmd: list[str], env: dict, log_path: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port)}
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def up():
            import httpx

            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited rc={self.proc.returncode}, see {log_path}")
            try:
                return httpx.get(self.url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        try:
            wait_until(up, 120, 0.2, name)
        except BaseException:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        """CPU time of the server process (user + system): unlike req/s, barely moved by other
        processes on a shared machine, so it shows the cost of a request when wall times are noisy."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_group(self.proc)
        self.log.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
