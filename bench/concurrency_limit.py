"""Does add_review's concurrency_limit matter? The real web with the limit patched, side by side.

    .venv/bin/python bench/concurrency_limit.py [--limits 1,2,8,32] [--rows 1000000]
                                                [--concurrency 8,32] [--requests 240] [--rounds 3]

Starts the real web (`python -m web`, no worker, rate limit off, a copy of the cached database)
once per limit, with gradio's EventListener patched so that add_review's concurrency_limit is
the given value (web/app.py has 8; bench-only monkeypatch), all servers up at once. Then, for each
client concurrency, runs --rounds rounds over all limits in turn (so background load hits each
alike) and reports median req/s and pooled p50/p99.

Runtime: ~2-3 min with the defaults.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import OUT, PYTHON, ROOT, stop_group, table
from bench.load import LevelResult, run_level
from bench.make_db import working_copy
from tests.apprunner import free_port, wait_until

# Patch gr.Button.click / gr.Textbox.submit (what web/app.py calls) to override concurrency_limit.
WRAPPER = """
import os, runpy
import gradio as gr
limit = os.environ["BENCH_CONCURRENCY_LIMIT"]
limit = None if limit == "none" else int(limit)
for cls, name in ((gr.Button, "click"), (gr.Textbox, "submit")):
    orig = getattr(cls, name)
    def patched(self, *args, __orig=orig, **kwargs):
        if kwargs.get("concurrency_limit") is not None:
            kwargs["concurrency_limit"] = limit
        return __orig(self, *args, **kwargs)
    setattr(cls, name, patched)
runpy.run_module("web", run_name="__main__")
"""


def start(limit: str, rows: int) -> tuple[subprocess.Popen, str]:
    data = OUT / "concurrency_limit" / f"limit-{limit}"
    shutil.rmtree(data, ignore_errors=True)
    working_copy(rows, data)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_", "BENCH_"))}
    env.update(FEEDBACK_DATA_DIR=str(data), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               FEEDBACK_RATE_LIMIT_PER_MINUTE="0", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT),
               BENCH_CONCURRENCY_LIMIT=limit)
    log = open(data / "web.log", "wb")
    proc = subprocess.Popen([PYTHON, "-c", WRAPPER], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limits", default="1,2,8,32")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--concurrency", default="8,32")
    p.add_argument("--requests", type=int, default=240, help="per limit and level, all rounds")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    started = time.perf_counter()
    limits = args.limits.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    res: dict[tuple[str, int], list[LevelResult]] = {}
    try:
        for lim in limits:
            servers[lim] = start(lim, args.rows)
        for lim, (proc, url) in servers.items():
            def up(proc=proc, url=url):
                if proc.poll() is not None:
                    raise RuntimeError(f"web (limit {lim}) exited rc={proc.returncode}")
                try:
                    return httpx.get(url + "/", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False
            wait_until(up, 180, 0.3, f"the web with limit {lim}")
            run_level(url, 8, 40, warmup=0)  # warm-up
        for c in levels:
            for _ in range(args.rounds):
                for lim, (_, url) in servers.items():
                    res.setdefault((lim, c), []).append(
                        run_level(url, c, max(1, args.requests // args.rounds), max_seconds=60))
    finally:
        for proc, _ in servers.values():
            stop_group(proc)

    rows = []
    for c in levels:
        for lim in limits:
            rs = res[(lim, c)]
            lat = sorted(x for r in rs for x in r.latencies_ms)

            def pct(q: float) -> float:
                return lat[min(len(lat) - 1, int(q * (len(lat) - 1) + 0.5))] if lat else float("nan")
            rps = sorted(r.rps for r in rs)[len(rs) // 2]
            rows.append([c, lim + (" (web/app.py)" if lim == "8" else ""), rps, pct(0.5), pct(0.99),
                         sum(r.errors for r in rs)])
    print(table(["client concurrency", "add_review concurrency_limit", "req/s (median of rounds)", "p50 ms",
                 "p99 ms", "errors"], rows,
                title=f"Real web, {args.rows:,} rows, concurrency_limit patched; {args.requests} requests per cell "
                      f"in {args.rounds} interleaved rounds"))
    print(f"load average {os.getloadavg()[0]:.2f}; runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
