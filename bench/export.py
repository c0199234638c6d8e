"""CSV export: the project's export_csv vs `sqlite3 -csv` vs the seed (pandas), plus faster
stdlib-only variants (bench/export_variants.py), and the peak RSS of a whole worker backup.

    .venv/bin/python bench/export.py [--sizes 100000,1000000] [--runs 3] [--quick]

Every timed run is a fresh process; "process wall" includes the interpreter's start-up and
imports for the Python variants, "in-process" is the export call alone (what the running worker
pays). Runs are interleaved round-robin so that background load hits every variant alike; the tables
show medians of --runs. Time: wall seconds, CPU = user+sys of the process, RSS = its peak
resident set (os.wait4). Before timing, each candidate's output at each size is compared byte for
byte (and, when the bytes differ, row by row once parsed with csv.reader) with the reference (csv.writer + guard in Python), and all candidates are checked on a
small database of edge cases (NULL, REAL, BLOB, quotes, CR/LF, guard characters in every column).

The worker rows run `python -m worker backup` (snapshot + integrity check + export + publish to
a local folder) in a fresh data folder holding a copy of the database; "+ sql_chunks" is the same
run with worker.backup.export_csv replaced by export_variants.sql_chunks.

Runtime: ~3 min with the defaults on the 2-core bench machine (databases cached in bench/out/).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT, PYTHON, ROOT, drop_caches_hint, median, run_measured, table
from bench import export_variants as ev
from bench.make_db import cached_db

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
# name -> (label, is a guarded candidate whose bytes must equal the reference)
PY_VARIANTS = {
    "project": ("(a) project shared.csv_export.write_reviews_csv", True),
    "project_stdlib": ("(a') project's csv-module fallback", True),
    "pandas_seed": ("(c) seed: pandas DataFrame.to_csv", False),
    "sql_substr_bigbuf": ("variant: project SQL w/o typeof, 1 MiB buffer", True),
    "python_guard": ("variant: guard in Python, csv.writer", True),
    "plain_noguard": ("floor: cursor -> csv.writer, NO guard", False),
    "sql_lines": ("variant: SQLite-formatted lines, per row", True),
    "sql_chunks": ("variant: SQLite-formatted lines, 2000-row chunks", True),
    "sql_chunks_2threads": ("variant: sql_chunks on 2 threads", True),
}
WORKER_PATCH = ("import sys, runpy; sys.argv = ['worker', 'backup']; "
                "import bench.export_variants as ev, worker.backup as wb; wb.write_reviews_csv = ev.sql_chunks; "
                "runpy.run_module('worker', run_name='__main__')")


def same_content(a: Path, b: Path) -> bool:
    """Do two CSV files hold the same rows once parsed (csv.reader), whatever their quoting and line ends?"""
    import csv

    with open(a, newline="", encoding="utf-8") as fa, open(b, newline="", encoding="utf-8") as fb:
        ra, rb = csv.reader(fa), csv.reader(fb)
        for x, y in zip(ra, rb):
            if x != y:
                return False
        return next(ra, None) is None and next(rb, None) is None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def edge_db(path: Path) -> Path:
    """A small database with every awkward value a hand-made or migrated db could hold."""
    from shared.db import open_store_db

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    rows = [
        ("2024-01-01T00:00:00.000Z", "Anna", 5, "plain"), ("2024-01-01T00:00:00.000Z", "", 3, ""),
        ("2024-01-01T00:00:00.000Z", None, None, None), ("2024-01-01 00:00:00", "=1+1", 1, "a,b"),
        ("=now()", "+x", 2, 'say "hi"'), ("x,y", "-", 4, "line1\nline2"), ("t", "@", 4, "cr\rhere"),
        ("t", "\tTab", 4, "\rCR first, and comma"), ("t", "\rCR", 4, "\r\nCRLF"),
        ("t", " space", 4, " lead space"), ("t", "naïve ünïcode 👍", 4, '"quoted" start'),
        ("t", "'already", 4, "'"), ("t", 'a"b', 4, '"'), (12345, "int created", 4, "x"),
        ("t", 1.5, 4, "real name: text by affinity"), ("t", "n", "5", "numeric text review"),
        ("t", "n", "=5", "text review, guarded"), ("t", "n", "a,b", "text review, quoted"),
        ("t", "n", -3, "negative review"), ("t", "n", 4.5, "real review"),
        ("t", "n", 4, b"blob, comment"), (1.25, "real created_at", 4, "x"),
    ]
    conn = open_store_db(path)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO reviews (id, created_at, name, rating, comments) VALUES (-7, 't', 'neg id', 1, 'x')")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def check_edge_cases(tmp: Path) -> list[list]:
    db = edge_db(tmp / "edge.db")
    ev.reference(db, tmp / "edge-ref.csv")
    ref = (tmp / "edge-ref.csv").read_bytes()
    rows = []
    for name, (label, candidate) in PY_VARIANTS.items():
        if not candidate or name == "sql_lines":  # sql_lines refuses odd-typed cells by design
            continue
        out = tmp / f"edge-{name}.csv"
        try:
            ev.VARIANTS[name](db, out)
        except NotImplementedError as exc:
            rows.append([name, "n/a", "n/a", str(exc)])
            continue
        same = out.read_bytes() == ref
        content = same or same_content(out, tmp / "edge-ref.csv")
        diff = ""
        if not same:
            a, b = ref.decode().splitlines(), out.read_bytes().decode().splitlines()
            diff = "; ".join(f"{x!r} != {y!r}" for x, y in zip(a, b) if x != y)[:160]
        rows.append([name, "same" if same else "DIFFERS", "same" if content else "DIFFERS", diff])
        out.unlink()
    return rows


def run_variant(name: str, db: Path, out: Path):
    if name == "sqlite3_cli":
        return run_measured([SQLITE3, "-csv", "-header", str(db), "SELECT * FROM reviews ORDER BY id"],
                            stdout_path=out)
    return run_measured([PYTHON, str(ROOT / "bench" / "export_variants.py"), name, str(db), str(out)])


def worker_backup(db: Path, tmp: Path, patched: bool):
    data = tmp / "worker-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.copyfile(db, data / "reviews.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_", "BACKUP_"))}
    env.update(FEEDBACK_DATA_DIR=str(data), LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    cmd = [PYTHON, "-c", WORKER_PATCH] if patched else [PYTHON, "-m", "worker", "backup"]
    res = run_measured(cmd, env=env)
    if res.returncode != 0 or "published rows=" not in res.stdout:
        raise RuntimeError(f"worker backup failed rc={res.returncode}: {res.stdout} {res.stderr[-2000:]}")
    published = sorted((data / "backups").glob("reviews-*.csv"))
    csv_hash = sha256(published[-1]) if published else ""
    shutil.rmtree(data, ignore_errors=True)
    return res, csv_hash


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="sizes 10000,100000 and 1 run (a smoke test)")
    args = p.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = 1 if args.quick else args.runs
    tmp = OUT / "export-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    print(f"sqlite3 CLI: {subprocess.run([SQLITE3, '--version'], capture_output=True, text=True).stdout.split()[0]}"
          f", python sqlite3 lib: {sqlite3.sqlite_version}, load average at start: {os.getloadavg()[0]:.2f}")

    print(table(["variant", "bytes == reference", "parsed rows == reference", "differing lines (first)"],
                check_edge_cases(tmp),
                title="Correctness on the edge-case database (candidates only)"))

    names = ["sqlite3_cli", *PY_VARIANTS]
    for rows in sizes:
        db = cached_db(rows, quiet=True)
        drop_caches_hint(db)
        # correctness at this size: every candidate's bytes == the reference's
        ref_out = tmp / "ref.csv"
        ev.reference(db, ref_out)
        ref_hash = sha256(ref_out)
        verdict = {}
        results: dict[str, list] = {n: [] for n in names}
        skipped: set[str] = set()
        for r in range(runs):
            for name in names:
                if name in skipped:
                    continue
                out = tmp / f"{name}.csv"
                res = run_variant(name, db, out)
                if res.returncode != 0 and "NotImplementedError" in res.stderr:
                    skipped.add(name)  # e.g. the project has no csv-module fallback (any more)
                    continue
                if res.returncode != 0:
                    raise RuntimeError(f"{name} failed: {res.stderr[-2000:]}")
                results[name].append(res)
                if r == 0:
                    candidate = PY_VARIANTS.get(name, ("", False))[1]
                    if not candidate:
                        verdict[name] = "n/a"
                    elif sha256(out) == ref_hash:
                        verdict[name] = "same"
                    else:
                        verdict[name] = "DIFFERS (rows " + ("same)" if same_content(out, ref_out) else "DIFFER)")
                out.unlink(missing_ok=True)
        ref_out.unlink()
        base_wall = median(x.seconds for x in results["sqlite3_cli"])
        base_cpu = median(x.cpu for x in results["sqlite3_cli"])
        table_rows = []
        for name in names:
            rs = results[name]
            if not rs:
                continue
            wall, cpu = median(x.seconds for x in rs), median(x.cpu for x in rs)
            if name == "sqlite3_cli":
                label, inproc = "(b) sqlite3 -csv -header (baseline)", float("nan")
            else:
                label, inproc = PY_VARIANTS[name][0], median(float(x.stdout.split()[-1]) for x in rs)
            table_rows.append([label, wall, inproc, cpu, f"{wall / base_wall:.2f}x",
                               "-" if inproc != inproc else f"{inproc / base_wall:.2f}x",
                               f"{cpu / base_cpu:.2f}x", f"{median(x.max_rss_kib for x in rs) / 1024:.0f}",
                               verdict.get(name, "n/a")])
        print(table(["export", "process wall s", "in-process s", "CPU s", "wall / sqlite3",
                     "in-process / sqlite3", "CPU / sqlite3", "peak RSS MiB", "output vs reference"], table_rows,
                    title=f"Export, {rows:,} rows ({db.stat().st_size / 2**20:.0f} MiB db), median of {runs}"))

    # whole worker backup runs
    wrows = []
    for rows in sizes:
        db = cached_db(rows, quiet=True)
        for patched in (False, True):
            res_list, hashes = [], set()
            for _ in range(runs):
                res, h = worker_backup(db, tmp, patched)
                res_list.append(res)
                hashes.add(h)
            wrows.append([f"{rows:,}", "worker backup" + (" + sql_chunks export" if patched else " (as is)"),
                          median(x.seconds for x in res_list), median(x.cpu for x in res_list),
                          f"{median(x.max_rss_kib for x in res_list) / 1024:.0f}",
                          f"{max(x.max_rss_kib for x in res_list) / 1024:.0f}", hashes.pop()[:12]])
    print(table(["rows", "run", "wall s", "CPU s", "peak RSS MiB (median)", "peak RSS MiB (max)",
                 "published csv sha256"], wrows,
                title=f"`python -m worker backup` (snapshot + integrity_check + CSV + publish), median of {runs}"))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}; bench runtime {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
