"""Restore of a 1M-review backup vs a plain download + file copy, from the Hub and from a
bucket mount, and the cost of a no-change cycle.

    .venv/bin/python bench/restore.py [--rows 1000000] [--runs 3] [--fuse]

Starts the test Hub server (tests/hubserver.py) in-process on 127.0.0.1,
pushes one backup of a `bench/make_db.py` database with the worker's own
code, then times, each in a fresh empty data folder, median of --runs:
- baseline: `hf_hub_download` of the restore's source files (reviews.db and, since the incremental
  layout, reviews-delta.db) + `shutil.copyfile` of the db into place;
- ours: `worker.restore.restore` (download, integrity_check, schema check, atomic rename into place);
- ours from the mount: the same backup published to a folder target on a mount
  (worker.targets.FolderTarget, on_mount) and restored from it. `--fuse`: the folder is an
  rclone FUSE mount with a write-back cache (as a Space's bucket volume), else a local folder.
It also counts the HTTP requests of a backup cycle with no change and of one with a change.
Runtime: about 1 minute at 1M rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-hf-home-"))

from bench.make_db import cached_db  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.schema import open_store_db  # noqa: E402
from shared.store import insert_review  # noqa: E402
from shared.reviews import Review  # noqa: E402
from tests.hubserver import HubServer  # noqa: E402
from worker.backup import Backup  # noqa: E402
from worker.hub import HubTarget  # noqa: E402
from worker.restore import restore  # noqa: E402
from worker.targets import FolderTarget  # noqa: E402

REPO = "bench/feedback"
TOKEN = "tok-bench"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fuse", action="store_true", help="the mount target on an rclone FUSE mount")
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.runs = 2000, 1
    from contextlib import nullcontext

    from tests.container_images import FuseMount

    work = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    try:
        with FuseMount(work / "bucket", work / "mnt") if args.fuse else nullcontext():
            mount_dir = (work / "mnt" if args.fuse else work / "mount-folder") / "feedback-backups"
            return run(args, work, FolderTarget(mount_dir, keep=3, on_mount=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # after the unmount


def run(args, work: Path, mount: FolderTarget) -> int:
    source = cached_db(args.rows)
    srv = HubServer(tokens={TOKEN: "bench"}, lfs_threshold=10_000_000)
    srv.start()
    try:
        api = HfApi(endpoint=srv.endpoint, token=TOKEN)
        origin = work / "origin"
        origin.mkdir()
        shutil.copyfile(source, origin / "reviews.db")
        env = {"FEEDBACK_DATA_DIR": str(origin), "HF_DATASET_REPO": REPO}
        config = load_config(env)
        Backup(config, HubTarget(api, REPO)).run()
        size_mb = (origin / "reviews.db").stat().st_size / 1e6

        srv.reset_stats()
        Backup(config, HubTarget(api, REPO)).run()
        no_change = srv.stats()
        conn = open_store_db(config.db_path)
        insert_review(conn, Review("bench", 5, "one more"))
        conn.close()
        srv.reset_stats()
        Backup(config, HubTarget(api, REPO)).run()
        change = srv.stats()
        t = time.perf_counter()
        Backup(config, mount).run()
        mount_publish = time.perf_counter() - t

        # What a restore reads: the base db, and the delta when the backup has one (worker/tree.py).
        sources = [n for n in ("reviews.db", "reviews-delta.db")
                   if n in api.list_repo_files(REPO, repo_type="dataset")]
        baseline, ours, from_mount = [], [], []
        for i in range(args.runs):
            dest = work / f"plain{i}"
            dest.mkdir()
            t = time.perf_counter()
            for name in sources:
                hf_hub_download(REPO, name, repo_type="dataset", endpoint=srv.endpoint, token=TOKEN,
                                local_dir=dest / "dl")
            shutil.copyfile(dest / "dl" / "reviews.db", dest / "reviews.db")
            baseline.append(time.perf_counter() - t)
            shutil.rmtree(dest)

            fresh = work / f"fresh{i}"
            t = time.perf_counter()
            restore(load_config({"FEEDBACK_DATA_DIR": str(fresh), "HF_DATASET_REPO": REPO}), HubTarget(api, REPO))
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
    print(f"\nRestore of a {args.rows:,}-review backup ({size_mb:.0f} MB db), median of {args.runs} runs\n")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
