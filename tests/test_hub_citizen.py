"""A good citizen of the Hub: the commit budget, the Hub's 429 quota, and a history bounded for a year.

Everything goes through the real huggingface_hub client to tests/hubserver.py, whose time is a
FakeClock shared with the worker's HubTarget (tests/hub_fixtures.py `clocked_hub`): the Hub dates
commits and counts its commit quota by it, the worker budgets commits and keeps points by it.
Backups are made by the real `Backup(config, target).run()`; a cycle asks the target first, as
the loop does (`target.wait_seconds() == 0`, else the cycle is skipped without a failure).
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from shared import utc
from shared.config import DEFAULT_COMMITS_PER_HOUR, DEFAULT_SQUASH_AFTER_COMMITS, load_config
from shared.db import connect, insert_review, open_store_db
from shared.reviews import Review
from tests.hub_fixtures import HUB_TOKEN, hub_client_env
from worker.__main__ import backup_at
from worker.backup import Backup
from worker.budget import QUOTA_BACKOFF_SECONDS
from worker.hub import HubTarget
from worker.loop import BackupLoop
from worker.restore import NoBackup, restore
from worker.state import load_state

REPO = "alice/feedback"
HOUR, DAY = 3600, 86400


def config_for(path, **extra):
    return load_config({"FEEDBACK_DATA_DIR": str(path), "HF_DATASET_REPO": REPO, **extra})


def target_for(srv, clock, **kwargs):
    kwargs.setdefault("commits_per_hour", DEFAULT_COMMITS_PER_HOUR)
    return HubTarget(HfApi(endpoint=srv.endpoint, token=HUB_TOKEN), REPO, clock=clock, **kwargs)


class Form:
    """The live database, and a cycle as the loop makes it."""

    def __init__(self, config, target):
        self.config = config
        self.target = target
        self.conn = open_store_db(config.db_path)
        self.rows = 0
        self.published = []  # (at epoch, rows, revision) of every backup made, oldest first

    def review(self, n=1):
        for _ in range(n):
            self.rows += 1
            insert_review(self.conn, Review(f"r{self.rows}", 1 + self.rows % 5, "fine"))

    def cycle(self) -> bool:
        """One loop cycle for the Hub target: skipped while it does not take a publish."""
        if self.target.wait_seconds() > 0:
            return False
        outcome = Backup(self.config, self.target).run()
        if outcome.published is not None:
            p = outcome.published
            self.published.append((utc.parse_iso(p.at), p.rows, p.revision))
        return True


def restore_at(config, target, at: str):
    """What `python -m worker restore --at` does with one target (worker/__main__.py)."""
    chosen = backup_at(target, at)
    restore(config, target, revision=chosen.revision)
    return chosen


def restored_rows(config) -> int:
    conn = connect(config.db_path, readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    finally:
        conn.close()


def test_defaults_are_well_under_the_hubs_limits():
    config = config_for("/tmp/unused-hubcite")
    assert config.hf_commits_per_hour == DEFAULT_COMMITS_PER_HOUR <= 128 // 4
    assert config.hf_squash_after_commits == DEFAULT_SQUASH_AFTER_COMMITS <= 1000
    for bad in ("-1", "129", "x"):
        with pytest.raises(ValueError, match="HF_COMMITS_PER_HOUR"):
            config_for("/tmp/unused-hubcite", HF_COMMITS_PER_HOUR=bad)


def test_busy_form_commits_within_the_budget_and_the_next_commit_carries_everything(clocked_hub, tmp_path):
    srv, clock = clocked_hub
    form = Form(config_for(tmp_path), target_for(srv, clock, commits_per_hour=10))
    skipped = 0
    srv.reset_stats()
    for minute in range(3 * 60):  # three hours, a review a minute, the loop's 60 s cycle
        form.review()
        clock.advance(60)
        if not form.cycle():
            skipped += 1
    made = srv.commit_times(REPO)[1:]  # after the repo's initial commit
    assert len(made) == 30 and skipped == 150, (len(made), skipped)
    for i, t in enumerate(made):  # any sliding hour holds at most the budget
        assert sum(1 for u in made[i:] if u - t < HOUR) <= 10
    # Coalesced: the newest backup holds every review but those of the last few skipped minutes.
    assert form.rows - form.published[-1][1] < 6
    stats = srv.stats()
    assert stats["commit"] == 30 and stats.get("total", 0) <= 30 * 6, stats
    assert srv.quota_refusals == 0


@pytest.mark.parametrize("send_retry_after", [True, False], ids=["retry-after", "no-retry-after"])
def test_quota_429_backs_off_logs_once_shows_in_status_and_recovers(clocked_hub, tmp_path, caplog, send_retry_after):
    srv, clock = clocked_hub
    config = config_for(tmp_path)
    target = target_for(srv, clock, commits_per_hour=60)  # above the Hub's quota here (3): the Hub refuses
    srv.set_commit_quota(3, retry_after=send_retry_after)
    form = Form(config, target)
    loop = BackupLoop(Backup(config, target), interval=60, backoff_cap=600, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="worker"):
        for _ in range(2):  # the repo's first commit and two backups fill the Hub's hour
            form.review()
            clock.advance(60)
            loop.tick()
        assert loop.failures == 0
        form.review()
        clock.advance(60)
        loop.tick()  # refused: 429
        assert loop.failures == 1 and srv.quota_refusals == 1
        wait = target.wait_seconds()
        expected = (HOUR - 2 * 60) if send_retry_after else QUOTA_BACKOFF_SECONDS
        assert abs(wait - expected) <= 61, (wait, expected)
        state = load_state(config.state_path)
        assert "429" in state.last_error and state.consecutive_failures == 1
        env = hub_client_env(srv.endpoint) | {"FEEDBACK_DATA_DIR": str(config.data_dir), "HF_DATASET_REPO": REPO}
        status = subprocess.run([sys.executable, "-m", "worker", "status", "--json"], env=env, text=True,
                                capture_output=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
        assert status.returncode == 1 and "429" in json.loads(status.stdout)["last_error"], status.stderr
        # Never a tight retry: while it waits, the loop's cycles send nothing to the Hub.
        srv.reset_stats()
        waited = 0
        while target.wait_seconds() > 60:
            form.review()
            clock.advance(60)
            loop.tick()
            waited += 60
            assert srv.stats().get("total", 0) == 0
        assert waited >= expected - 121
        # Then it tries again (without Retry-After: maybe refused again, same cause, not logged again).
        for _ in range(90):
            if loop.failures == 0:
                break
            form.review()
            clock.advance(60)
            loop.tick()
        assert loop.failures == 0, "recovered"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "429" in errors[0], errors  # then only the loop's 10-minute reminders
    assert not any("cause changed" in r.getMessage() for r in caplog.records)
    assert any("recovered after" in r.getMessage() for r in caplog.records)
    assert f"{form.rows:,} reviews" in srv.list_commits(REPO)[0]["title"], "the next commit carries everything"


def test_client_retries_a_429_on_preupload_itself(clocked_hub, tmp_path):
    """huggingface_hub retries 429 on preupload, LFS and HEAD (sleeping Retry-After + 1 s), not on the
    commit POST: a 429 on preupload costs one more request and a wait inside the call, no failure."""
    srv, clock = clocked_hub
    form = Form(config_for(tmp_path), target_for(srv, clock))
    form.review()
    srv.fail_next(1, mode="429", retry_after=0, only="preupload")
    assert form.cycle() and form.published
    assert srv.stats()["preupload"] == 2 and srv.stats()["commit"] == 1


@pytest.fixture
def quick_dir(tmp_path):
    """A folder on tmpfs when there is one: the year's outcome does not depend on durability, and
    on a shared disk the backups' fsyncs are a third of a cycle's time."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="hub-citizen-") as folder:
        yield Path(folder)


def test_a_year_of_a_busy_form_keeps_main_bounded_and_restore_at_works_at_every_age(clocked_hub, quick_dir):
    """A simulated year, in seconds.

    Why it is faithful: the history's shape (which commits stay on main, which tags are made and
    which are kept) depends only on WHEN commits happen and HOW MANY main has since its last
    squash; the data in them does not matter. So the year is driven through the real Backup and
    HubTarget with the real client and server, at a cadence that creates every point the ladder
    keeps, where full rate (a commit every 3 minutes, 175,200 a year) would take hours:
    - older than 90 days: a backup every 10 days (the monthly rule keeps each month's first);
    - 90 to 30 days: one every 2 days; 30 days to 2 days: one every 12 hours (the daily rule
      keeps each day's first, and must drop the other);
    - the last 46 hours: one an hour (the hourly rule keeps all);
    - the last 2 hours: the real cadence, a review a minute and the loop's 60 s cycle, under
      the default budget.
    The squash bound is per commit count, so it is exercised with HF_SQUASH_AFTER_COMMITS=40
    (about 5 squashes in this year; the default, 1,000, is the same code: see the first test).
    """
    srv, clock = clocked_hub
    squash_after = 40
    FULL_RATE = 2  # hours
    config = config_for(quick_dir / "live")
    form = Form(config, target_for(srv, clock, squash_after=squash_after))
    end = clock.now + 365 * DAY
    schedule = []
    t = clock.now + 3 * HOUR + 17 * 60  # not on a boundary: a day's first backup is not at 00:00
    while t < end - 90 * DAY:
        schedule.append(t)
        t += 10 * DAY
    while t < end - 30 * DAY:
        schedule.append(t)
        t += 2 * DAY
    while t < end - 2 * DAY:
        schedule.append(t)
        t += 12 * HOUR
    t = end - 48 * HOUR + 5 * 60
    while t < end - FULL_RATE * HOUR:
        schedule.append(t)
        t += HOUR
    longest_main = 0
    for at in schedule:
        clock.now = at
        form.review(3)
        assert form.cycle()
        longest_main = max(longest_main, len(srv.list_commits(REPO)))
    clock.now = end - FULL_RATE * HOUR
    full_rate_start = len(form.published)
    srv.reset_stats()
    for _ in range(FULL_RATE * 60):
        form.review()
        clock.advance(60)
        form.cycle()
        longest_main = max(longest_main, len(srv.list_commits(REPO)))
    full_rate = form.published[full_rate_start:]
    now = clock.now

    # The budget held at full rate (a squash right after a budgeted commit may add one).
    times = srv.commit_times(REPO)
    for i, t0 in enumerate(times):
        if t0 >= end - FULL_RATE * HOUR:
            assert sum(1 for u in times[i:] if u - t0 < HOUR) <= DEFAULT_COMMITS_PER_HOUR + 1
    assert 37 <= len(full_rate) <= 41
    # API calls at full rate, per hour (each commit: repo_info, validate-yaml, preupload, commit; a
    # tag an hour and its thinning; a squash every 40 commits).
    calls_per_hour = srv.stats()["total"] / FULL_RATE
    assert calls_per_hour < 150, srv.stats()

    # The history bound: main never held more than HF_SQUASH_AFTER_COMMITS commits.
    assert longest_main <= squash_after
    squashes = sum(1 for c in srv.list_commits(REPO) if c["title"].startswith("Squashed"))
    assert squashes == 1 and len(form.published) > 4 * squash_after  # squashed at least 4 times

    # The kept points are exactly what the ladder promises (an independent statement of it).
    target = form.target
    firsts = {}
    for at, rows, rev in form.published:  # the first backup of each hour, day and month
        for key in (utc.iso(at)[:13], utc.iso(at)[:10], utc.iso(at)[:7]):
            firsts.setdefault(key, at)
    hour_firsts = [(at, rows) for at, rows, _ in form.published if firsts[utc.iso(at)[:13]] == at]
    last_tagged = max(at for at, _ in hour_firsts)  # the ladder thins its tags when it makes one
    expected = {at for at, _ in hour_firsts
                if last_tagged - at < 48 * HOUR
                or (last_tagged - at < 90 * DAY and firsts[utc.iso(at)[:10]] == at)
                or firsts[utc.iso(at)[:7]] == at}
    points = target.points()
    assert {p.at for p in points} == expected
    assert 100 <= len(points) <= 48 + 90 + 13  # hourly 48 h, daily 90 days, monthly before
    assert set(srv.list_tags(REPO)) == {p.tag for p in points}

    # `backups` lists main's commits and every kept point (target.history() is what it prints).
    listed = target.history()
    assert {e.tag for e in listed if e.tag} == {p.tag for p in points}
    main = {c["oid"] for c in srv.list_commits(REPO)}
    assert len([e for e in listed if e.revision in main]) == len(main)
    assert [e.at for e in listed] == sorted((e.at for e in listed), reverse=True)

    # restore --at at several ages: the newest kept backup at or before that time, at the grain promised.
    squash_at = utc.parse_iso(ladder_fields(srv.list_commits(REPO)[-1]["title"])["at"])
    restorable = sorted({(at, rows) for at, rows, _ in form.published if at >= squash_at}
                        | {(p.at, p.rows) for p in points})
    # Every backup since main's last squash (a backup every 3 minutes here), then hourly for 2 days,
    # daily for 90 days, then a month's first (10 days' grain in this simulation: + 10 days).
    for i, (age, grain) in enumerate([(10 * 60, 4 * 60 if now - 10 * 60 >= squash_at else HOUR),
                                      (30 * HOUR + 17 * 60, HOUR), (30 * DAY + 5 * HOUR, DAY),
                                      (200 * DAY + 3 * DAY, 31 * DAY + 10 * DAY)]):
        at = utc.iso(utc.parse_loose(utc.iso(now - age).removesuffix("Z")))
        want_at, want_rows = max(p for p in restorable if p[0] <= utc.parse_iso(at))
        assert utc.parse_iso(at) - want_at <= grain, (age, utc.iso(want_at))
        fresh = config_for(quick_dir / f"restore-{i}")
        assert restore_at(fresh, target, at).rows == want_rows
        assert restored_rows(fresh) == want_rows, (age, at)
    with pytest.raises(NoBackup):
        restore_at(config_for(quick_dir / "too-old"), target, utc.iso(now - 400 * DAY))

    # The same through the CLI, in a process of its own (its clock is the real one: listing and
    # restoring do not need the budget's).
    def cli(data_dir, *args):
        env = hub_client_env(srv.endpoint) | {"FEEDBACK_DATA_DIR": str(data_dir), "HF_DATASET_REPO": REPO}
        return subprocess.run([sys.executable, "-m", "worker", *args], env=env, text=True, capture_output=True,
                              timeout=120, cwd=Path(__file__).resolve().parent.parent)

    r = cli(quick_dir / "cli", "backups", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(e["revision"] for e in json.loads(r.stdout)) == sorted(e.revision for e in listed)
    at = utc.iso(now - 30 * DAY - 5 * HOUR)
    r = cli(quick_dir / "cli", "restore", "--at", at)
    assert r.returncode == 0, r.stderr
    assert restored_rows(config_for(quick_dir / "cli")) == restored_rows(config_for(quick_dir / "restore-2"))


def ladder_fields(title: str) -> dict:
    return dict(part.split("=", 1) for part in title.split() if "=" in part)


def test_budget_and_points_survive_a_restart_on_a_wiped_disk(clocked_hub, tmp_path):
    """Learnt from the Hub, not the local disk: a Space's disk is wiped at every restart."""
    srv, clock = clocked_hub
    form = Form(config_for(tmp_path / "a"), target_for(srv, clock, commits_per_hour=5, squash_after=4))
    for _ in range(4):
        form.review()
        clock.advance(HOUR / 5)
        assert form.cycle()
    # Spent: four backups and the squash they caused (main reached 4 commits) are the hour's five.
    assert form.target.wait_seconds() > HOUR / 5
    assert any(c["title"].startswith("Squashed") for c in srv.list_commits(REPO))
    again = target_for(srv, clock, commits_per_hour=5, squash_after=4)  # a new process, a new disk
    assert again.wait_seconds() > 0, "the squash commit says how many commits the hour had"
    assert [p.tag for p in again.points()] == [p.tag for p in form.target.points()]
    clock.advance(HOUR)
    assert again.wait_seconds() == 0


def test_wait_seconds_never_raises_and_does_not_ask_an_unreachable_hub_at_every_cycle(clocked_hub, tmp_path):
    srv, clock = clocked_hub
    form = Form(config_for(tmp_path), target_for(srv, clock))
    form.review()
    assert form.cycle()  # the repo exists, with a backup
    target = target_for(srv, clock)  # a new process
    srv.reset_stats()
    srv.fail_next(1, mode="401", only="commits")
    assert target.wait_seconds() == 0.0  # could not learn the hour: the publish will say why, if it fails
    assert target.wait_seconds() == 0.0
    assert srv.stats().get("commits") == 1, "not asked again at once"
    clock.advance(301)
    assert target.wait_seconds() == 0.0
    assert srv.stats().get("commits") == 2 and target.budget.used() == 2  # learnt: the repo's first commit, the backup


def test_a_long_history_from_before_the_ladder_keeps_its_points_through_the_first_squash(clocked_hub, tmp_path):
    """A dataset that grew without a squash (the old default): its first squash tags first what the
    ladder keeps of it, so restore --at still reaches its past."""
    srv, clock = clocked_hub
    config = config_for(tmp_path / "live")
    old = Form(config, target_for(srv, clock, squash_after=0))  # no squash, no tags
    for day in range(30):
        clock.now = 1767225600.0 + day * DAY + 9 * HOUR
        old.review(2)
        assert old.cycle()
    assert srv.list_tags(REPO) == {}
    new = Form(config, target_for(srv, clock, squash_after=20))  # main has 31 commits: the first publish squashes
    new.rows = old.rows
    clock.advance(DAY)
    new.review()
    assert new.cycle()
    assert len(srv.list_commits(REPO)) == 1 and srv.list_commits(REPO)[0]["title"].startswith("Squashed")
    assert len(new.target.points()) == 31  # every day's backup (within 90 days) and the newest
    at = utc.iso(1767225600.0 + 10 * DAY + 12 * HOUR)
    fresh = config_for(tmp_path / "restored")
    assert restore_at(fresh, new.target, at).rows == 2 * 11 and restored_rows(fresh) == 22
