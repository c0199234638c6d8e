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
    Each level (concurrency 1, 8, 32; --requests each) of (a) and (b) runs in --rounds rounds,
    each a no-op round then a real round, so both see the same background load (the bench
    machine is shared); (c) is compared with (b)'s no-op rounds and (b)'s p99.
  - the -wal file of the 1M database is sampled every 0.1 s during (b) and (c);
  - the web's VmRSS (/proc/<pid>/status) of the 1M app after start, after a 50-submit warm-up
    ("before"), after each level of (b) and (c), and every 1000 submits of a top-up at
    concurrency 8 (worker stopped) until --rss-submits submits in all ("after").

Runtime: ~6-7 min with the defaults on the 2-core bench machine (the 1M database is built once,
~8 s, then cached).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, ROOT, stop_group, table
from bench.load import LevelResult, run_level
from bench.make_db import working_copy
from tests.apprunner import App, free_port, wait_until

import httpx

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
        stop_group(self.proc)
        self.log.close()


def pooled(rounds: list[LevelResult]) -> LevelResult:
    """All rounds of a level as one result (latencies pooled); rps is recomputed by the caller."""
    out = LevelResult(concurrency=rounds[0].concurrency, requests=sum(r.requests for r in rounds),
                      ok=sum(r.ok for r in rounds), errors=sum(r.errors for r in rounds),
                      seconds=sum(r.seconds for r in rounds))
    for r in rounds:
        out.latencies_ms.extend(r.latencies_ms)
        out.error_samples.extend(r.error_samples)
    return out


def med(values) -> float:
    v = sorted(values)
    n = len(v)
    return float("nan") if not n else (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300, help="requests per concurrency level (all rounds)")
    p.add_argument("--rounds", type=int, default=3,
                   help="each level is split in this many rounds, no-op and real alternating")
    p.add_argument("--backup-requests", type=int, default=0,
                   help="requests per level during backups (c); default 2x --requests, so that several "
                        "backup cycles overlap the load")
    p.add_argument("--rss-submits", type=int, default=10_000,
                   help="web RSS is read after start+warm-up and after this many submits in all "
                        "(those of (b) and (c) count, the rest are sent at concurrency 8)")
    p.add_argument("--small", type=int, default=1_000)
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--max-seconds", type=float, default=60.0, help="time bound per round")
    p.add_argument("--quick", action="store_true", help="smoke test: 100k instead of 1M, 60 requests, 1000 RSS submits")
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.rss_submits, args.large = 60, 1000, 100_000
    args.backup_requests = args.backup_requests or 2 * args.requests
    started = time.perf_counter()
    work = OUT / "run_all"
    work.mkdir(parents=True, exist_ok=True)
    real: dict[tuple[str, int], list[LevelResult]] = {}
    floor: dict[tuple[str, int], list[LevelResult]] = {}
    notes: list[str] = []
    load_kw = dict(timeout=30.0, max_seconds=args.max_seconds)
    per_round = max(1, args.requests // args.rounds)
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}", flush=True)

    def paired(phase: str, url: str, noop_url: str) -> int:
        """Each level: rounds of (no-op, real), alternating. Returns the submits sent to `url`."""
        sent = 0
        for c in LEVELS:
            for _ in range(args.rounds):
                floor.setdefault((phase, c), []).append(run_level(noop_url, c, per_round, **load_kw))
                r = run_level(url, c, per_round, **load_kw)
                real.setdefault((phase, c), []).append(r)
                sent += r.requests + c
            print(f"  ({phase}) c={c} done", flush=True)
        return sent

    noop = Noop(work / "noop.log")
    apps: list[App] = []
    try:
        # (a) small, idle
        app = start_app(work / "small", args.small)
        apps.append(app)
        stop_worker(app)
        paired("a", app.url, noop.url)
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
        submits_to_large = paired("b", app.url, noop.url)
        rss_curve.append((submits_to_large, vm_rss_mib(web_pid)))
        wal_after_b = wal.samples[-1][2] if wal.samples else 0

        # (c) large, worker backing up back to back
        before = published_count(app)
        wal.phase = "c"
        out = app.ctl("start", "worker")
        if "started" not in out.stdout:
            raise RuntimeError(f"could not start the worker: {out.stdout} {out.stderr}")
        c_started = time.monotonic()
        for c in LEVELS:
            r = run_level(app.url, c, args.backup_requests, **{**load_kw, "max_seconds": 2 * args.max_seconds})
            real[("c", c)] = [r]
            submits_to_large += r.requests + c
            print(f"  (c) c={c} done", flush=True)
        rss_curve.append((submits_to_large, vm_rss_mib(web_pid)))
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
    labels = {"a": f"(a) {args.small:,}, idle", "b": f"(b) {args.large:,}, idle",
              "c": f"(c) {args.large:,}, backups"}
    rows = []
    for phase in ("a", "b", "c"):
        for c in LEVELS:
            rs = real[(phase, c)]
            fs = floor[("b" if phase == "c" else phase, c)]
            r, f = pooled(rs), pooled(fs)
            rps, frps = med(x.rps for x in rs), med(x.rps for x in fs)
            if phase == "c":
                rps_ratio = rps / frps if frps else float("nan")
            else:  # paired rounds: the median of per-round ratios cancels slow drifts of background load
                rps_ratio = med(x.rps / y.rps for x, y in zip(rs, fs) if y.rps)
            rows.append([labels[phase], c, rps, r.p50, r.p99, r.errors, frps, f.p50, f.p99, f"{rps_ratio:.2f}",
                         f"{r.p50 / f.p50:.2f}", f"{r.p99 / f.p99:.2f}"])
    print(table(["real app", "conc.", "req/s", "p50 ms", "p99 ms", "errors", "no-op req/s", "no-op p50",
                 "no-op p99", "req/s vs no-op", "p50 vs no-op", "p99 vs no-op"], rows,
                title=f"POST+SSE add_review: (a), (b) {args.requests} requests per level in {args.rounds} rounds "
                      f"alternating with the no-op app; (c) {args.backup_requests} per level, compared with (b)'s "
                      "no-op rounds. req/s = median of rounds; p50/p99 over all rounds"))

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
    print("\nTargets:")
    t1 = float(rows[3 + LEVELS.index(8)][9])
    print(f"  throughput at {args.large:,}, c=8 >= 0.9x no-op: {t1:.2f}x -> {'met' if t1 >= 0.9 else 'NOT met'}")
    for c in LEVELS:
        pc, pb = pooled(real[("c", c)]).p99, pooled(real[("b", c)]).p99
        print(f"  p99 during backups <= 1.5x idle p99 ({args.large:,}, c={c}): {pc:.0f} / {pb:.0f} ms = "
              f"{pc / pb:.2f}x -> {'met' if pc / pb <= 1.5 else 'NOT met'}")
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
