"""Which part of a backup cycle slows the form? Latency of submits by backup phase.

    .venv/bin/python bench/backup_impact.py [--rows 1000000] [--cycles 2] [--concurrency 1]
                                            [--export project|sql_chunks] [--idle 8]

Starts the real web (`python -m web`, rate limit off, no worker) on a copy of the cached
database and keeps --concurrency clients submitting through the HTTP API the whole time. Between
two idle windows it runs --cycles backup cycles in a child process niced like the worker
(WORKER_NICE 10, or --nice; --sched-idle adds SCHED_IDLE): worker.snapshot.take_snapshot (backup API + PASSIVE checkpoint, then
integrity_check, timed apart), the CSV export (the project's or bench/export_variants.sql_chunks),
and LocalFolderTarget.publish (copy + fsync of db and csv). Each submit is attributed to the
phase in which it started; the table gives per-phase count, p50, p99 and max.

Runtime: ~1 min at 1M rows with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import OUT, PYTHON, ROOT, stop_group, table
from bench.load import _inputs, one_request
from bench.make_db import working_copy
from tests.apprunner import free_port, wait_until

CHILD = r"""
import json, os, sys, time
from pathlib import Path
os.nice(int(os.environ.get("WORKER_NICE", "10")))
if os.environ.get("BENCH_SCHED_IDLE"):
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
import worker.snapshot as snapshot
from worker.targets import LocalFolderTarget
db, work, which = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if which == "sql_chunks":
    from bench.export_variants import sql_chunks as export_csv
else:
    from shared.csv_export import write_reviews_csv as export_csv

def mark(name, t0):
    print(json.dumps([name, t0, time.time()]), flush=True)

_check = snapshot.integrity_check
def timed_check(path):
    t = time.time()
    _check(path)
    mark("integrity_check", t)
snapshot.integrity_check = timed_check
work.mkdir(parents=True, exist_ok=True)
t = time.time()
snap = snapshot.take_snapshot(db, work / "reviews.db")
mark("snapshot (all)", t)
t = time.time()
export_csv(snap.path, work / "reviews.csv")
mark("export", t)
t = time.time()
import inspect
target = LocalFolderTarget(work / "published", keep=2)
extra = {"tip": None} if "tip" in inspect.signature(target.publish).parameters else {}
target.publish(snap.path, work / "reviews.csv", snap.summary, **extra)
mark("publish", t)
"""


def dirty_mib() -> float:
    """Dirty + Writeback page cache, MiB: data written but not yet on disk (writers get throttled when high)."""
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(("Dirty:", "Writeback:")):
            total += int(line.split()[1])
    return total / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--export", choices=("project", "sql_chunks"), default="project")
    p.add_argument("--idle", type=float, default=8.0, help="seconds of idle load before and after the cycles")
    p.add_argument("--nice", type=int, default=10, help="the worker's niceness (WORKER_NICE, default 10)")
    p.add_argument("--sched-idle", action="store_true", help="run the backup child with SCHED_IDLE (not in the app)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    base = OUT / "backup_impact"
    shutil.rmtree(base, ignore_errors=True)
    db = working_copy(args.rows, base / "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    env.update(FEEDBACK_DATA_DIR=str(base / "data"), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               FEEDBACK_RATE_LIMIT_PER_MINUTE="0", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    child_env = {**env, "WORKER_NICE": str(args.nice), **({"BENCH_SCHED_IDLE": "1"} if args.sched_idle else {})}
    log = open(base / "web.log", "wb")
    web = subprocess.Popen([PYTHON, "-m", "web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    samples: list[tuple[float, float, bool]] = []  # (start wall time, ms, ok)
    dirty: list[tuple[float, float]] = []  # (wall time, MiB of Dirty + Writeback in /proc/meminfo)
    stop = threading.Event()
    phases: list[tuple[str, float, float]] = []
    try:
        def up():
            if web.poll() is not None:
                raise RuntimeError(f"web exited, see {base / 'web.log'}")
            try:
                return httpx.get(url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(up, 120, 0.2, "the web")

        warmed = threading.Barrier(args.concurrency + 1)

        def client(idx: int) -> None:
            import random
            rng = random.Random(idx)
            with httpx.Client(timeout=30) as c:
                for _ in range(3):  # warm-up
                    try:
                        one_request(c, url, _inputs(rng))
                    except httpx.HTTPError:
                        pass
                warmed.wait()
                deadline = time.monotonic() + 600  # hard bound
                while not stop.is_set() and time.monotonic() < deadline:
                    t0 = time.time()
                    p0 = time.perf_counter()
                    try:
                        ok, _ = one_request(c, url, _inputs(rng))
                    except httpx.HTTPError:
                        ok = False
                    samples.append((t0, (time.perf_counter() - p0) * 1e3, ok))

        def dirty_sampler() -> None:
            while not stop.is_set():
                dirty.append((time.time(), dirty_mib()))
                stop.wait(0.2)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.concurrency)]
        threads.append(threading.Thread(target=dirty_sampler, daemon=True))
        for t in threads:
            t.start()
        warmed.wait(timeout=120)  # every client warmed up
        t = time.time()
        time.sleep(args.idle)
        phases.append(("idle before", t, time.time()))
        for cycle in range(args.cycles):
            out = subprocess.run([PYTHON, "-c", CHILD, str(db), str(base / f"work-{cycle}"), args.export],
                                 cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            for line in out.stdout.splitlines():
                name, a, b = json.loads(line)
                phases.append((name, a, b))
            shutil.rmtree(base / f"work-{cycle}", ignore_errors=True)
        t = time.time()
        time.sleep(args.idle)
        phases.append(("idle after", t, time.time()))
        stop.set()
        for th in threads:
            th.join(35)
    finally:
        stop.set()
        stop_group(web)
        log.close()

    def in_window(a: float, b: float, exclude: list[tuple[float, float]] = ()) -> list[float]:
        return [ms for t0, ms, ok in samples if a <= t0 < b and ok
                and not any(x <= t0 < y for x, y in exclude)]

    def pct(v: list[float], q: float) -> float:
        if not v:
            return float("nan")
        s = sorted(v)
        return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]

    # "snapshot (all)" includes integrity_check: report the part before it as "snapshot: backup API"
    rows = []
    agg: dict[str, list] = {}
    for name, a, b in phases:
        excl = []
        label = name
        if name == "snapshot (all)":
            checks = [(x, y) for n, x, y in phases if n == "integrity_check" and a <= x <= b]
            excl = checks
            label = "snapshot: backup API + checkpoint"
        lat = in_window(a, b, excl)
        entry = agg.setdefault(label, [0.0, [], 0.0])
        entry[0] += (b - a) - sum(y - x for x, y in excl)
        entry[1].extend(lat)
        entry[2] = max([entry[2]] + [d for t0, d in dirty if a <= t0 < b])
    order = ["idle before", "snapshot: backup API + checkpoint", "integrity_check", "export", "publish", "idle after"]
    idle = agg["idle before"][1] + agg["idle after"][1]
    for label in order:
        secs, lat, dmax = agg.get(label, (0.0, [], 0.0))
        rows.append([label, secs / (1 if label.startswith("idle") else args.cycles), f"{dmax:.0f}", len(lat),
                     len(lat) / secs if secs else float("nan"), pct(lat, 0.5),
                     pct(lat, 0.99), max(lat) if lat else float("nan"),
                     f"{pct(lat, 0.99) / pct(idle, 0.99):.2f}x" if lat and idle else "-"])
    all_backup = [ms for label in order[1:-1] for ms in agg.get(label, (0, [], 0))[1]]
    backup_secs = sum(agg.get(lbl, (0.0, [], 0.0))[0] for lbl in order[1:-1])
    rows.append(["all backup phases", backup_secs / args.cycles,
                 f"{max(agg.get(lbl, (0.0, [], 0.0))[2] for lbl in order[1:-1]):.0f}",
                 len(all_backup), len(all_backup) / backup_secs if backup_secs else float("nan"),
                 pct(all_backup, 0.5), pct(all_backup, 0.99),
                 max(all_backup) if all_backup else float("nan"),
                 f"{pct(all_backup, 0.99) / pct(idle, 0.99):.2f}x" if all_backup and idle else "-"])
    print(table(["phase", "seconds per cycle", "max dirty+writeback MiB", "submits", "submits/s", "p50 ms", "p99 ms", "max ms",
                 "p99 vs idle p99"], rows,
                title=f"Submit latency by backup phase: {args.rows:,} rows, concurrency {args.concurrency}, "
                      f"export={args.export}, {args.cycles} cycles, worker nice {args.nice}"
                      f"{' + SCHED_IDLE' if args.sched_idle else ''}"))
    errors = sum(1 for _, _, ok in samples if not ok)
    print(f"errors {errors}; load average {os.getloadavg()[0]:.2f}; runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
