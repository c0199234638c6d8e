"""Data at risk with a wiped disk and no final backup: how long an acknowledged review waits
before it is safe on each target (on the bucket mount's store, and on the Hub).

    .venv/bin/python bench/data_at_risk.py [--reviews 8] [--spacing 7] [--mount-interval 10]
                                           [--hub-interval 60] [--write-back 2]

Runs the real worker (`python -m worker run`) with the test Hub server (tests/hubserver.py)
and a real FUSE mount (rclone with a write-back cache, --write-back seconds like hf-mount's
debounced flush) as BACKUP_MOUNT_DIR. Commits reviews into the live database as the form does,
one every --spacing seconds (jittered, so they land at every phase of the cadences), and polls:
- mount: the newest manifest in the folder behind the FUSE mount (the "bucket": a file is there
  only after close + write-back) holds the review's id;
- Hub: the dataset's newest backup holds it.
A disk wiped at that moment (a Space restart, no final backup) loses a review younger than this.
The baseline is the Hub alone at its interval: the only target before the mount target.
Runtime: about reviews * spacing + hub interval (~2 min with the defaults).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import HUB_REPO as REPO
from bench._common import HUB_TOKEN as TOKEN
from bench._common import ROOT, quiet_hub_client
from bench._common import parser as bench_parser

quiet_hub_client()

from huggingface_hub import HfApi  # noqa: E402
from shared.schema import open_store_db  # noqa: E402
from shared.store import insert_review  # noqa: E402
from shared.reviews import Review  # noqa: E402
from tests.container_images import FuseMount  # noqa: E402
from tests.hubserver import HubServer  # noqa: E402
from worker.hub import HubTarget  # noqa: E402
from worker.targets import FolderTarget  # noqa: E402


def newest_max_id(target) -> int:
    try:
        newest = target.newest()
    except Exception:  # noqa: BLE001 - mid-commit or mid-write: not there yet
        return 0
    return newest.max_id if newest is not None else 0


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--reviews", type=int, default=8)
    parser.add_argument("--spacing", type=float, default=7.0)
    parser.add_argument("--mount-interval", type=float, default=10.0)
    parser.add_argument("--hub-interval", type=float, default=60.0)
    parser.add_argument("--write-back", type=float, default=2.0)
    args = parser.parse_args()
    if args.smoke:
        args.reviews, args.spacing, args.mount_interval, args.hub_interval, args.write_back = 2, 1.0, 2.0, 4.0, 0.5
    work = Path(tempfile.mkdtemp(prefix="bench-risk-"))
    srv = HubServer(tokens={TOKEN: "bench"}, lfs_threshold=10_000_000).start()
    worker = None
    try:
        with FuseMount(work / "bucket", work / "mnt", write_back_seconds=args.write_back):
            data = work / "data"
            conn = open_store_db(data / "reviews.db")
            env = {**os.environ, "FEEDBACK_DATA_DIR": str(data), "BACKUP_MOUNT_DIR": str(work / "mnt" / "backups"),
                   "BACKUP_INTERVAL_SECONDS": str(args.hub_interval),
                   "BACKUP_MOUNT_INTERVAL_SECONDS": str(args.mount_interval), "HF_ENDPOINT": srv.endpoint,
                   "HF_DATASET_REPO": REPO, "HF_TOKEN": TOKEN, "WORKER_NICE": "0", "LOG_LEVEL": "WARNING"}
            worker = subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=(work / "worker.log").open("w"))
            time.sleep(3)  # started, first (empty) cycle done
            store = FolderTarget(work / "bucket" / "backups", keep=10, on_mount=True)  # behind the mount
            hub = HubTarget(HfApi(endpoint=srv.endpoint, token=TOKEN), REPO)
            acked: dict[int, float] = {}
            safe: dict[str, dict[int, float]] = {"mount": {}, "hub": {}}
            rng = random.Random(7)
            next_at = time.monotonic()
            deadline = None
            while True:
                now = time.monotonic()
                if len(acked) < args.reviews and now >= next_at:
                    rid = insert_review(conn, Review("bench", 5, f"review {len(acked)}"))
                    acked[int(rid) if rid else len(acked) + 1] = time.monotonic()
                    next_at = now + args.spacing * rng.uniform(0.5, 1.5)
                    if len(acked) == args.reviews:
                        deadline = now + args.hub_interval * 2 + 60
                for name, target in (("mount", store), ("hub", hub)):
                    top = newest_max_id(target)
                    for rid, at in acked.items():
                        if rid <= top and rid not in safe[name]:
                            safe[name][rid] = time.monotonic() - at
                if len(acked) == args.reviews and all(len(s) == args.reviews for s in safe.values()):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    print("timed out waiting; see", work / "worker.log", file=sys.stderr)
                    break
                time.sleep(0.25)
            conn.close()
            worker.kill()  # no final backup: what a wiped disk leaves is what the targets held
            worker.wait(30)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(30)
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nData at risk: seconds from an acknowledged review to safe on the target "
          f"({args.reviews} reviews, ~{args.spacing:g} s apart; polled every 0.25 s)\n")
    print(f"| {'target':<44} | {'median':>7} | {'max':>7} | {'bound':>26} |")
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 28}|")
    rows = [("Hub dataset, every %gs (baseline: the only target)" % args.hub_interval, "hub",
             f"interval + commit = {args.hub_interval:g} s + c"),
            (f"bucket mount, every {args.mount_interval:g}s, write-back {args.write_back:g}s", "mount",
             f"interval + write-back = {args.mount_interval + args.write_back:g} s")]
    for label, key, bound in rows:
        values = list(safe[key].values())
        med = f"{statistics.median(values):7.1f}" if values else "    n/a"
        top = f"{max(values):7.1f}" if values else "    n/a"
        print(f"| {label:<44} | {med} | {top} | {bound:>26} |")
    missing = {k: args.reviews - len(v) for k, v in safe.items() if len(v) < args.reviews}
    if missing:
        print(f"\nnot safe by the end: {missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
