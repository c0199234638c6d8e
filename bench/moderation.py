"""The owner's moderation at 100k / 1M reviews: how fast a hide leaves the public page, how fast
an erasure leaves every file of the newest backup on each target, and what a Hub history
rewrite costs.

    .venv/bin/python bench/moderation.py [--rows 100000,1000000] [--points 3] [--no-rewrite]

For each size, on a private copy of the bench database (bench/make_db.py, cached in bench/out):
1. hide: shared.moderation.hide of the newest public review, then the public page's own reads
   (shared.store.latest_reviews + read_summary().public(), on another connection as the web's) until
   the review is gone from them: the hide's commit plus one page load (nothing is cached).
   Baseline: before this work there was no hide; the "page load" column alone is the floor.
2. erase: shared.moderation.delete of one review (row, tombstone, FTS 'optimize', secure_delete,
   WAL checkpoint), then the bytes of reviews.db/-wal/-shm searched for its text.
3. per target (the local folder; the tests' Hub server over HTTP with the real huggingface_hub
   client, Xet off as in the tests): a first backup, the erasure, then the next backup cycle
   (a full one: a delete is not "new rows on top"), timed; every file of the newest backup then
   searched for the text (Parquet decoded too). "absent after" = erase + that cycle; the loop
   runs a cycle every BACKUP_INTERVAL_SECONDS, which adds up to one interval of waiting.
4. rewrite (Hub): --points backups on as many UTC days, the erasure, then
   worker.erase_history.rewrite_history: time, the bytes of the rebuilt points' files (what is
   uploaded besides the newest backup), and a check of every file of every commit afterwards.
It prints a table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import make_db
from bench._common import table

SECRET = "benchsecretqzxv0176"
REPO = "alice/bench-moderation"
TOKEN = "tok-write"


def holds(path: Path) -> bool:
    if SECRET.encode() in path.read_bytes():
        return True
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(path)
        return any(SECRET in str(v) for c in t.columns for v in c.to_pylist() if v is not None)
    return False


def plant(db: Path) -> int:
    """The review to erase: an old one, in the middle of the table (its shard is a full one)."""
    from shared.db import transaction
    from shared.schema import open_store_db
    conn = open_store_db(db)
    try:
        mid = conn.execute("SELECT MAX(id) / 2 FROM reviews").fetchone()[0]
        with transaction(conn):
            conn.execute("UPDATE reviews SET comments = ?, name = ? WHERE id = ?",
                         (f"call me on {SECRET} please", f"Name {SECRET}", mid))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(mid)
    finally:
        conn.close()


def bench_hide(db: Path) -> tuple[float, float, float]:
    from shared import moderation as mod
    from shared.db import connect, read_transaction
    from shared.store import latest_reviews, read_summary
    owner, web = connect(db), connect(db)
    try:
        victim = latest_reviews(web, 1)[0][0]

        def page() -> list:
            with read_transaction(web):
                read_summary(web).public()
                return [r[0] for r in latest_reviews(web, 10)]
        t0 = time.perf_counter()
        page()
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mod.hide(owner, [victim])
        hide_s = time.perf_counter() - t0
        while victim in page():
            pass
        total_s = time.perf_counter() - t0
        mod.unhide(owner, [victim])
        return hide_s, load_s, total_s
    finally:
        owner.close()
        web.close()


def bench_erase(db: Path, victim: int, *, submits: bool = False) -> tuple[float, bool, float]:
    """The erasure's time, whether any text is left, and (`submits`) the longest a visitor's
    submit waited meanwhile (a thread inserting a review every 20 ms on its own connection)."""
    import threading

    from shared import moderation as mod
    from shared.schema import open_store_db
    from shared.store import insert_review
    from shared.reviews import Review
    conn = open_store_db(db)
    waits: list[float] = []
    stop = threading.Event()

    def submitter():
        c = open_store_db(db)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                insert_review(c, Review("during", 4, "a review sent during the erasure"))
                waits.append(time.perf_counter() - t)
                time.sleep(0.02)
        finally:
            c.close()
    thread = threading.Thread(target=submitter) if submits else None
    try:
        if thread:
            thread.start()
            time.sleep(0.2)
        t0 = time.perf_counter()
        mod.delete(conn, [victim])
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        if thread:
            thread.join()
        conn.close()
    left = any(holds(Path(str(db) + s)) for s in ("", "-wal", "-shm") if Path(str(db) + s).exists())
    return seconds, left, max(waits, default=float("nan"))


def newest_files(target, config, tmp: Path) -> list[Path]:
    """Every file of the target's newest backup, as local paths."""
    from worker.targets import LocalFolderTarget
    if isinstance(target, LocalFolderTarget):
        stem = target.history()[0].revision
        return [p for p in (config.backups_dir / stem).rglob("*") if p.is_file()]
    from huggingface_hub import HfApi, hf_hub_download
    api = HfApi(endpoint=target.endpoint, token=TOKEN)
    rev = target.newest().revision
    return [Path(hf_hub_download(REPO, f, repo_type="dataset", revision=rev, endpoint=target.endpoint, token=TOKEN,
                                 local_dir=tmp / rev[:10]))
            for f in api.list_repo_files(REPO, repo_type="dataset", revision=rev)]


def config_for(data_dir: Path, hub: str | None):
    from shared.config import load_config
    env = {"FEEDBACK_DATA_DIR": str(data_dir), "BACKUP_INTERVAL_SECONDS": "1", "BACKUP_KEEP": "5"}
    if hub:
        env.update(HF_DATASET_REPO=REPO)
    return load_config(env)


def target_for(config, hub: str | None):
    from huggingface_hub import HfApi
    from worker.hub import HubTarget
    from worker.targets import LocalFolderTarget
    if hub:
        return HubTarget(HfApi(endpoint=hub, token=TOKEN), REPO)
    return LocalFolderTarget(config.backups_dir, keep=config.backup_keep)


def bench_target(rows: int, work: Path, hub: str | None) -> dict:
    from worker.backup import Backup
    data = work / ("hub" if hub else "local") / "data"
    make_db.working_copy(rows, data)
    victim = plant(data / "reviews.db")
    config = config_for(data, hub)
    target = target_for(config, hub)
    t0 = time.perf_counter()
    Backup(config, target).run()
    first_s = time.perf_counter() - t0
    erase_s, _, _ = bench_erase(config.db_path, victim)
    t0 = time.perf_counter()
    out = Backup(config, target).run()
    cycle_s = time.perf_counter() - t0
    files = newest_files(target, config, work / "dl")
    held = [p.name for p in files if holds(p)]
    local_left = [str(p) for p in data.rglob("*") if p.is_file() and holds(p)]
    return {"first_s": first_s, "erase_s": erase_s, "cycle_s": cycle_s, "cycle": out.cycle, "files": len(files),
            "held": held, "local_left": local_left}


def bench_rewrite(rows: int, work: Path, hub_srv, points: int) -> dict:
    from shared.schema import open_store_db
    from shared.store import insert_review
    from shared.reviews import Review
    from worker import erase_history
    from worker.backup import Backup
    from huggingface_hub import HfApi, hf_hub_download
    data = work / "rewrite" / "data"
    make_db.working_copy(rows, data)
    victim = plant(data / "reviews.db")
    config = config_for(data, hub_srv.endpoint)
    target = target_for(config, hub_srv.endpoint)
    for day in range(points):
        conn = open_store_db(config.db_path)
        for i in range(10):
            insert_review(conn, Review(f"day {day}", 3, f"new review {i}"))
        conn.close()
        # One backup a day: the rewrite rebuilds the first backup of each day.
        Backup(config, target, now=lambda d=day: f"2026-10-{10 + d:02d}T12:00:00Z").run()
    bench_erase(config.db_path, victim)
    t0 = time.perf_counter()
    result = erase_history.rewrite_history(config, target)
    seconds = time.perf_counter() - t0
    api = HfApi(endpoint=hub_srv.endpoint, token=TOKEN)
    held, checked = 0, 0
    for c in api.list_repo_commits(REPO, repo_type="dataset"):
        for f in api.list_repo_files(REPO, repo_type="dataset", revision=c.commit_id):
            p = Path(hf_hub_download(REPO, f, repo_type="dataset", revision=c.commit_id, endpoint=hub_srv.endpoint,
                                     token=TOKEN, local_dir=work / "rw-dl" / c.commit_id[:10]))
            checked += 1
            held += holds(p)
    newest_bytes = sum(p.stat().st_size for p in (data / "backups" / ".mirror" / "tree").rglob("*") if p.is_file())
    return {"s": seconds, "points": result.points, "bytes": result.bytes_built + newest_bytes, "held": held,
            "checked": checked}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--no-rewrite", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny: 2,000 reviews, 2 restore points (the suite's smoke test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.points = "2000", 2
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    from tests.hubserver import HubServer
    hide_rows, erase_rows, target_rows, rewrite_rows = [], [], [], []
    for rows in [int(r) for r in args.rows.split(",")]:
        make_db.cached_db(rows)
        with tempfile.TemporaryDirectory(prefix="bench-moderation-") as tmp:
            work = Path(tmp)
            db = make_db.working_copy(rows, work / "plain")
            victim = plant(db)
            hide_s, load_s, total_s = bench_hide(db)
            hide_rows.append([f"{rows:,}", hide_s * 1000, load_s * 1000, total_s * 1000])
            erase_s, left, wait_s = bench_erase(db, victim, submits=True)
            erase_rows.append([f"{rows:,}", erase_s, wait_s * 1000, "yes" if left else "no"])
            shutil.rmtree(work / "plain")
            for name in ("local", "hub"):
                srv = HubServer(tokens={TOKEN: "alice"}, lfs_threshold=1_000_000).start() if name == "hub" else None
                try:
                    r = bench_target(rows, work, srv.endpoint if srv else None)
                finally:
                    if srv:
                        srv.stop()
                target_rows.append([f"{rows:,}", name, r["first_s"], r["erase_s"], r["cycle_s"],
                                    r["erase_s"] + r["cycle_s"], r["files"], len(r["held"]) + len(r["local_left"])])
                shutil.rmtree(work / name, ignore_errors=True)
            if not args.no_rewrite:
                srv = HubServer(tokens={TOKEN: "alice"}, lfs_threshold=1_000_000).start()
                try:
                    r = bench_rewrite(rows, work, srv, args.points)
                finally:
                    srv.stop()
                rewrite_rows.append([f"{rows:,}", r["points"], r["s"], r["bytes"] / 1e6, r["checked"], r["held"]])
    print(table(["rows", "hide commit ms", "page load ms (floor)", "hide -> gone from page ms"], hide_rows,
                "Hide: from the owner's click to the public page's next load without the review"))
    print(table(["rows", "erase s (row, tombstone, FTS merge, checkpoint)", "longest submit wait meanwhile ms",
                 "text left in db/-wal/-shm"],
                erase_rows, "Erase from the live database"))
    print(table(["rows", "target", "first backup s", "erase s", "next cycle s", "absent after s",
                 "files in newest", "files holding the text"], target_rows,
                "Erasure: absent from every file of the newest backup (plus up to one BACKUP_INTERVAL of waiting)"))
    if rewrite_rows:
        print(table(["rows", "points rebuilt", "rewrite s", "MB built and uploaded", "files checked",
                     "files holding the text"], rewrite_rows, "Hub history rewrite without the erased review"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
