"""CSV export as the worker runs it now: one shard of SHARD_ROWS reviews (what a backup cycle writes at
most), and the whole table for comparison. The product's export (csv.writer over Python's sqlite3)
vs `sqlite3 -csv`, and the formula guard's cost.

    .venv/bin/python bench/export.py [--sizes 100000,1000000] [--runs 3] [--smoke]

Every timed run is a fresh process (`python bench/export.py --child ...`): "process wall" includes
the interpreter's start and the imports, "in-process" is the export call alone. Runs are interleaved round-robin, medians of --runs; CPU = user+sys, peak
RSS from GNU time. Only public names of the product are used: `write_reviews_csv(..., sql=range_sql(lo,
hi))`, the same call the worker makes for a shard.

Checked before timing, at every size: the parsed rows equal a reference written with csv.writer and
`guard_cell` applied in Python to every text cell (the exit code is 1 when they do not).

The guard's cost: the export query alone (no file), the product's `EXPORT_SQL` vs the first-character
rule it replaced, CPU seconds, interleaved.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, median, run_measured, table
from bench.make_db import cached_db
# The CSV's own header (the review's columns and the owner's moderation columns): the reference,
# the CLI baseline and the guard's "before" rule must cover the same cells as the product's export.
from shared.csv_export import COLUMNS, EXPORT_SQL, guard_cell, range_sql, write_reviews_csv
from shared.db import connect
from worker.shards import SHARD_ROWS

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
VARIANTS = {
    "product": "product: write_reviews_csv (csv.writer, Python's sqlite3)",
    "sqlite3_cli": "sqlite3 -csv -header (no guard; baseline)",
}


def export_one(variant: str, db: Path, out: Path, lo: int, hi: int) -> float:
    """One export in this process; the seconds of the call alone."""
    started = time.perf_counter()
    if variant == "product":
        write_reviews_csv(db, out, sql=range_sql(lo, hi))
    else:
        sql = f"SELECT {', '.join(COLUMNS)} FROM reviews WHERE id BETWEEN {lo} AND {hi} ORDER BY id"
        with open(out, "wb") as f:
            subprocess.run([SQLITE3, "-csv", "-header", f"file:{db}?mode=ro", sql], stdout=f, check=True)
    return time.perf_counter() - started


def reference_rows(db: Path, lo: int, hi: int) -> list[list[str]]:
    """What a CSV of these reviews must hold once parsed: every cell guarded in Python, as text."""
    conn = connect(db, readonly=True)
    try:
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM reviews WHERE id BETWEEN ? AND ? ORDER BY id", (lo, hi))
        rows = [list(COLUMNS)] + [["" if v is None else str(guard_cell(v)) for v in row] for row in cur]
    finally:
        conn.close()
    return rows


def parsed(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def check(db: Path, lo: int, hi: int, work: Path) -> str:
    out = work / "check.csv"
    export_one("product", db, out, lo, hi)
    if parsed(out) != reference_rows(db, lo, hi):
        return "DIFFERS from the reference (guard_cell in Python)"
    return "rows == reference"


def first_character_only(column: str) -> str:
    """The guard before the wider rule: only the very first character."""
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "char(9)", "char(13)"])
    text = f"COALESCE(CAST({column} AS TEXT), '')"
    return f"CASE WHEN substr({text}, 1, 1) IN ({starts}) THEN '''' || {text} ELSE {text} END AS {column}"


def guard_cost(db: Path, runs: int) -> list[list]:
    before = f"SELECT {COLUMNS[0]}, {', '.join(first_character_only(c) for c in COLUMNS[1:])} FROM reviews ORDER BY id"
    rules = {"first character only (before)": before, "EXPORT_SQL (now)": EXPORT_SQL}
    cpu: dict[str, list[float]] = {name: [] for name in rules}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for _ in range(runs):  # interleaved: machine noise hits both alike
            for name, sql in rules.items():
                started = time.process_time()
                for _row in conn.execute(sql):
                    pass
                cpu[name].append(time.process_time() - started)
    finally:
        conn.close()
    base = statistics.median(cpu["first character only (before)"])
    return [[name, statistics.median(v), f"{statistics.median(v) / base:.2f}x"] for name, v in cpu.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=f"{SHARD_ROWS},1000000", help="database sizes (rows), comma-separated")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny: 2,000 rows, one run (the suite's smoke test)")
    p.add_argument("--child", nargs=5, metavar=("VARIANT", "DB", "CSV", "LO", "HI"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        variant, db, out, lo, hi = args.child
        print(f"{export_one(variant, Path(db), Path(out), int(lo), int(hi)):.6f}")
        return 0
    sizes = [2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    runs = 1 if args.smoke else args.runs
    work = OUT / ("export-smoke" if args.smoke else "export")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows_out, checks, guard_rows = [], [], []
    for size in sizes:
        db = cached_db(size, quiet=True)
        # The last full shard of the database: what a cycle after a rebase or a first backup writes per shard.
        shard = min(SHARD_ROWS, size)
        hi = (size // shard) * shard
        windows = [("one shard", hi - shard + 1, hi)] + ([("whole table", 1, size)] if size > shard else [])
        for label, lo, hi in windows:
            checks.append([f"{size:,}", label, check(db, lo, hi, work)])
            results: dict[str, list] = {v: [] for v in VARIANTS}
            for _ in range(runs):
                for variant in VARIANTS:
                    out = work / f"{variant}.csv"
                    res = run_measured([PYTHON, str(Path(__file__)), "--child", variant, str(db), str(out),
                                        str(lo), str(hi)])
                    if res.returncode != 0:
                        raise SystemExit(f"{variant} failed: {res.stderr[-2000:]}")
                    results[variant].append((res.seconds, float(res.stdout.strip()), res.cpu, res.max_rss_kib / 1024,
                                             out.stat().st_size))
            base = median(r[0] for r in results["sqlite3_cli"])
            for variant, label_v in VARIANTS.items():
                rs = results[variant]
                wall = median(r[0] for r in rs)
                rows_out.append([f"{size:,}", label, f"{hi - lo + 1:,}", label_v, wall, median(r[1] for r in rs),
                                 median(r[2] for r in rs), median(r[3] for r in rs), f"{wall / base:.2f}x",
                                 f"{rs[0][4] / 2**20:.1f}"])
        guard_rows += [[f"{size:,}", *row] for row in guard_cost(db, runs)]
    print(table(["db rows", "check", "result"], checks, title="Correctness (before timing)"))
    print()
    print(table(["db rows", "what", "rows exported", "export", "process wall s", "in-process s", "CPU s",
                 "peak RSS MiB", "wall vs sqlite3", "CSV MiB"], rows_out,
                title=f"CSV export, fresh process each, median of {runs}"))
    print()
    print(table(["db rows", "guard rule (query only, whole table)", "CPU s", "vs before"], guard_rows,
                title=f"The formula guard's cost, median of {runs}"))
    shutil.rmtree(work, ignore_errors=True)
    # A bench whose reference no longer matches the product measures something else: fail (the smoke test sees it).
    return 0 if all(c[2] == "rows == reference" for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
