"""The web's RSS over many API submits, with Gradio's per-session state capacity as is and lowered.

    .venv/bin/python bench/web_rss.py [--capacities default,500,500/500] [--submits 3000] [--step 500]

A capacity is STATE[/ANALYTICS]: STATE sets demo.state_session_capacity ("default": untouched),
ANALYTICS sets GRADIO_ANALYTICS_MAX_EVENTS (Gradio keeps a small dict per event for its
analytics page, the last 10000 by default).

Every call to /gradio_api/call/<api> without a session hash is a new Gradio session, and Gradio
keeps a SessionState (a copy of every block's config) for the last `state_session_capacity`
sessions (default 10000, an attribute of gr.Blocks read when the app is mounted). This starts
the real web (`python -m web`, no worker, on a copy of the 1k database, rate limit off) once per
capacity, with web.app.build_app wrapped to set `demo.state_session_capacity` (bench-only
monkeypatch; "default" leaves it alone), sends --submits submits at concurrency 8 and samples
VmRSS every --step submits.

Runtime: ~1 min per capacity per 3000 submits on the 2-core bench machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._common import OUT, PYTHON, ROOT, stop_group, table
from bench.load import run_level
from bench.make_db import working_copy
from tests.apprunner import free_port, wait_until

WRAPPER = """
import os, runpy
import web.app as wa
cap = os.environ.get("BENCH_STATE_CAPACITY")
if cap:
    _orig = wa.build_app
    def build_app(*args, **kwargs):
        demo = _orig(*args, **kwargs)
        demo.state_session_capacity = int(cap)
        return demo
    wa.build_app = build_app
runpy.run_module("web", run_name="__main__")
"""


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(capacity: str, submits: int, step: int) -> list[tuple[int, float]]:
    data = OUT / "web_rss" / f"cap-{capacity.replace('/', '-')}"
    working_copy(1_000, data)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_", "BENCH_"))}
    env.update(FEEDBACK_DATA_DIR=str(data), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               FEEDBACK_RATE_LIMIT_PER_MINUTE="0", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    state_cap, _, analytics_cap = capacity.partition("/")
    if state_cap != "default":
        env["BENCH_STATE_CAPACITY"] = state_cap
    if analytics_cap:
        env["GRADIO_ANALYTICS_MAX_EVENTS"] = analytics_cap  # Gradio's own setting (default 10000)
    url = f"http://127.0.0.1:{port}"
    with open(data / "web.log", "wb") as log:
        proc = subprocess.Popen([PYTHON, "-c", WRAPPER], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            def up():
                if proc.poll() is not None:
                    raise RuntimeError(f"web exited rc={proc.returncode}; see {data / 'web.log'}")
                try:
                    return httpx.get(url + "/", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False
            wait_until(up, 120, 0.2, "the web")
            run_level(url, 8, 50, warmup=8)  # warm-up: first-call costs, not counted
            curve = [(0, vm_rss_mib(proc.pid))]
            done = 0
            started = time.perf_counter()
            while done < submits and time.perf_counter() - started < 600:
                r = run_level(url, 8, min(step, submits - done), warmup=0, max_seconds=120)
                if r.ok == 0:
                    raise RuntimeError(f"no submit succeeded: {r.error_samples}")
                done += r.requests
                curve.append((done, vm_rss_mib(proc.pid)))
            return curve
        finally:
            stop_group(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--capacities", default="default,500,500/500")
    p.add_argument("--submits", type=int, default=3000)
    p.add_argument("--step", type=int, default=500)
    args = p.parse_args(argv)
    started = time.perf_counter()
    caps = args.capacities.split(",")
    curves = {c: measure(c, args.submits, args.step) for c in caps}
    points = sorted({n for c in curves.values() for n, _ in c})
    rows = []
    for n in points:
        rows.append([f"{n:,}"] + [next((f"{v:.0f}" for m, v in curves[c] if m == n), "-") for c in caps])
    print(table(["submits after warm-up"] + [f"VmRSS MiB, capacity={c}" for c in caps], rows,
                title="Web RSS vs API submits (concurrency 8, real web, 1k-row db)"))
    for c in caps:
        (_, v0), (n1, v1) = curves[c][0], curves[c][-1]
        print(f"capacity={c}: {v0:.0f} -> {v1:.0f} MiB over {n1:,} submits "
              f"({(v1 - v0) / max(n1, 1) * 1000:+.1f} MiB per 1000)")
    print(f"runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
