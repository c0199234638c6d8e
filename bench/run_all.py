"""The load benchmark, one script: the real app vs the no-op floor at 1k and 1M reviews, idle and
during back-to-back backups, the -wal size and the web's RSS (default); or, with --floor, the
form's server CPU per submit against its floor.

    bash bench/run_all [--requests 300] [--rss-submits 10000] [--quick]
    bash bench/run_all --floor [--small 1000] [--concurrency 8] [--requests 300] [--rounds 3] [--spam-checks]

Default mode:
  - bench/noop_app.py (the floor: same API, no database), started once;
  - the real app under supervisord (tests/apprunner.App: worker + web, FEEDBACK_RATE_LIMIT_PER_MINUTE=0,
    BACKUP_INTERVAL_SECONDS=1) on a private copy of the cached database (bench/out/run_all/):
      (a) --small reviews (1k), worker stopped after its first backup (idle);
      (b) --large reviews (1M), worker stopped after its first backup (idle);
      (c) the same 1M app with the worker started again: it backs up back to back (interval 1 s,
          and the load keeps writing, so every cycle publishes); --backup-requests per level
          (2x --requests) so that several cycles overlap.
    Each level (concurrency 1, 8, 32; --requests each, split in --rounds rounds) of (a) and (b)
    runs as rounds of a no-op round then a real round, so both see the same background load (the
    bench machine is shared); (c) is compared with (b)'s no-op rounds and (b)'s p99.
  - the -wal file of the 1M database is sampled every 0.1 s during (b) and (c);
  - the web's VmRSS (/proc/<pid>/status) of the 1M app after start, after a 50-submit warm-up
    ("before"), after each level of (b) and (c), and every 1000 submits of a top-up at
    concurrency 8 (worker stopped) until --rss-submits submits in all ("after").
  Runtime: ~6-7 min with the defaults on the 2-core bench machine (the 1M database is built once,
  ~8 s, then cached).

--floor (the form against its floor: the same page, `build_app`, over a store that does nothing).
Three servers, started once and measured in alternating rounds (--requests per round and variant):
  floor       bench/noop_app.py: build_app + NoopStore, plain gr.mount_gradio_app;
  floor+web   bench/noop_app.py --like-web: the same, served as web/__main__.py serves the
              form (mount arguments, body-size and upload middlewares);
  form        `python -m web` on a private copy of a --small database (rate limit off).
So form/floor is the whole extra cost, floor+web/floor the mount and middlewares, and
form/(floor+web) the database (insert + latest 10 + totals). The server's CPU per request (from
/proc) is the number to read on a shared machine; req/s moves with the background load.
--spam-checks: every submit goes through the page's own submit event (Gradio's queue, as the
browser sends it: the hidden trap field empty and a load-time token, minted with each server's
key from its data folder and dated a minute back), so the page-only checks run too; and a
fourth server, "form, no checks", is the form with the time, duplicate and link checks off
(the token's signature is still checked and a new one issued: that part cannot be turned off).
form/(form, no checks) is then the spam checks' share. ~1-2 min (~5 with --spam-checks).
Bounded everywhere: requests per round, a time bound per round, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, ROOT, Server, median, table
from bench.load import LevelResult, review_inputs, run_level
from bench.make_db import working_copy
from tests.apprunner import App, wait_until
from web.bot_guard import KEY_BYTES


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


def Noop(log_path: Path) -> Server:
    """The floor (bench/noop_app.py) as a server of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    return Server("the no-op app", [PYTHON, str(ROOT / "bench" / "noop_app.py")],
                  {**env, "GRADIO_ANALYTICS_ENABLED": "False"}, log_path)


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


# ---- --floor: the form against its floor

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


def form_vs_floor(args) -> int:
    """--floor: see the module's doc."""
    work = OUT / "floor"
    work.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    base.update(GRADIO_ANALYTICS_ENABLED="False", FEEDBACK_RATE_LIMIT_PER_MINUTE="0", LOG_LEVEL="WARNING")
    working_copy(args.small, work / "data")
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
            working_copy(args.small, work / "data-no-checks")
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
                title=f"form vs floor, {args.small:,} reviews, {args.rounds} rounds x {args.requests} requests"
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--floor", action="store_true",
                   help="the form's server CPU per submit against its floor (see the doc) instead of the load table")
    p.add_argument("--requests", type=int, default=300,
                   help="requests per concurrency level (all rounds); with --floor: per round and variant")
    p.add_argument("--rounds", type=int, default=3,
                   help="each level is split in this many rounds, no-op and real alternating")
    p.add_argument("--backup-requests", type=int, default=0,
                   help="requests per level during backups (c); default 2x --requests, so that several "
                        "backup cycles overlap the load")
    p.add_argument("--rss-submits", type=int, default=10_000,
                   help="web RSS is read after start+warm-up and after this many submits in all "
                        "(those of (b) and (c) count, the rest are sent at concurrency 8)")
    p.add_argument("--small", type=int, default=1_000, help="reviews of the small db (--floor: its only db)")
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--max-seconds", type=float, default=60.0, help="time bound per round")
    p.add_argument("--concurrency", type=int, default=8, help="--floor: clients (the load table runs 1, 8, 32)")
    p.add_argument("--spam-checks", action="store_true",
                   help="--floor: submit through the page's event (trap + token) and add the form with its checks off")
    p.add_argument("--quick", action="store_true", help="smoke test: 100k instead of 1M, 60 requests, 1000 RSS submits")
    p.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = p.parse_args(argv)
    if args.floor:
        if args.smoke:
            args.requests, args.rounds = 20, 1
        print(f"load average at start {os.getloadavg()[0]:.2f}", flush=True)
        rc = form_vs_floor(args)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        return rc
    if args.quick:
        args.requests, args.rss_submits, args.large = 60, 1000, 100_000
    if args.smoke:
        args.requests, args.rounds, args.rss_submits, args.small, args.large, args.max_seconds = 6, 1, 20, 500, 2000, 30
    args.backup_requests = args.backup_requests or 2 * args.requests
    return load_table(args)


def load_table(args) -> int:
    """The default mode: see the module's doc."""
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
        run_level(app.url, 8, 5 if args.smoke else 50, warmup=0, **load_kw)  # first-call costs, not counted anywhere
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
