"""The cost of one submit, in-process, at 1k rows vs 1M rows: ours vs the seed's.

    .venv/bin/python bench/submit_cost.py [--submits 4000] [--seed-submits 300]

ours: the web handler's database path: shared.reviews.validate + Store.add + Store.latest(10)
      + Store.summary() (one persistent connection, WAL, synchronous=NORMAL, totals from the
      trigger-kept review_stats table).
seed: a new sqlite3 connection per submit (default pragmas: synchronous=FULL), INSERT + commit,
      SELECT * ... ORDER BY id DESC LIMIT 10, SELECT COUNT(id) FROM reviews, close.

Each configuration writes into its own copy of the cached database (bench/out/submit/). Submits
run in interleaved blocks (ours@1k, ours@1M, seed@1k, seed@1M, repeat) so that background load
is spread evenly; the first block of each is a warm-up and not counted. Latency per submit is
wall time (perf_counter); CPU per submit is process_time over all counted submits.

Runtime: ~1 min with the defaults (the seed at 1M costs ~50-100 ms per submit, hence fewer).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, table  # noqa: E402
from bench.make_db import working_copy  # noqa: E402
from shared.db import Store  # noqa: E402
from shared.reviews import validate  # noqa: E402

BLOCKS = 8  # + 1 warm-up block per configuration


def make_inputs(n: int, seed: int = 7) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    words = "good fine slow fast great bad okay nice form page thanks".split()
    return [(rng.choice(["Anna", "Ben", "", "Chloé", "=cmd"]), rng.randint(1, 5),
             " ".join(rng.choices(words, k=rng.randint(0, 30)))) for _ in range(n)]


class Ours:
    def __init__(self, path: Path):
        self.store = Store(path)

    def submit(self, name, rating, comments):
        review = validate(name, rating, comments)
        self.store.add(review)
        rows = self.store.latest(10)
        summary = self.store.summary()
        return rows, summary.total, summary.average

    def close(self):
        self.store.close()


class Seed:
    def __init__(self, path: Path):
        self.path = path

    def submit(self, name, rating, comments):
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("INSERT INTO reviews (name, review, comments) VALUES (?, ?, ?)", (name, rating, comments))
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
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--submits", type=int, default=4000, help="counted submits per 'ours' configuration")
    p.add_argument("--seed-submits", type=int, default=300, help="counted submits per 'seed' configuration")
    p.add_argument("--small", type=int, default=1_000)
    p.add_argument("--large", type=int, default=1_000_000)
    p.add_argument("--time-limit", type=float, default=300.0, help="stop adding blocks after this many seconds")
    args = p.parse_args(argv)

    configs = []
    for kind, cls, total in (("ours", Ours, args.submits), ("seed", Seed, args.seed_submits)):
        for rows in (args.small, args.large):
            path = working_copy(rows, OUT / "submit" / f"{kind}-{rows}")
            configs.append({"kind": kind, "rows": rows, "impl": cls(path), "per_block": max(1, total // BLOCKS),
                            "lat": [], "cpu": 0.0, "n": 0})
    inputs = make_inputs(max(c["per_block"] for c in configs))
    started = time.perf_counter()
    for block in range(BLOCKS + 1):
        for c in configs:
            impl, lat = c["impl"], []
            cpu0 = time.process_time()
            for name, rating, comments in inputs[: c["per_block"]]:
                t0 = time.perf_counter()
                impl.submit(name, rating, comments)
                lat.append(time.perf_counter() - t0)
            cpu = time.process_time() - cpu0
            if block > 0:  # block 0 warms caches and connections
                c["lat"].extend(lat)
                c["cpu"] += cpu
                c["n"] += len(lat)
        if time.perf_counter() - started > args.time_limit:
            print(f"time limit reached after {block} counted blocks")
            break
    for c in configs:
        c["impl"].close()

    ours_small = next(c for c in configs if c["kind"] == "ours" and c["rows"] == args.small)
    base = pct(ours_small["lat"], 0.5)
    rows_out = []
    for c in configs:
        med = pct(c["lat"], 0.5)
        rows_out.append([c["kind"], f"{c['rows']:,}", c["n"], f"{med * 1e6:,.0f}", f"{pct(c['lat'], 0.9) * 1e6:,.0f}",
                         f"{pct(c['lat'], 0.99) * 1e6:,.0f}", f"{c['cpu'] / max(c['n'], 1) * 1e6:,.0f}",
                         f"{med / base:.2f}x"])
    print(table(["impl", "rows at start", "submits", "median us", "p90 us", "p99 us", "CPU us/submit",
                 "median vs ours@1k"], rows_out,
                title="One submit: validate + insert + latest 10 + totals (in-process)"))
    ours_large = next(c for c in configs if c["kind"] == "ours" and c["rows"] == args.large)
    ratio = pct(ours_large["lat"], 0.5) / base
    print(f"\nours@{args.large:,} / ours@{args.small:,} median = {ratio:.3f} "
          f"(target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'}); runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
