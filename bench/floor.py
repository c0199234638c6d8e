"""The form against its floor: the same page (`build_app`) over a store that does nothing.

    .venv/bin/python bench/floor.py [--rows 1000] [--concurrency 8] [--requests 300] [--rounds 3]

Three servers, started once and measured in alternating rounds (the bench machine is
shared, so each variant sees the same background load):
  floor       bench/noop_app.py: build_app + NoopStore, plain gr.mount_gradio_app;
  floor+web   bench/noop_app.py --like-web: the same, served as web/__main__.py serves the
              form (mount arguments, body-size and upload middlewares);
  form        `python -m web` on a private copy of a --rows database (rate limit off).
So form/floor is the whole extra cost, floor+web/floor the mount and middlewares, and
form/(floor+web) the database (insert + latest 10 + totals). Bounded: --requests per round,
--rounds rounds, 127.0.0.1 only. Prints req/s medians, p50/p99 and the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, ROOT, median, stop_group, table
from bench.load import run_level
from bench.make_db import working_copy
from tests.apprunner import free_port, wait_until


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, log_path: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port)}
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited rc={self.proc.returncode}, see {log_path}")
            try:
                return httpx.get(self.url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(up, 120, 0.2, name)

    def cpu_seconds(self) -> float:
        """CPU time of the server process (user + system): unlike req/s, barely moved by other
        processes on a shared machine, so it shows the cost of a request when wall times are noisy."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_group(self.proc)
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=300, help="requests per round and variant")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    work = OUT / "floor"
    work.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    base.update(GRADIO_ANALYTICS_ENABLED="False", FEEDBACK_RATE_LIMIT_PER_MINUTE="0", LOG_LEVEL="WARNING")
    working_copy(args.rows, work / "data")
    servers = []
    try:
        servers.append(Server("floor", [PYTHON, "bench/noop_app.py"], base, work / "floor.log"))
        servers.append(Server("floor+web", [PYTHON, "bench/noop_app.py", "--like-web"], base, work / "floor-web.log"))
        servers.append(Server("form", [PYTHON, "-m", "web"], {**base, "FEEDBACK_DATA_DIR": str(work / "data")},
                              work / "form.log"))
        results: dict[str, list] = {s.name: [] for s in servers}
        cpu_ms: dict[str, list] = {s.name: [] for s in servers}
        for s in servers:  # warm-up, not counted
            run_level(s.url, args.concurrency, 40)
        for _ in range(args.rounds):
            for s in servers:
                before = s.cpu_seconds()
                result = run_level(s.url, args.concurrency, args.requests)
                results[s.name].append(result)
                cpu_ms[s.name].append((s.cpu_seconds() - before) * 1000 / max(1, result.ok + result.errors))
    finally:
        for s in servers:
            s.stop()

    rps = {name: median([r.rps for r in rs]) for name, rs in results.items()}
    cpu = {name: median(v) for name, v in cpu_ms.items()}
    rows = []
    for name, rs in results.items():
        rows.append([name, args.concurrency, f"{rps[name]:.1f}", " / ".join(f"{r.rps:.1f}" for r in rs),
                     f"{median([r.p50 for r in rs]):.1f}", f"{median([r.p99 for r in rs]):.1f}",
                     sum(r.errors for r in rs), f"{rps[name] / rps['floor']:.2f}", f"{cpu[name]:.2f}",
                     f"{cpu['floor'] / cpu[name]:.2f}"])
    print(table(["variant", "conc.", "req/s (median)", "req/s per round", "p50 ms", "p99 ms", "errors",
                 "req/s vs floor", "server CPU ms/req", "CPU: floor/variant"], rows,
                title=f"form vs floor, {args.rows:,} reviews, {args.rounds} rounds x {args.requests} requests"))
    print(f"req/s: floor+web/floor = {rps['floor+web'] / rps['floor']:.2f}x (mount + middlewares); "
          f"form/(floor+web) = {rps['form'] / rps['floor+web']:.2f}x (database); "
          f"form/floor = {rps['form'] / rps['floor']:.2f}x (issue's baseline 0.77-0.88x at c=8)")
    print(f"server CPU per request: floor {cpu['floor']:.2f} ms, floor+web {cpu['floor+web']:.2f} ms, "
          f"form {cpu['form']:.2f} ms -> form capacity {cpu['floor'] / cpu['form']:.2f}x of the floor when CPU-bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
