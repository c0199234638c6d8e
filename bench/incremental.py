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

Two more modes, each on the first --rows size (default 1M), instead of the cycle table:

--kinds (Xet new bytes per file kind): one backup cycle with the worker's own code in this
process (worker/mirror.py and worker/tree.py: db base + delta, CSV shards, Parquet shards), every
file uploaded to a fresh local CAS (hf_xet, `local://DIR`; `dedup_metrics.new_bytes` is what the
Hub would store); then the first non-zero --new reviews and the next cycle, every file of its
tree uploaded again with the client's cache warm (the same CAS folder) and cold (a copy of the
CAS as after cycle 1 without the client-side shard cache and session: only the CAS's global
dedup finds old chunks). Each file kind goes in its own upload commit. ~2 min at 1M.

--mount [--fuse] [--runs 3] (restore from the Hub and from a bucket mount): one backup of the db to
the test Hub (in this process) with the worker's own code, then each in a fresh empty data folder,
median of --runs: the baseline (`hf_hub_download` of the restore's sources, reviews.db and
reviews-delta.db, + a copy of the db into place), `worker.restore.restore` from the Hub, and the
same from a folder target on a mount (`--fuse`: an rclone FUSE mount with a write-back cache, as
a Space's bucket volume; else a local folder); and the HTTP requests of a backup cycle with no
change and with one new review. ~1 min at 100k, ~4 min at 1M.

--smoke runs all three at 2,000 rows (the mount on a local folder).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import os
import re
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import make_db
from bench.make_db import working_copy
from bench._common import HUB_REPO, HUB_TOKEN, OUT, PYTHON, parser, quiet_hub_client, run_measured, table

quiet_hub_client()  # before huggingface_hub is imported (--mount); the worker's env is set per cycle

from shared.db import transaction  # noqa: E402
from shared.reviews import Review  # noqa: E402
from shared.schema import COLUMNS, open_store_db  # noqa: E402
from shared.store import insert_review  # noqa: E402
from worker.mirror import Mirror  # noqa: E402
from worker.shards import CSV_DIR  # noqa: E402
from worker.targets import FolderTarget  # noqa: E402
from worker.tree import BASE_FILE, DELTA_FILE, Tree  # noqa: E402

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


# ---- --kinds: Xet new bytes per file kind, warm and cold client cache

ISSUE_BASELINE_DB_CSV = 55_000  # issue 13: "On today's db + CSV this measures about 55 KB"


def tree_cycle(live: Path, mirror: Mirror) -> tuple[dict[str, list[Path]], int, float]:
    """One backup cycle as the worker makes it: the tree's files by kind, files rewritten, seconds."""
    started = time.monotonic()
    tree = Tree(mirror)
    update = tree.update(mirror.refresh(live))
    files: dict[str, list[Path]] = {"reviews.db + reviews-delta.db": [], "csv/*.csv": [], "data/*.parquet": []}
    for name in tree.files():
        kind = ("reviews.db + reviews-delta.db" if name in (BASE_FILE, DELTA_FILE)
                else "csv/*.csv" if name.startswith(CSV_DIR + "/") else "data/*.parquet" if name.endswith(".parquet")
                else None)
        if kind:
            files[kind].append(tree.folder / name)
    return files, len(update.changed), time.monotonic() - started


def upload_kind(cas: Path, paths: list[Path]) -> tuple[int, int]:
    """(new bytes, total bytes) of one upload commit of `paths` to the local CAS."""
    import hf_xet

    session = hf_xet.XetSession()
    commit = session.new_upload_commit(endpoint=f"local://{cas}")
    for path in paths:
        commit.start_upload_file(str(path))
    metrics = commit.wait_to_finish().dedup_metrics
    return int(metrics.new_bytes), int(metrics.total_bytes)


def forget_client_cache(cas: Path) -> None:
    """What a restarted machine lacks: the client's shard cache and session, not the CAS's own data."""
    for sub in ("shard-cache", "shard-session"):
        shutil.rmtree(cas / "xet" / sub, ignore_errors=True)


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 10 * 1024 * 1024 else f"{n / 2**20:,.1f} MiB"


def xet_by_kind(rows: int, new: int) -> None:
    """--kinds: see the module's doc."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xet-bench-", dir=OUT) as tmp:
        tmp = Path(tmp)
        live = working_copy(rows, tmp / "data")
        mirror = Mirror(tmp / "mirror")
        warm, cold = tmp / "cas-warm", tmp / "cas-cold"

        files1, written1, secs1 = tree_cycle(live, mirror)
        first = {kind: upload_kind(warm, paths) for kind, paths in files1.items()}
        shutil.copytree(warm, cold)
        forget_client_cache(cold)

        conn = open_store_db(live)
        for i in range(new):
            insert_review(conn, Review(f"bench {i}", 1 + i % 5, f"new review {i}"))
        conn.close()
        files2, written2, secs2 = tree_cycle(live, mirror)
        sizes = {kind: sum(p.stat().st_size for p in paths) for kind, paths in files2.items()}
        warm2 = {kind: upload_kind(warm, paths) for kind, paths in files2.items()}
        cold2 = {kind: upload_kind(cold, paths) for kind, paths in files2.items()}

    total_files = sum(len(v) for v in files2.values())
    print(f"\n{rows:,} reviews, then +{new}; cycle 1 took {secs1:.1f} s ({written1} files written), "
          f"cycle 2 {secs2:.1f} s ({written2} of {total_files} files rewritten)\n")
    print("| file | size | cycle 1: new bytes | +%d reviews: new bytes, warm cache | cold cache |" % new)
    print("|---|---|---|---|---|")
    for kind in files2:
        print(f"| `{kind}` | {kib(sizes[kind])} | {kib(first[kind][0])} | {kib(warm2[kind][0])} | "
              f"{kib(cold2[kind][0])} |")
    db_csv_warm = sum(v[0] for k, v in warm2.items() if "parquet" not in k)
    db_csv_cold = sum(v[0] for k, v in cold2.items() if "parquet" not in k)
    total_warm, total_cold = sum(v[0] for v in warm2.values()), sum(v[0] for v in cold2.values())
    print(f"| db + CSV | | | {kib(db_csv_warm)} | {kib(db_csv_cold)} |")
    print(f"| **all files** | {kib(sum(sizes.values()))} | {kib(sum(v[0] for v in first.values()))} | "
          f"**{kib(total_warm)}** | **{kib(total_cold)}** |")
    print(f"\nIssue's baseline: db + CSV ~{ISSUE_BASELINE_DB_CSV / 1000:.0f} KB per cycle today; "
          f"goal: all files <= {GOAL_XET_BYTES / 1e6:.0f} MB. "
          f"Measured: warm {total_warm / 1e6:.3f} MB, cold {total_cold / 1e6:.3f} MB "
          f"({'meets' if max(total_warm, total_cold) <= GOAL_XET_BYTES else 'MISSES'} the goal).")


# ---- --mount: restore from the Hub and from a bucket mount

def restore_from_mount(args) -> None:
    """--mount: see the module's doc."""
    from contextlib import nullcontext

    from tests.container_images import FuseMount

    work = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    try:
        with FuseMount(work / "bucket", work / "mnt") if args.fuse else nullcontext():
            mount_dir = (work / "mnt" if args.fuse else work / "mount-folder") / "feedback-backups"
            mount_run(args, work, FolderTarget(mount_dir, keep=3, on_mount=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # after the unmount


def mount_run(args, work: Path, mount: FolderTarget) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    from shared.config import load_config
    from tests.hubserver import HubServer
    from worker.backup import Backup
    from worker.hub import HubTarget
    from worker.restore import restore

    source = make_db.cached_db(args.rows[0])
    srv = HubServer(tokens={HUB_TOKEN: "bench"}, lfs_threshold=10_000_000)
    srv.start()
    try:
        api = HfApi(endpoint=srv.endpoint, token=HUB_TOKEN)
        origin = work / "origin"
        origin.mkdir()
        shutil.copyfile(source, origin / "reviews.db")
        env = {"FEEDBACK_DATA_DIR": str(origin), "HF_DATASET_REPO": HUB_REPO}
        config = load_config(env)
        Backup(config, HubTarget(api, HUB_REPO)).run()
        size_mb = (origin / "reviews.db").stat().st_size / 1e6

        srv.reset_stats()
        Backup(config, HubTarget(api, HUB_REPO)).run()
        no_change = srv.stats()
        conn = open_store_db(config.db_path)
        insert_review(conn, Review("bench", 5, "one more"))
        conn.close()
        srv.reset_stats()
        Backup(config, HubTarget(api, HUB_REPO)).run()
        change = srv.stats()
        t = time.perf_counter()
        Backup(config, mount).run()
        mount_publish = time.perf_counter() - t

        # What a restore reads: the base db, and the delta when the backup has one (worker/tree.py).
        sources = [n for n in ("reviews.db", "reviews-delta.db")
                   if n in api.list_repo_files(HUB_REPO, repo_type="dataset")]
        baseline, ours, from_mount = [], [], []
        for i in range(args.runs):
            dest = work / f"plain{i}"
            dest.mkdir()
            t = time.perf_counter()
            for name in sources:
                hf_hub_download(HUB_REPO, name, repo_type="dataset", endpoint=srv.endpoint, token=HUB_TOKEN,
                                local_dir=dest / "dl")
            shutil.copyfile(dest / "dl" / "reviews.db", dest / "reviews.db")
            baseline.append(time.perf_counter() - t)
            shutil.rmtree(dest)

            fresh = work / f"fresh{i}"
            t = time.perf_counter()
            restore(load_config({"FEEDBACK_DATA_DIR": str(fresh), "HF_DATASET_REPO": HUB_REPO}), HubTarget(api, HUB_REPO))
            ours.append(time.perf_counter() - t)
            shutil.rmtree(fresh)

            fresh = work / f"fresh-mount{i}"
            t = time.perf_counter()
            restore(load_config({"FEEDBACK_DATA_DIR": str(fresh)}), mount)
            from_mount.append(time.perf_counter() - t)
            shutil.rmtree(fresh)
    finally:
        srv.stop()

    b, o, m = statistics.median(baseline), statistics.median(ours), statistics.median(from_mount)
    print(f"\nRestore of a {args.rows[0]:,}-review backup ({size_mb:.0f} MB db), median of {args.runs} runs\n")
    print(f"| {'what':<44} | {'seconds':>8} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 8}|")
    print(f"| {'baseline: download ' + '+'.join(sources) + ', copy db':<44} | {b:8.2f} | {1:6.2f} |")
    print(f"| {'python -m worker restore (checked, atomic)':<44} | {o:8.2f} | {o / b:6.2f} |")
    where = "FUSE (rclone, write-back)" if args.fuse else "a local folder"
    print(f"| {'the same from the mount: ' + where:<44} | {m:8.2f} | {m / b:6.2f} |")
    print(f"\nFirst backup to the mount (base + delta written, read back, checked): {mount_publish:.2f} s")
    print("\nHTTP requests of one backup cycle\n")
    kinds = sorted((set(no_change) | set(change)) - {"total"})
    print(f"| {'request':<14} | {'no change':>9} | {'one new review':>14} |")
    print(f"|{'-' * 16}|{'-' * 11}|{'-' * 16}|")
    for k in kinds + ["total"]:
        print(f"| {k:<14} | {no_change.get(k, 0):>9} | {change.get(k, 0):>14} |")


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
    p = parser(__doc__)
    p.add_argument("--rows", default="1000000,10000000")
    p.add_argument("--new", default="0,10,10000,100000")
    p.add_argument("--src-dir", type=Path, default=OUT)
    p.add_argument("--targets", default="local,hub")
    p.add_argument("--no-restore", dest="restore", action="store_false")
    p.add_argument("--no-xet", dest="xet", action="store_false")
    p.add_argument("--no-full", dest="full", action="store_false",
                   help="skip the --full comparison cycle (the first cycle is a full one anyway)")
    p.add_argument("--keep", action="store_true", help="keep bench/out/incr-* (data folders, Hub state)")
    p.add_argument("--kinds", action="store_true", help="only: Xet new bytes per file kind, warm and cold cache")
    p.add_argument("--mount", action="store_true", help="only: restore from the Hub and from a mount; requests per cycle")
    p.add_argument("--fuse", action="store_true", help="--mount: the mount is rclone FUSE with write-back")
    p.add_argument("--runs", type=int, default=3, help="--mount: restores each, median")
    args = p.parse_args()
    if args.smoke:
        args.rows, args.new, args.runs = "2000", "10", 1
    args.rows = [int(x) for x in args.rows.split(",")]
    args.new = [int(x) for x in args.new.split(",")]
    args.targets = args.targets.split(",")
    if args.kinds or args.smoke:
        xet_by_kind(args.rows[0], next((n for n in args.new if n), 10))
    if args.mount or args.smoke:
        restore_from_mount(args)
    if args.kinds or args.mount:
        return 0
    results: list[dict] = []
    extra: list[str] = []
    for rows in args.rows:
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
