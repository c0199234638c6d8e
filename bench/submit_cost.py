"""The cost of one submit, in-process, at 1k rows vs 1M rows: ours vs the seed's.

    .venv/bin/python bench/submit_cost.py [--submits 4000] [--seed-submits 300]

ours: the web handler's database path: shared.reviews.validate + Store.add + Store.latest(10)
      + Store.summary() (one persistent connection, WAL, synchronous=NORMAL, totals from the
      trigger-kept review_stats table).
seed: a new sqlite3 connection per submit (default pragmas: synchronous=FULL), INSERT + commit,
      SELECT * ... ORDER BY id DESC LIMIT 10, SELECT COUNT(id) FROM reviews, close.

Each configuration writes into its own copy of the cached database (bench/out/submit/). "ours"
runs in short blocks (--block submits), 1k and 1M alternating with the order flipped every block,
so background load (the bench machine is shared) hits both alike; the seed runs afterwards, its
full-table COUNTs must not disturb ours. The first block of each is a warm-up. Latency per submit
is wall time (perf_counter); CPU per submit is process_time over all counted submits. The target
uses the median of the paired block ratios (block k at 1M / block k at 1k).

Runtime: ~1 min with the defaults (the seed at 1M costs ~50-100 ms per submit, hence fewer).
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, parse, parser, table
from bench.make_db import working_copy
from shared.store import Store
from shared.reviews import validate



def make_inputs(n: int, seed: int = 7) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    words = "good fine slow fast great bad okay nice form page thanks".split()
    return [(rng.choice(["Anna", "Ben", "", "Chloé", "=cmd"]), rng.randint(1, 5),
             " ".join(rng.choices(words, k=rng.randint(0, 30)))) for _ in range(n)]


STEPS = ("validate", "add", "latest(10)", "summary()")


class Ours:
    def __init__(self, path: Path):
        self.store = Store(path)
        self.steps: list[tuple[float, float, float, float]] = []

    def submit(self, name, rating, comments):
        t0 = time.perf_counter()
        review = validate(name, rating, comments)
        t1 = time.perf_counter()
        self.store.add(review)
        t2 = time.perf_counter()
        rows = self.store.latest(10)
        t3 = time.perf_counter()
        summary = self.store.summary()
        t4 = time.perf_counter()
        self.steps.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
        return rows, summary.total, summary.average

    def close(self):
        self.store.close()


class Seed:
    def __init__(self, path: Path):
        self.path = path

    def submit(self, name, rating, comments):
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("INSERT INTO reviews (name, rating, comments) VALUES (?, ?, ?)", (name, rating, comments))
            conn.commit()
            rows = conn.execute("SELECT * FROM reviews ORDER BY id DESC LIMIT 10").fetchall()
            total = conn.execute("SELECT COUNT(id) FROM reviews").fetchone()[0]
        finally:
            conn.close()
        return rows, total

    def close(self):
        pass


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else float("nan")


def run_block(c: dict, inputs, count: bool) -> None:
    impl, lat = c["impl"], []
    mark = len(getattr(impl, "steps", []))
    cpu0 = time.process_time()
    for name, rating, comments in inputs[: c["per_block"]]:
        t0 = time.perf_counter()
        impl.submit(name, rating, comments)
        lat.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    if count:
        c["lat"].extend(lat)
        c["block_medians"].append(pct(lat, 0.5))
        c["cpu"] += cpu
        c["n"] += len(lat)
    elif hasattr(impl, "steps"):
        del impl.steps[mark:]  # warm-up steps are not counted either


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--submits", type=int, default=4000, help="counted submits per 'ours' configuration")
    p.add_argument("--seed-submits", type=int, default=300, help="counted submits per 'seed' configuration")
    p.add_argument("--small", type=int, default=1_000)
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--block", type=int, default=100, help="submits per block (ours)")
    p.add_argument("--time-limit", type=float, default=300.0, help="stop adding blocks after this many seconds")
    args = parse(p, argv, smoke={"submits": 40, "seed_submits": 20, "small": 500, "large": 2000, "block": 10,
                                 "time_limit": 30})

    def config(kind, cls, rows, per_block):
        path = working_copy(rows, OUT / "submit" / f"{kind}-{rows}")
        return {"kind": kind, "rows": rows, "impl": cls(path), "per_block": per_block, "lat": [],
                "block_medians": [], "cpu": 0.0, "n": 0}

    ours = [config("ours", Ours, rows, args.block) for rows in (args.small, args.large)]
    seed_blocks = 6
    seeds = [config("seed", Seed, rows, max(1, args.seed_submits // seed_blocks)) for rows in (args.small, args.large)]
    inputs = make_inputs(max(args.block, seeds[0]["per_block"]))
    started = time.perf_counter()

    def alternate(pair, n_blocks: int, label: str) -> None:
        """Short blocks, small and large alternating, the order flipped every block; the first pair
        warms up (not counted). Stops after half of --time-limit."""
        since = time.perf_counter()
        for b in range(n_blocks + 1):
            for c in (pair if b % 2 else pair[::-1]):
                run_block(c, inputs, count=b > 0)
            if time.perf_counter() - since > args.time_limit / 2:
                print(f"time limit: {label} stopped after {b} counted blocks")
                break

    alternate(ours, max(1, args.submits // args.block), "ours")
    alternate(seeds, seed_blocks, "seed")  # afterwards: its full-table COUNTs must not disturb ours
    configs = ours + seeds
    for c in configs:
        c["impl"].close()

    base = pct(ours[0]["lat"], 0.5)
    rows_out = []
    for c in configs:
        med = pct(c["lat"], 0.5)
        bm = c["block_medians"]
        rows_out.append([c["kind"], f"{c['rows']:,}", c["n"], f"{med * 1e6:,.0f}", f"{pct(c['lat'], 0.9) * 1e6:,.0f}",
                         f"{pct(c['lat'], 0.99) * 1e6:,.0f}", f"{min(bm) * 1e6:,.0f}-{max(bm) * 1e6:,.0f}",
                         f"{c['cpu'] / max(c['n'], 1) * 1e6:,.0f}", f"{med / base:.2f}x"])
    print(table(["impl", "rows at start", "submits", "median us", "p90 us", "p99 us", "block medians us",
                 "CPU us/submit", "median vs ours@1k"], rows_out,
                title="One submit: validate + insert + latest 10 + totals (in-process)"))
    step_rows = []
    for i, step in enumerate(STEPS):
        a = pct([s[i] for s in ours[0]["impl"].steps], 0.5) * 1e6
        b = pct([s[i] for s in ours[1]["impl"].steps], 0.5) * 1e6
        step_rows.append([step, f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}"])
    print(table(["ours, step", f"median us @{args.small:,}", f"median us @{args.large:,}", "difference us"],
                step_rows, title="Where the time goes (ours)"))
    pooled_ratio = pct(ours[1]["lat"], 0.5) / base
    paired = sorted(b1 / b0 for b0, b1 in zip(ours[0]["block_medians"], ours[1]["block_medians"]))
    paired_ratio = paired[len(paired) // 2]
    print(f"\nours@{args.large:,} / ours@{args.small:,}: pooled medians {pooled_ratio:.3f}, median of paired block "
          f"ratios {paired_ratio:.3f} (target <= 1.10: {'met' if paired_ratio <= 1.10 else 'NOT met'}); "
          f"load average {os.getloadavg()[0]:.2f}; runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
