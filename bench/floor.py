"""The form against its floor: the same page (`build_app`) over a store that does nothing.

    .venv/bin/python bench/floor.py [--rows 1000] [--concurrency 8] [--requests 300] [--rounds 3] [--spam-checks]

Three servers, started once and measured in alternating rounds (the bench machine is
shared, so each variant sees the same background load):
  floor       bench/noop_app.py: build_app + NoopStore, plain gr.mount_gradio_app;
  floor+web   bench/noop_app.py --like-web: the same, served as web/__main__.py serves the
              form (mount arguments, body-size and upload middlewares);
  form        `python -m web` on a private copy of a --rows database (rate limit off).
So form/floor is the whole extra cost, floor+web/floor the mount and middlewares, and
form/(floor+web) the database (insert + latest 10 + totals).
--spam-checks: every submit goes through the page's own submit event (Gradio's queue, as the
browser sends it: the hidden trap field empty and a load-time token, minted with each server's
key from its data folder and dated a minute back), so the page-only checks run too; and a
fourth server, "form, no checks", is the form with the time, duplicate and link checks off
(the token's signature is still checked and a new one issued: that part cannot be turned off).
form/(form, no checks) is then the spam checks' share. Bounded: --requests per round,
--rounds rounds, 127.0.0.1 only. Prints req/s medians, p50/p99 and the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, Server, median, table
from bench.load import review_inputs, run_level
from bench.make_db import working_copy
from web.bot_guard import KEY_BYTES

# The form with its spam checks off: what `--spam-checks` compares the form with.
NO_CHECKS = {"FEEDBACK_MIN_SUBMIT_SECONDS": "0", "FEEDBACK_DUPLICATE_WINDOW_SECONDS": "0",
             "FEEDBACK_MAX_LINKS": "1000"}


class PageSubmit:
    """One submit as the page sends it: POST /gradio_api/queue/join with the page's event (found in
    /config by its function's name, web/app.py page_submit), then the event stream until the result."""

    def __init__(self, url: str, data_dir: Path):
        config = httpx.get(url + "/config", timeout=30).json()
        (self.fn_index,) = [d["id"] for d in config["dependencies"] if d.get("api_name") == "page_submit"]
        self.key = (data_dir / "bot-guard.key").read_bytes()[:KEY_BYTES]

    def token(self) -> str:
        body = f"{int((time.time() - 60) * 1000)}.{secrets.token_hex(8)}"  # "loaded" a minute ago
        return f"{body}.{hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()[:32]}"

    def __call__(self, client: httpx.Client, url: str, data: list) -> tuple[bool, str]:
        session = secrets.token_hex(8)
        r = client.post(f"{url}/gradio_api/queue/join",
                        json={"data": [*data, "", self.token()], "fn_index": self.fn_index,
                              "session_hash": session, "event_data": None, "trigger_id": None})
        if r.status_code != 200:
            return False, f"POST {r.status_code}: {r.text[:120]}"
        with client.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if msg.get("success"):
                        return True, ""
                    return False, str((msg.get("output") or {}).get("error"))[:120]
        return False, "stream ended without a result"


def guard_cost_us(data_dir: Path, calls: int = 2000) -> float:
    """The spam checks alone, in this process: microseconds per page submit through
    `BotGuard.admit` (trap, token, links, duplicates on a real database; the store call a no-op)."""
    from random import Random

    from shared.config import load_config
    from shared.store import Store
    from shared.reviews import validate
    from web.bot_guard import BotGuard, PageFields

    store = Store(data_dir / "reviews.db")
    try:
        guard = BotGuard(load_config({"FEEDBACK_DATA_DIR": str(data_dir), "FEEDBACK_MIN_SUBMIT_SECONDS": "0"}), store)
        rng = Random(7)
        reviews = [validate(*review_inputs(rng)) for _ in range(calls)]
        tokens = [guard.issue() for _ in range(calls)]
        started = time.process_time()
        for review, token in zip(reviews, tokens):
            try:
                guard.admit(review, lambda: 0, client="127.0.0.1", page=PageFields("", token))
            except Exception:  # noqa: BLE001 - a refused duplicate costs what a pass does
                pass
        return (time.process_time() - started) / calls * 1e6
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=300, help="requests per round and variant")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--spam-checks", action="store_true",
                   help="submit through the page's event (trap + token) and add the form with its checks off")
    p.add_argument("--smoke", action="store_true", help="tiny: 20 requests, one round (the suite's smoke test)")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.rounds = 20, 1

    work = OUT / "floor"
    work.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    base.update(GRADIO_ANALYTICS_ENABLED="False", FEEDBACK_RATE_LIMIT_PER_MINUTE="0", LOG_LEVEL="WARNING")
    working_copy(args.rows, work / "data")
    servers = []
    senders: dict[str, PageSubmit | None] = {}
    try:
        floor_env = {**base, "FEEDBACK_DATA_DIR": str(work / "floor-data")}  # the floor's key lives there
        servers.append(Server("floor", [PYTHON, "bench/noop_app.py"], floor_env, work / "floor.log"))
        servers.append(Server("floor+web", [PYTHON, "bench/noop_app.py", "--like-web"], floor_env,
                              work / "floor-web.log"))
        servers.append(Server("form", [PYTHON, "-m", "web"], {**base, "FEEDBACK_DATA_DIR": str(work / "data")},
                              work / "form.log"))
        if args.spam_checks:
            working_copy(args.rows, work / "data-no-checks")
            servers.append(Server("form, no checks", [PYTHON, "-m", "web"],
                                  {**base, **NO_CHECKS, "FEEDBACK_DATA_DIR": str(work / "data-no-checks")},
                                  work / "form-no-checks.log"))
        for s in servers:
            data_dir = work / ("floor-data" if s.name.startswith("floor") else
                               "data-no-checks" if s.name == "form, no checks" else "data")
            senders[s.name] = PageSubmit(s.url, data_dir) if args.spam_checks else None
        results: dict[str, list] = {s.name: [] for s in servers}
        cpu_ms: dict[str, list] = {s.name: [] for s in servers}
        for s in servers:  # warm-up, not counted
            run_level(s.url, args.concurrency, 5 if args.smoke else 40, send=senders[s.name])
        for round_no in range(args.rounds):
            for s in servers:
                before = s.cpu_seconds()
                # A seed per round: the same texts again would be refused as duplicates (the spam check).
                result = run_level(s.url, args.concurrency, args.requests, send=senders[s.name], seed=2 + round_no)
                results[s.name].append(result)
                cpu_ms[s.name].append((s.cpu_seconds() - before) * 1000 / max(1, result.ok + result.errors))
    finally:
        for s in servers:
            s.stop()

    for name, rs in results.items():
        samples = [e for r in rs for e in r.error_samples][:2]
        if samples:
            print(f"{name}: errors such as {samples}")
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
                title=f"form vs floor, {args.rows:,} reviews, {args.rounds} rounds x {args.requests} requests"
                      + (", submits through the page's event (spam checks)" if args.spam_checks else "")))
    print(f"req/s: floor+web/floor = {rps['floor+web'] / rps['floor']:.2f}x (mount + middlewares); "
          f"form/(floor+web) = {rps['form'] / rps['floor+web']:.2f}x (database); "
          f"form/floor = {rps['form'] / rps['floor']:.2f}x (issue's baseline 0.77-0.88x at c=8)")
    print(f"server CPU per request: floor {cpu['floor']:.2f} ms, floor+web {cpu['floor+web']:.2f} ms, "
          f"form {cpu['form']:.2f} ms -> form capacity {cpu['floor'] / cpu['form']:.2f}x of the floor when CPU-bound")
    if args.spam_checks:
        print(f"spam checks: form {cpu['form']:.2f} ms vs form, no checks {cpu['form, no checks']:.2f} ms of server "
              f"CPU per submit ({cpu['form'] - cpu['form, no checks']:+.2f} ms); the checks alone, in-process: "
              f"{guard_cost_us(work / 'data-no-checks'):.0f} µs per submit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
