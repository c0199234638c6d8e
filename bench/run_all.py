"""One command, one table: the real app vs the no-op floor, at 1k and 1M reviews, idle and
during back-to-back backups; plus the -wal size across backup cycles and the web's RSS over
10,000 submits.

    bash bench/run_all [--requests 300] [--rss-submits 10000] [--quick]

What runs:
  - bench/noop_app.py (the floor: same API, no database), started once;
  - the real app under supervisord (tests/apprunner.App: worker + web, FEEDBACK_RATE_LIMIT_PER_MINUTE=0,
    BACKUP_INTERVAL_SECONDS=1) on a private copy of the cached database (bench/out/run_all/):
      (a) 1k reviews, worker stopped after its first backup (idle);
      (b) 1M reviews, worker stopped after its first backup (idle);
      (c) the same 1M app with the worker started again: it backs up back to back (interval 1 s,
          and the load keeps writing, so every cycle publishes: snapshot + integrity_check + CSV +
          local publish); --backup-requests per level (2x --requests) so that several cycles overlap.
    Each level (concurrency 1, 8, 32; --requests each) of (a) and (b) is paired with a run of the
    no-op app right before it, so both see the same background load; (c) is compared with (b)'s
    no-op runs.
  - the -wal file of the 1M database is sampled every 0.1 s during (b) and (c);
  - the web's VmRSS (/proc/<pid>/status) of the 1M app after start, after a 50-submit warm-up
    ("before"), after each level of (b) and (c), and every 1000 submits of a top-up at
    concurrency 8 (worker stopped) until --rss-submits submits in all ("after").

Runtime: ~8-9 min with the defaults on the 2-core bench machine (the 1M database is built once,
~8 s, then cached).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, ROOT, table  # noqa: E402
from bench.load import LevelResult, run_level  # noqa: E402
from bench.make_db import working_copy  # noqa: E402
from tests.apprunner import App, free_port, wait_until  # noqa: E402

import httpx  # noqa: E402

LEVELS = (1, 8, 32)


def vm_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class WalSampler:
    """Polls the size of <db>-wal every `interval` seconds (a missing file counts as 0)."""

    def __init__(self, db: Path, interval: float = 0.1):
        self.path = Path(str(db) + "-wal")
        self.interval = interval
        self.samples: list[tuple[float, str, int]] = []
        self.phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="wal-sampler")

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.phase, self._size()))
            self._stop.wait(self.interval)

    def start(self) -> "WalSampler":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self._size()

    def max(self, phase: str) -> int:
        return max((s for _, p, s in self.samples if p == phase), default=0)


def published_count(app: App) -> int:
    return app.log("worker").count("backup published")


def backup_periods(log: str) -> list[float]:
    """Seconds between consecutive 'backup published' lines (the log's timestamps are to the second)."""
    stamps = []
    for line in log.splitlines():
        if "backup published" in line:
            try:
                stamps.append(time.mktime(time.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%SZ")))
            except (ValueError, IndexError):
                pass
    return [b - a for a, b in zip(stamps, stamps[1:])]


def start_app(data_dir: Path, rows: int) -> App:
    shutil.rmtree(data_dir, ignore_errors=True)
    working_copy(rows, data_dir)
    app = App(data_dir, env={"BACKUP_INTERVAL_SECONDS": "1", "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0",
                             "LOG_LEVEL": "INFO", "BACKUP_KEEP": "3"})
    app.start(timeout=180)
    # the worker's first backup (at start) must be over before the idle measurements
    wait_until(lambda: published_count(app) >= 1, 300, 0.5, "the worker's first backup")
    return app


def stop_worker(app: App) -> None:
    out = app.ctl("stop", "worker", timeout=120)
    if "stopped" not in out.stdout and "not running" not in out.stdout:
        raise RuntimeError(f"could not stop the worker: {out.stdout} {out.stderr}")


class Noop:
    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
        env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(self.port),
                   GRADIO_ANALYTICS_ENABLED="False")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, str(ROOT / "bench" / "noop_app.py")], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"no-op app exited rc={self.proc.returncode}, see {log_path}")
            try:
                return httpx.get(self.url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(up, 120, 0.2, "the no-op app")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    p.add_argument("--backup-requests", type=int, default=0,
                   help="requests per level during backups (c); default 2x --requests, so that several "
                        "backup cycles overlap the load")
    p.add_argument("--rss-submits", type=int, default=10_000,
                   help="web RSS is read after start+warm-up and after this many submits in all "
                        "(those of (b) and (c) count, the rest are sent at concurrency 8)")
    p.add_argument("--small", type=int, default=1_000)
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--max-seconds", type=float, default=60.0, help="time bound per level")
    p.add_argument("--quick", action="store_true", help="smoke test: 100k instead of 1M, 40 requests, 1000 RSS submits")
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.rss_submits, args.large = 40, 1000, 100_000
    args.backup_requests = args.backup_requests or 2 * args.requests
    started = time.perf_counter()
    work = OUT / "run_all"
    work.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, LevelResult]] = []
    noop_by_level: dict[tuple[str, int], LevelResult] = {}
    submits_to_large = 0
    notes: list[str] = []
    load_kw = dict(timeout=30.0, max_seconds=args.max_seconds)
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)

    noop = Noop(work / "noop.log")
    apps: list[App] = []
    try:
        # (a) small, idle
        app = start_app(work / "small", args.small)
        apps.append(app)
        stop_worker(app)
        for c in LEVELS:
            noop_by_level[("a", c)] = run_level(noop.url, c, args.requests, **load_kw)
            results.append((f"(a) {args.small:,}, idle", run_level(app.url, c, args.requests, **load_kw)))
            print(f"  (a) c={c} done", flush=True)
        app.stop()
        apps.remove(app)

        # (b) large, idle
        app = start_app(work / "large", args.large)
        apps.append(app)
        db = app.data_dir / "reviews.db"
        web_pid = app.pid("web")
        rss_start = vm_rss_mib(web_pid)
        stop_worker(app)
        run_level(app.url, 8, 50, warmup=0, **load_kw)  # first-call costs, not counted anywhere
        rss_before = vm_rss_mib(web_pid)
        rss_curve = [(0, rss_before)]
        wal = WalSampler(db).start()
        wal.phase = "b"
        for c in LEVELS:
            noop_by_level[("b", c)] = run_level(noop.url, c, args.requests, **load_kw)
            r = run_level(app.url, c, args.requests, **load_kw)
            submits_to_large += r.requests + c
            results.append((f"(b) {args.large:,}, idle", r))
            rss_curve.append((submits_to_large, vm_rss_mib(web_pid)))
            print(f"  (b) c={c} done", flush=True)
        wal_after_b = wal.samples[-1][2] if wal.samples else 0

        # (c) large, worker backing up back to back
        before = published_count(app)
        wal.phase = "c"
        out = app.ctl("start", "worker")
        if "started" not in out.stdout:
            raise RuntimeError(f"could not start the worker: {out.stdout} {out.stderr}")
        c_started = time.monotonic()
        for c in LEVELS:
            r = run_level(app.url, c, args.backup_requests, **load_kw)
            submits_to_large += r.requests + c
            results.append((f"(c) {args.large:,}, backups", r))
            rss_curve.append((submits_to_large, vm_rss_mib(web_pid)))
            print(f"  (c) c={c} done", flush=True)
        c_seconds = time.monotonic() - c_started
        cycles = published_count(app) - before
        wal.phase = "after-c"
        stop_worker(app)  # its final backup: the last cycle
        wal_final = wal.stop()
        periods = backup_periods(app.log("worker"))[-cycles:] if cycles else []

        # web RSS: top up to --rss-submits submits in all (worker stopped)
        done, errors = submits_to_large, 0
        rss_started = time.perf_counter()
        while done < args.rss_submits and time.perf_counter() - rss_started < 600:
            n = min(1000 - done % 1000, args.rss_submits - done)
            r = run_level(app.url, 8, n, warmup=0, timeout=30.0, max_seconds=120.0)
            done += r.requests
            errors += r.errors
            rss_curve.append((done, vm_rss_mib(web_pid)))
        if app.pid("web") != web_pid:
            notes.append("the web process restarted during the run: RSS numbers are not comparable")
        app.stop()
        apps.remove(app)
    finally:
        for a in apps:
            a.stop()
        noop.stop()

    # ---- the one table
    rows = []
    for label, r in results:
        phase = label[1]
        ref = noop_by_level[("b" if phase == "c" else phase, r.concurrency)]
        rows.append([label, r.concurrency, r.rps, r.p50, r.p99, r.errors, ref.rps, ref.p50, ref.p99,
                     f"{r.rps / ref.rps:.2f}" if ref.rps else "-", f"{r.p50 / ref.p50:.2f}" if ref.p50 else "-",
                     f"{r.p99 / ref.p99:.2f}" if ref.p99 else "-"])
    print(table(["real app", "conc.", "req/s", "p50 ms", "p99 ms", "errors", "no-op req/s", "no-op p50",
                 "no-op p99", "req/s vs no-op", "p50 vs no-op", "p99 vs no-op"], rows,
                title=f"POST+SSE add_review, {args.requests} requests per level "
                      "(no-op = bench/noop_app.py measured right before, same level)"))

    def find(phase: str, c: int) -> LevelResult:
        return next(r for label, r in results if label.startswith(f"({phase})") and r.concurrency == c)

    mib = 2 ** 20
    gaps = ", ".join(f"{g:.0f}" for g in periods) or "-"
    print(f"\n-wal of the {args.large:,}-row db: max {wal.max('b') / mib:.1f} MiB while idle (b); "
          f"max {max(wal.max('c'), wal.max('after-c')) / mib:.1f} MiB across {cycles} backup cycles in "
          f"{c_seconds:.0f} s (c) (seconds between publishes: {gaps}); {wal_after_b / mib:.1f} MiB at the end of (b); "
          f"final {wal_final / mib:.1f} MiB (after the worker's last backup); journal_size_limit 32 MiB")
    print(f"web VmRSS (MiB) by submits to the {args.large:,}-row web: {rss_start:.0f} after start, "
          f"{rss_before:.0f} after a 50-submit warm-up; " + ", ".join(f"{n:,}: {v:.0f}" for n, v in rss_curve[1:]) +
          f"; top-up errors {errors}")
    rss_after = rss_curve[-1][1]

    # ---- targets
    b8, n8 = find("b", 8), noop_by_level[("b", 8)]
    print("\nTargets:")
    t1 = b8.rps / n8.rps
    print(f"  throughput at {args.large:,}, c=8 >= 0.9x no-op: {t1:.2f}x -> {'met' if t1 >= 0.9 else 'NOT met'}")
    for c in LEVELS:
        ratio = find("c", c).p99 / find("b", c).p99
        print(f"  p99 during backups <= 1.5x idle p99 ({args.large:,}, c={c}): {find('c', c).p99:.0f} / "
              f"{find('b', c).p99:.0f} ms = {ratio:.2f}x -> {'met' if ratio <= 1.5 else 'NOT met'}")
    wal_max = max(wal.max("b"), wal.max("c"), wal.max("after-c"))
    print(f"  -wal bounded: max {wal_max / mib:.1f} MiB, final {wal_final / mib:.1f} MiB -> "
          f"{'met' if wal_max <= 64 * mib and wal_final <= 32 * mib else 'NOT met'} (bound used: max <= 64 MiB, final <= 32 MiB)")
    growth = rss_after - rss_before
    print(f"  web RSS flat over {done:,} submits: {rss_before:.0f} -> {rss_after:.0f} MiB ({growth:+.0f} MiB) -> "
          f"{'met' if growth <= 0.1 * rss_before + 10 else 'NOT met'} (bound used: <= +10% +10 MiB)")
    for n in notes:
        print(f"  note: {n}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
