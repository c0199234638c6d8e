"""The formula guard's cost (issue 12): first character only vs the wider rule of shared/csv_export.py.

Runs the export query alone (no CSV writing) over a bench database and prints
the median CPU seconds of each rule. Make the database first with
`bench/make_db.py` (bench/export.py does it too):

    .venv/bin/python bench/guard_cost.py [--db bench/out/reviews-1000000-s1.db] [--runs 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.csv_export import _guarded  # noqa: E402
from shared.db import COLUMNS  # noqa: E402


def first_character_only(column: str) -> str:
    """The rule before issue 12."""
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "char(9)", "char(13)"])
    text = f"COALESCE(CAST({column} AS TEXT), '')"
    return f"CASE WHEN substr({text}, 1, 1) IN ({starts}) THEN '''' || {text} ELSE {text} END AS {column}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=str(ROOT / "bench" / "out" / "reviews-1000000-s1.db"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    rows = conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    rules = {"first character only (before)": first_character_only, "after spaces/NBSP/zero-width, full-width (now)": _guarded}
    cpu: dict[str, list[float]] = {name: [] for name in rules}
    for _ in range(args.runs):  # interleaved: machine noise hits both alike
        for name, rule in rules.items():
            sql = f"SELECT {COLUMNS[0]}, {', '.join(rule(c) for c in COLUMNS[1:])} FROM reviews ORDER BY {COLUMNS[0]}"
            started = time.process_time()
            for _row in conn.execute(sql):
                pass
            cpu[name].append(time.process_time() - started)
    base = statistics.median(cpu["first character only (before)"])
    print(f"| guard rule ({rows:,} rows, query only) | CPU s (median of {args.runs}) | vs before |")
    print("|---|---|---|")
    for name, values in cpu.items():
        print(f"| {name} | {statistics.median(values):.2f} | {statistics.median(values) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
