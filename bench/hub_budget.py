"""Commits a day and Hub API calls an hour, before and after the commit budget.

A busy form at 1 review a minute and at 1 review a second, the worker's 60 s cycle, for
--hours simulated hours on a fake clock shared by tests/hubserver.py (which dates the commits
and counts every request by endpoint) and the worker's HubTarget. Each cycle is the real
`Backup(config, target).run()` through the real huggingface_hub client, made when the target
takes a publish (`target.wait_seconds() == 0`), as the loop does.

- before: no budget and HF_SQUASH_AFTER_COMMITS off (the defaults until now): every cycle
  with a change is a commit;
- after: the defaults now: HF_COMMITS_PER_HOUR=20, main squashed at 1,000 commits, older
  backups kept as tags (an hourly tag, and its thinning).

Per day = the simulated hours scaled to 24 (the cadence is periodic once the form is busy).

    .venv/bin/python bench/hub_budget.py              # 3 simulated hours per row, ~1-2 min here
    .venv/bin/python bench/hub_budget.py --hours 6
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))

from huggingface_hub import HfApi  # noqa: E402

from shared.config import DEFAULT_COMMITS_PER_HOUR, DEFAULT_SQUASH_AFTER_COMMITS, load_config  # noqa: E402
from shared.schema import open_store_db  # noqa: E402
from shared.store import insert_review  # noqa: E402
from shared.reviews import Review  # noqa: E402
from tests.hub_fixtures import HUB_TOKEN, HUB_TOKENS, FakeClock  # noqa: E402
from tests.hubserver import HubServer  # noqa: E402
from worker.backup import Backup  # noqa: E402
from worker.hub import HubTarget  # noqa: E402

REPO = "alice/feedback"
CYCLE_SECONDS = 60.0  # BACKUP_INTERVAL_SECONDS's default


def simulate(*, reviews_per_cycle: int, hours: float, after: bool, warm_hours: float = 1.0) -> dict:
    clock = FakeClock(1767225600.0)
    with tempfile.TemporaryDirectory() as tmp, HubServer(tokens=HUB_TOKENS, clock=clock) as srv:
        config = load_config({"FEEDBACK_DATA_DIR": tmp, "HF_DATASET_REPO": REPO})
        target = HubTarget(HfApi(endpoint=srv.endpoint, token=HUB_TOKEN), REPO, clock=clock,
                           commits_per_hour=DEFAULT_COMMITS_PER_HOUR if after else 0,
                           squash_after=DEFAULT_SQUASH_AFTER_COMMITS if after else 0)
        conn = open_store_db(config.db_path)
        n = 0
        # Warm-up hour (not counted): the repo's creation, the first full backup, the budget's first hour.
        cycles = int(hours * 3600 / CYCLE_SECONDS)
        warm = int(warm_hours * 3600 / CYCLE_SECONDS)
        started = time.perf_counter()
        for i in range(warm + cycles):
            if i == warm:
                srv.reset_stats()
                commits_before = len(srv.commit_times(REPO))
            for _ in range(reviews_per_cycle):
                n += 1
                insert_review(conn, Review(f"r{n}", 1 + n % 5, "busy"))
            clock.advance(CYCLE_SECONDS)
            if target.wait_seconds() == 0:
                Backup(config, target).run()
        conn.close()
        stats = srv.stats()
        commits = len(srv.commit_times(REPO)) - commits_before
    kinds = Counter({k: v for k, v in stats.items() if k not in ("total", "injected_failures")})
    return {"commits_per_day": commits * 24 / hours, "calls_per_hour": stats.get("total", 0) / hours,
            "calls_per_5min": stats.get("total", 0) / hours / 12,
            "kinds": {k: v / hours for k, v in kinds.most_common()}, "wall": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0, help="simulated hours per row (after a warm-up hour)")
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: the suite's smoke test (tests/test_bench_smoke.py)")
    args = parser.parse_args()
    if args.smoke:
        args.hours = 0.1
    rows = []
    for label, per_cycle in (("1 review a minute", 1), ("1 review a second", 60)):
        for after in (False, True):
            r = simulate(reviews_per_cycle=per_cycle, hours=args.hours, after=after, warm_hours=0.05 if args.smoke else 1.0)
            rows.append((label, after, r))
            print(f"  {label}, {'after' if after else 'before'}: {r['wall']:.1f} s wall", file=sys.stderr)
    print(f"\nCommits and Hub API calls, 60 s cycle, {args.hours:g} simulated hours per row "
          "(tests/hubserver.py's counters, fake clock)\n")
    print("| form | setting | commits a day | commits a year on `main` | API calls an hour | API calls per 5 min "
          "(free account's limit: 1,000) |")
    print("|---|---|---|---|---|---|")
    for label, after, r in rows:
        setting = (f"after: HF_COMMITS_PER_HOUR={DEFAULT_COMMITS_PER_HOUR}, squash at "
                   f"{DEFAULT_SQUASH_AFTER_COMMITS:,}" if after else "before: no budget, no squash")
        year = f"at most {DEFAULT_SQUASH_AFTER_COMMITS:,}" if after else f"{r['commits_per_day'] * 365:,.0f}"
        print(f"| {label} | {setting} | {r['commits_per_day']:,.0f} | {year} | {r['calls_per_hour']:,.0f} "
              f"| {r['calls_per_5min']:,.1f} |")
    print("\nAfter, in steady state beyond these hours: about one delete_tag an hour more (the hourly tags "
          "older than 48 h, the daily ones older than 90 days), and a super_squash (a commit), a listing of "
          "main and a repo_info every 1,000 commits, about every 2 days.")
    print("\nAPI calls an hour by endpoint\n")
    print("| form | setting | calls an hour by endpoint |")
    print("|---|---|---|")
    for label, after, r in rows:
        kinds = ", ".join(f"{k} {v:,.1f}" for k, v in r["kinds"].items())
        print(f"| {label} | {'after' if after else 'before'} | {kinds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
