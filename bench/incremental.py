"""Issue 14: one backup cycle at 1M / 10M reviews, incremental vs the full cycle, side by side.

    .venv/bin/python bench/incremental.py [--rows 1000000,10000000] [--new 0,10,10000,100000]
                                          [--src-dir DIR] [--targets local,hub] [--no-restore] [--no-xet]

For each size and target (the local folder, and the tests' Hub server tests/hubserver.py over
HTTP with the real huggingface_hub client, Xet off as in the tests):
1. a fresh data folder with a copy of the N-row database (bench/make_db.py, cached in --src-dir);
2. the first cycle (no mirror yet: full snapshot, every shard, every file published);
3. `python -m worker backup --full` after 10 new reviews: today's full cycle, for comparison;
4. after each of --new new reviews (cumulative), one cycle: wall time and peak RSS of the whole
   `python -m worker backup` process (a fresh process: imports included), and what it did.
Then (Hub): the bytes the Hub would store on its Xet path for the "+10" cycle (hf_xet against a
local CAS, the files that cycle published, after the files of the cycle before: warm CAS), and a
restore of the newest backup onto an empty folder vs a plain download of its files, compared row
for row with the live database (SQL EXCEPT both ways, in SQLite).

Goals (issue 14, at 10M + 10 new): cycle <= 3 s, worker peak RSS <= 200 MiB, Xet new bytes <= 1 MB,
restore <= 1.5x download. The script prints "met"/"NOT met" beside each; it asserts nothing.
Runtime on the shared 2-core machine: 1M ~5 min; 10M ~25 min per target (the two full cycles dominate).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import make_db
from bench._common import OUT, PYTHON, run_measured, table
from shared.db import transaction
from shared.schema import COLUMNS, open_store_db

REPO = "alice/bench-incremental"
TOKEN = "tok-write"
GOAL_CYCLE_S, GOAL_RSS_MIB, GOAL_XET_BYTES, GOAL_RESTORE_RATIO = 3.0, 200, 1_000_000, 1.5


def add_reviews(db: Path, n: int, tag: str) -> None:
    if not n:
        return
    conn = open_store_db(db)
    cols = ", ".join(COLUMNS[2:])  # name, rating, comments; id and created_at from the schema
    with transaction(conn):
        conn.executemany(f"INSERT INTO reviews ({cols}) VALUES (?, ?, ?)",
                         [(f"{tag}-{i}", 1 + i % 5, f"bench review {i}, new") for i in range(n)])
    conn.close()


def worker_env(data_dir: Path, hub: str | None) -> dict:
    env = dict(os.environ, FEEDBACK_DATA_DIR=str(data_dir), LOG_LEVEL="INFO", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HOME=str(data_dir.parent / "hf-home"))
    env.pop("HF_DATASET_REPO", None)
    if hub:
        env.update(HF_DATASET_REPO=REPO, HF_TOKEN=TOKEN, HF_ENDPOINT=hub, HF_HUB_DISABLE_XET="1")
    return env


def cycle(data_dir: Path, hub: str | None, *, full: bool = False) -> dict:
    cmd = [PYTHON, "-m", "worker", "backup"] + (["--full"] if full else [])
    res = run_measured(cmd, env=worker_env(data_dir, hub), timeout=1800)
    out = res.stdout + res.stderr
    if res.returncode != 0:
        raise SystemExit(f"worker backup failed ({res.returncode}):\n{out[-3000:]}")
    kind = re.search(r"cycle=(\w+)", out)
    inside = re.search(r"total_s=([0-9.]+)", out)
    return {"s": res.seconds, "rss_mib": res.max_rss_kib / 1024, "cpu": res.cpu,
            "in_worker_s": float(inside.group(1)) if inside else float("nan"),
            "kind": kind.group(1) if kind else ("none" if "no change" in out else "?")}


def tree_files(data_dir: Path) -> dict[str, int]:
    """The current backup files and their inodes (a rewritten file gets a new one)."""
    tree = data_dir / "backups" / ".mirror" / "tree"
    return {p.relative_to(tree).as_posix(): p.stat().st_ino for p in tree.rglob("*") if p.is_file()
            and not p.name.endswith(".tmp")}


def xet_new_bytes(cas: Path, paths: list[Path]) -> tuple[int, int, float]:
    import hf_xet

    started = time.perf_counter()
    commit = hf_xet.XetSession().new_upload_commit(endpoint=f"local://{cas}")
    for path in paths:
        commit.start_upload_file(str(path))
    metrics = commit.wait_to_finish().dedup_metrics
    return metrics.new_bytes, metrics.total_bytes, time.perf_counter() - started


def link_tree(data_dir: Path, dest: Path) -> Path:
    """Hard links to the current backup files: what the Hub holds before the next cycle."""
    tree = data_dir / "backups" / ".mirror" / "tree"
    shutil.rmtree(dest, ignore_errors=True)
    for rel in tree_files(data_dir):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(tree / rel, dest / rel)
    return dest


def xet_report(rows: int, new_reviews: int, work: Path, prev: Path, data_dir: Path, hub: str, cas: Path) -> str:
    """New bytes the Hub's Xet storage would keep for the cycle that just ran. The local CAS
    starts with every file of the backup before the first measured cycle (cold: all new),
    then gets, cycle after cycle, the files each cycle published (those whose inode changed)
    and its dataset card: the Hub holding the whole history, as it does."""
    import urllib.request

    tree = data_dir / "backups" / ".mirror" / "tree"
    old = {p.relative_to(prev).as_posix(): p.stat().st_ino for p in prev.rglob("*") if p.is_file()}
    changed = [tree / rel for rel, ino in tree_files(data_dir).items() if old.get(rel) != ino]
    req = urllib.request.Request(f"{hub}/datasets/{REPO}/resolve/main/README.md",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    card = work / "card.md"
    card.write_bytes(urllib.request.urlopen(req, timeout=30).read())
    cold = ""
    if not cas.exists():
        cold_new, cold_total, cold_s = xet_new_bytes(cas, sorted(p for p in prev.rglob("*") if p.is_file()))
        cold = (f"the backup before (cold CAS) {cold_total / 2**20:.0f} MiB -> new {cold_new / 2**20:.0f} MiB "
                f"in {cold_s:.1f} s; ")
    new, total, warm_s = xet_new_bytes(cas, changed + [card])
    shutil.rmtree(prev, ignore_errors=True)
    verdict = "met" if new <= GOAL_XET_BYTES else "NOT met"
    return (f"xet rows={rows:,} +{new_reviews:,}: {cold}this cycle's {len(changed)} files + card: {total / 1e6:.2f} MB "
            f"-> new {new / 1e6:.3f} MB in {warm_s:.2f} s (goal <= 1 MB: {verdict}); files: "
            f"{', '.join(sorted(p.relative_to(tree).as_posix() for p in changed)) or '-'}")


def rows_differ(a: Path, b: Path) -> int:
    """Rows in one database and not in the other, both ways (in SQLite, not in Python)."""
    conn = sqlite3.connect(f"file:{a}?mode=ro", uri=True)
    conn.execute("ATTACH DATABASE ? AS other", (f"file:{b}?mode=ro",))
    cols = ", ".join(COLUMNS)
    n = conn.execute(f"SELECT (SELECT COUNT(*) FROM (SELECT {cols} FROM main.reviews EXCEPT "
                     f"SELECT {cols} FROM other.reviews)) + (SELECT COUNT(*) FROM (SELECT {cols} FROM "
                     f"other.reviews EXCEPT SELECT {cols} FROM main.reviews))").fetchone()[0]
    counts = [conn.execute(f"SELECT COUNT(*) FROM {s}.reviews").fetchone()[0] for s in ("main", "other")]
    conn.close()
    return n + abs(counts[0] - counts[1])


def restore_vs_download(work: Path, hub: str, live_db: Path) -> dict:
    dl_dir = work / "download"
    shutil.rmtree(dl_dir, ignore_errors=True)
    env = worker_env(work / "restored", hub)
    # The plain download of the files restore needs (db + delta), by the same client, in a fresh process.
    script = ("import sys\nfrom huggingface_hub import HfApi\napi = HfApi()\n"
              "files = [f for f in api.list_repo_files(sys.argv[1], repo_type='dataset') "
              "if f in ('reviews.db', 'reviews-delta.db')]\n"
              "for f in files:\n    api.hf_hub_download(sys.argv[1], f, repo_type='dataset', local_dir=sys.argv[2])\n")
    download = run_measured([PYTHON, "-c", script, REPO, str(dl_dir)], env=env, timeout=1800)
    if download.returncode:
        raise SystemExit(f"download failed: {download.stderr[-2000:]}")
    restored_dir = work / "restored"
    shutil.rmtree(restored_dir, ignore_errors=True)
    restored_dir.mkdir(parents=True)
    res = run_measured([PYTHON, "-m", "worker", "restore"], env=env, timeout=1800)
    if res.returncode:
        raise SystemExit(f"restore failed: {(res.stdout + res.stderr)[-2000:]}")
    diff = rows_differ(restored_dir / "reviews.db", live_db)
    shutil.rmtree(dl_dir, ignore_errors=True)
    ratio = res.seconds / download.seconds
    return {"download_s": round(download.seconds, 2), "restore_s": round(res.seconds, 2),
            "ratio": round(ratio, 2), "goal_1.5x": "met" if ratio <= GOAL_RESTORE_RATIO else "NOT met",
            "restore_rss_mib": round(res.max_rss_kib / 1024), "rows_differing": diff}


def run_size(rows: int, args, results: list[dict], extra: list[str]) -> None:
    src = make_db.ensure(args.src_dir / f"reviews-{rows}-s1.db", rows)
    hub_proc = None
    for target in args.targets:
        work = OUT / f"incr-{rows}-{target}"
        shutil.rmtree(work, ignore_errors=True)
        data = work / "data"
        data.mkdir(parents=True)
        shutil.copyfile(src, data / "reviews.db")
        hub = None
        if target == "hub":
            from tests.hubserver import HubServer

            # In this process, on its own threads: this process only waits for the worker meanwhile.
            # It keeps every uploaded file in memory (~2x the db at 10M rows).
            hub_proc = HubServer(tokens={TOKEN: "alice"}, lfs_threshold=1_000_000).start()
            hub = hub_proc.endpoint
        try:
            def record(label, new, r):
                results.append({"rows": rows, "target": target, "cycle": label, "new": new, **r})
                print(f"  {rows:,} {target} {label} new={new}: {r['s']:.2f} s, {r['rss_mib']:.0f} MiB, {r['kind']}",
                      flush=True)

            record("first (no mirror yet)", 0, cycle(data, hub))
            if args.full:
                add_reviews(data / "reviews.db", 10, "full")
                record("full cycle (--full), today's cost", 10, cycle(data, hub, full=True))
            cas = work / "xet-cas"
            for i, n in enumerate(args.new):
                add_reviews(data / "reviews.db", n, f"new{i}")
                measure_xet = target == "hub" and args.xet
                if measure_xet:
                    prev = link_tree(data, work / "prev-tree")
                r = cycle(data, hub)
                record("incremental", n, r)
                if measure_xet:
                    extra.append(xet_report(rows, n, work, prev, data, hub, cas))
                    print(f"  {extra[-1]}", flush=True)
            shutil.rmtree(cas, ignore_errors=True)
            if target == "hub" and args.restore:
                r = restore_vs_download(work, hub, data / "reviews.db")
                r["rows"] = rows
                extra.append(json.dumps(r))
                print(f"  restore: {r}", flush=True)
        finally:
            if hub_proc is not None:
                hub_proc.stop()
                hub_proc = None
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="1000000,10000000")
    p.add_argument("--new", default="0,10,10000,100000")
    p.add_argument("--src-dir", type=Path, default=OUT)
    p.add_argument("--targets", default="local,hub")
    p.add_argument("--no-restore", dest="restore", action="store_false")
    p.add_argument("--no-xet", dest="xet", action="store_false")
    p.add_argument("--no-full", dest="full", action="store_false",
                   help="skip the --full comparison cycle (the first cycle is a full one anyway)")
    p.add_argument("--keep", action="store_true", help="keep bench/out/incr-* (data folders, Hub state)")
    p.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = p.parse_args()
    if args.smoke:
        args.rows, args.new = "2000", "10"
    args.new = [int(x) for x in args.new.split(",")]
    args.targets = args.targets.split(",")
    results: list[dict] = []
    extra: list[str] = []
    for rows in [int(x) for x in args.rows.split(",")]:
        run_size(rows, args, results, extra)
    headers = ["rows", "target", "cycle", "new reviews", "wall s (process)", "in the worker s", "peak RSS MiB",
               "CPU s", "what it did"]
    print(table(headers, [[f"{r['rows']:,}", r["target"], r["cycle"], f"{r['new']:,}", r["s"], r["in_worker_s"],
                           r["rss_mib"], r["cpu"], r["kind"]] for r in results],
                title="One `python -m worker backup` (a fresh process: interpreter start and imports included)"))
    for r in results:
        if r["rows"] >= 10_000_000 and r["new"] == 10 and r["cycle"] == "incremental":
            ok = r["s"] <= GOAL_CYCLE_S and r["rss_mib"] <= GOAL_RSS_MIB
            print(f"goal at {r['rows']:,} + 10 new, {r['target']}: {r['s']:.2f} s (<= {GOAL_CYCLE_S}), "
                  f"{r['rss_mib']:.0f} MiB (<= {GOAL_RSS_MIB}): {'met' if ok else 'NOT met'}")
    for line in extra:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
