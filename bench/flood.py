"""Connection flood (issue 12): how fast the form answers others while one client holds idle sockets.

Baseline from the issue: one client with ~20,000 idle sockets; the web hit its
open-file limit, probes took 7-8 s or timed out, and asyncio wrote 56 MB of
"accept() out of system resource" tracebacks in 10 s.

Here: the real app under supervisord on 127.0.0.1; the flood comes from
127.0.0.2 (N sockets that never send a byte, held for --hold seconds), the
probes from 127.0.0.1 (GET / and one API submit each). Bounded: N <= 19,000
(this process's own open-file limit), a few seconds each.

    .venv/bin/python bench/flood.py --sockets 3000 19000 --hold 8
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests import gradio_api  # noqa: E402
from tests.apprunner import App  # noqa: E402


def probe(url: str, n: int) -> tuple[list[float], int]:
    times, errors = [], 0
    with httpx.Client(timeout=15) as client:
        for i in range(n):
            started = time.perf_counter()
            try:
                ok = client.get(url + "/").status_code == 200
                ok = ok and gradio_api.add_review(url, "bench", 5, f"flood-probe-{i}", client=client).ok
            except httpx.HTTPError:
                ok = False
            times.append(time.perf_counter() - started)
            errors += not ok
    return times, errors


def flood(port: int, n: int) -> list[socket.socket]:
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sockets.append(s)
    return sockets


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, nargs="+", default=[3000, 19000])
    parser.add_argument("--hold", type=float, default=8.0)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = parser.parse_args()
    if args.smoke:
        args.sockets, args.hold, args.probes = [50], 1.0, 3
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        with App(Path(tmp) / "data", env={"FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"}) as app:
            pid = app.pid("web")
            idle, idle_err = probe(app.url, args.probes)
            rows.append(("idle", 0, idle, idle_err, len(os.listdir(f"/proc/{pid}/fd"))))
            for n in args.sockets:
                n = min(n, hard - 500)
                held = flood(app.port, n)
                try:
                    time.sleep(0.5)
                    started = time.monotonic()
                    times, errors = probe(app.url, args.probes)
                    peak_fds = len(os.listdir(f"/proc/{pid}/fd"))
                    time.sleep(max(0.0, args.hold - (time.monotonic() - started)))
                finally:
                    for s in held:
                        s.close()
                rows.append((f"{n} idle sockets", n, times, errors, peak_fds))
                time.sleep(6)  # the request deadline frees what is left
            logs = app.data_dir / "logs"
            log_bytes = sum(p.stat().st_size for p in logs.glob("web*.log*"))
            rotated = len(list(logs.glob("web*.log.*")))
    print("| flood from 127.0.0.2 | probe p50 ms | probe max ms | probe errors | web open fds |")
    print("|---|---|---|---|---|")
    for label, _, times, errors, fds in rows:
        ms = sorted(t * 1000 for t in times)
        print(f"| {label} | {statistics.median(ms):.0f} | {ms[-1]:.0f} | {errors}/{len(times)} | {fds} |")
    print(f"\nweb logs after all floods: {log_bytes:,} bytes, rotated files: {rotated}")
    print("baseline (issue 12, ~20,000 idle sockets before the fix): probes 7-8 s or timed out, "
          "56 MB of tracebacks in 10 s, web.log rotated 5 times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
