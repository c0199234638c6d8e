"""Several backup targets: a folder on a mount beside the primary target, each with its own state,
backoff and cadence; restore takes the newest backup across them. Real files, real SQLite."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from shared.config import load_config
from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from worker.backup import Backup
from worker.hub import HubError
from worker.loop import BackupLoop
from worker.privacy import NamesChoiceMissing
from worker.restore import fetch_checked
from worker.startup import prepare
from worker.state import load_state
from worker.targets import BASES_DIR, PARTIAL, FolderTarget
from worker.tree import DELTA_FILE
from worker.snapshot import integrity_check

ROOT = Path(__file__).resolve().parent.parent


def add(config, n=1, tag="r"):
    conn = open_store_db(config.db_path)
    for i in range(n):
        insert_review(conn, Review(f"{tag}{i}", 1 + i % 5, "c"))
    conn.close()


def rows(db: Path) -> int:
    conn = connect(db, readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    finally:
        conn.close()


def make_config(tmp_path, name="data", **extra):
    return load_config({"FEEDBACK_DATA_DIR": str(tmp_path / name), "BACKUP_INTERVAL_SECONDS": "1", **extra})


def test_a_mount_backup_writes_the_base_once_and_every_file_checked(tmp_path):
    config = make_config(tmp_path)
    mount = FolderTarget(tmp_path / "mount", keep=2, on_mount=True)
    add(config, 3)
    first = Backup(config, mount).run().published
    base = tmp_path / "mount" / BASES_DIR / f"{first.base_sha256}.db"
    assert first.location == str(base) and base.exists()
    base_stat = base.stat()
    for batch in range(3):  # appends: only a new delta and manifest each time; the base is shared
        add(config, 2, tag=f"b{batch}-")
        info = Backup(config, mount).run().published
        assert info.base_sha256 == first.base_sha256 and info.rows == 3 + 2 * (batch + 1)
    assert base.stat().st_ino == base_stat.st_ino and base.stat().st_mtime_ns == base_stat.st_mtime_ns
    files = sorted(p.relative_to(tmp_path / "mount").as_posix() for p in (tmp_path / "mount").rglob("*"))
    assert not [f for f in files if f.endswith(PARTIAL)]
    assert len([f for f in files if f.endswith(".json")]) == 2  # keep=2
    assert len([f for f in files if f.endswith("/" + DELTA_FILE)]) == 2  # the pruned backups' deltas went with them
    for db in (tmp_path / "mount").rglob("*.db"):
        integrity_check(db)  # never a torn SQLite file on the mount
    fetched, manifest, summary = fetch_checked(mount, tmp_path / "staging")
    assert summary.total == 9 and manifest.revision == info.revision
    # A new lineage (a full cycle after a change) makes a new base; the old one goes once no backup names it.
    add(config, 1)
    full = Backup(config, mount).run(full=True).published
    Backup(config, mount).run(force=True)
    assert full.base_sha256 != first.base_sha256
    assert [p.name for p in (tmp_path / "mount" / BASES_DIR).iterdir()] == [f"{full.base_sha256}.db"]


def test_a_local_folder_on_another_file_system_gets_copies_not_links(tmp_path):
    """/dev/shm is tmpfs, the tests' tmp folder another file system: os.link would fail with EXDEV."""
    config = make_config(tmp_path)
    shm = Path("/dev/shm") / f"feedback-test-{os.getpid()}"
    try:
        target = FolderTarget(shm, keep=2)
        add(config, 2)
        info = Backup(config, target).run().published
        assert Path(info.location).stat().st_nlink == 1
        assert fetch_checked(target, tmp_path / "staging")[2].total == 2
    finally:
        import shutil
        shutil.rmtree(shm, ignore_errors=True)


class BrokenTarget(FolderTarget):
    """A target that is down: every publish fails, as a Hub outage would (HubError, Retry-After)."""

    def __init__(self, folder, *, retry_after=None):
        super().__init__(folder, keep=3)
        self.name = f"down:{folder}"
        self.retry_after = retry_after

    def publish(self, *args, **kwargs):
        raise HubError("the Hub is rate limiting us (429)", retry_after=self.retry_after)


class BudgetTarget(FolderTarget):
    """A target with a commit budget, as the Hub target has: it asks the loop to wait."""

    wait = 0.0

    def wait_seconds(self) -> float:
        return self.wait


def test_each_target_has_its_own_backoff_and_a_failing_one_never_holds_back_the_other(tmp_path, caplog):
    config = make_config(tmp_path)
    now = [1000.0]
    mount = FolderTarget(tmp_path / "mount", keep=50, on_mount=True)
    down = BrokenTarget(tmp_path / "down", retry_after=300)
    loop = BackupLoop([Backup(config, mount), Backup(config, down)], interval=1, backoff_cap=5,
                      clock=lambda: now[0], intervals={mount.name: 1, down.name: 60})
    for i in range(4):
        add(config, 1, tag=f"t{i}-")
        loop.tick()
        now[0] += 1
    mine, theirs = loop.runners
    assert mine.failures == 0 and theirs.failures == 1  # backing off: tried once, not every tick
    assert theirs.not_before - 1000.0 >= 300  # the server's Retry-After, past our own cap of 5 s
    assert mount.newest().rows == 4
    state = load_state(config.state_path)
    assert state.target(mount.name).last_published.rows == 4 and state.target(mount.name).consecutive_failures == 0
    assert state.target(down.name).consecutive_failures == 1 and "429" in state.target(down.name).last_error
    assert state.target(down.name).next_try_at is not None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and down.name in errors[0].getMessage() and not errors[0].exc_info


def test_a_target_that_asks_to_wait_is_skipped_without_a_failure_and_gets_everything_next(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="worker.loop")  # a budget's short wait is logged at DEBUG
    config = make_config(tmp_path)
    hub_like = BudgetTarget(tmp_path / "budget", keep=10)
    hub_like.wait = 120.0
    loop = BackupLoop(Backup(config, hub_like), interval=1, backoff_cap=5)
    for i in range(3):
        add(config, 1, tag=f"w{i}-")
        loop.tick()
    assert hub_like.newest() is None and loop.failures == 0
    waits = [r for r in caplog.records if "asks to wait" in r.getMessage()]
    assert len(waits) == 1  # once, not every tick
    assert load_state(config.state_path).target(hub_like.name).waiting
    hub_like.wait = 0.0
    loop.tick()
    assert hub_like.newest().rows == 3 and len(hub_like.history()) == 1  # coalesced: one backup carries all
    assert load_state(config.state_path).target(hub_like.name).waiting is None


def test_names_choice_missing_is_permanent_one_line_and_waits_the_longest_backoff(tmp_path, caplog):
    """The owner must set HF_DATASET_PUBLISH_NAMES: retrying soon cannot help, and no traceback."""

    class PublicDataset(FolderTarget):
        def names_policy(self):
            raise NamesChoiceMissing("not pushing: the dataset is public and HF_DATASET_PUBLISH_NAMES is not set")

    config = make_config(tmp_path)
    add(config, 1)
    now = [50.0]
    loop = BackupLoop(Backup(config, PublicDataset(tmp_path / "public", keep=2)), interval=1, backoff_cap=600,
                      clock=lambda: now[0])
    loop.tick()
    assert loop.failures == 1 and loop.not_before - 50.0 == 600
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and not errors[0].exc_info and "HF_DATASET_PUBLISH_NAMES" in errors[0].getMessage()


def test_restore_on_a_fresh_disk_takes_the_newest_backup_across_targets(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="worker.startup")
    origin = make_config(tmp_path, "origin")
    mount = FolderTarget(tmp_path / "mount", keep=5, on_mount=True)
    slow = FolderTarget(tmp_path / "slow", keep=5)
    add(origin, 3)
    Backup(origin, slow).run()
    Backup(origin, mount).run()  # the same backup on both: restore reads the mount's (listed first, faster)
    fresh = make_config(tmp_path, "fresh1")
    prepare(fresh, [mount, slow])
    assert rows(fresh.db_path) == 3
    assert "from=mount:" in caplog.text
    add(origin, 2)
    Backup(origin, slow).run()  # the slow target is newer now: it wins
    caplog.clear()
    fresh = make_config(tmp_path, "fresh2")
    prepare(fresh, [mount, slow])
    assert rows(fresh.db_path) == 5 and "from=local:" in caplog.text
    add(origin, 4)
    Backup(origin, mount).run()  # and the mount is newer again
    caplog.clear()
    fresh = make_config(tmp_path, "fresh3")
    prepare(fresh, [mount, slow])
    assert rows(fresh.db_path) == 9 and "from=mount:" in caplog.text


class Unreachable(FolderTarget):
    def newest(self):
        raise HubError("cannot reach the Hub")


def test_a_target_unreachable_at_start_is_merged_before_its_first_push(tmp_path):
    origin = make_config(tmp_path, "origin")
    mount = FolderTarget(tmp_path / "mount", keep=5, on_mount=True)
    add(origin, 3)
    Backup(origin, mount).run()
    fresh = make_config(tmp_path, "fresh", RESTORE_TIMEOUT_SECONDS="0")
    hub = Unreachable(tmp_path / "hub", keep=5)
    prepare(fresh, [mount, hub])
    assert rows(fresh.db_path) == 3  # the mount's copy, at once: no wait for the Hub
    state = load_state(fresh.state_path)
    assert state.target(hub.name).pending_merge and not state.target(mount.name).pending_merge


def test_status_and_backups_show_every_target(tmp_path):
    env = {**os.environ, "FEEDBACK_DATA_DIR": str(tmp_path / "data"), "BACKUP_MOUNT_DIR": str(tmp_path / "mount"),
           "PYTHONPATH": str(ROOT)}
    env.pop("HF_DATASET_REPO", None)
    config = load_config(env)
    add(config, 2)

    def worker(*args):
        return subprocess.run([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    backup = worker("backup")
    assert backup.returncode == 0, backup.stderr
    assert f"mount:{tmp_path / 'mount'}: published rows=2" in backup.stdout
    assert f"local:{tmp_path / 'data' / 'backups'}: published rows=2" in backup.stdout
    status = json.loads(worker("status", "--json").stdout)
    assert [t["target"] for t in status["targets"]] == [f"mount:{tmp_path / 'mount'}",
                                                        f"local:{tmp_path / 'data' / 'backups'}"]
    assert all(t["last_backup_rows"] == 2 and t["consecutive_failures"] == 0 for t in status["targets"])
    listed = json.loads(worker("backups", "--json").stdout)
    assert sorted(e["target"].split(":")[0] for e in listed) == ["local", "mount"]
    text = worker("backups").stdout
    assert f"[mount:{tmp_path / 'mount'}]" in text and f"[local:{tmp_path / 'data' / 'backups'}]" in text
    config.db_path.unlink()
    restored = worker("restore")
    assert restored.returncode == 0 and "restored rows=2 from " + str(tmp_path / "mount") in restored.stdout


class StuckTarget(FolderTarget):
    """A Hub that takes its time: publish blocks until the test lets it go."""

    def __init__(self, folder):
        super().__init__(folder, keep=3)
        self.name = f"stuck:{folder}"
        import threading
        self.release = threading.Event()
        self.entered = threading.Event()

    def publish(self, *args, **kwargs):
        self.entered.set()
        assert self.release.wait(30)
        return super().publish(*args, **kwargs)


def test_a_slow_target_never_holds_back_the_mount(tmp_path):
    import threading

    from tests.apprunner import wait_until

    config = make_config(tmp_path)
    mount = FolderTarget(tmp_path / "mount", keep=50, on_mount=True)
    stuck = StuckTarget(tmp_path / "stuck")
    loop = BackupLoop([Backup(config, mount), Backup(config, stuck)], interval=0.2, backoff_cap=1,
                      intervals={mount.name: 0.2, stuck.name: 0.2})
    stop = threading.Event()
    add(config, 1)
    runner = threading.Thread(target=loop.run, args=(stop,))
    runner.start()
    try:
        assert stuck.entered.wait(10)  # the slow target is mid-upload...
        for i in range(3):  # ...while reviews keep coming and the mount keeps taking them
            add(config, 1, tag=f"more{i}-")
            wait_until(lambda n=i: (mount.newest() or None) and mount.newest().rows == n + 2, 10, 0.05,
                       "the mount's backup while the other target is stuck")
        assert stuck.newest() is None
        stuck.release.set()
        wait_until(lambda: stuck.newest() is not None and stuck.newest().rows == 4, 10, 0.05,
                   "the slow target catching up in one backup")
    finally:
        stuck.release.set()
        stop.set()
        runner.join(10)
    assert load_state(config.state_path).consecutive_failures == 0


def test_a_publish_cut_short_on_the_mount_leaves_nothing_a_restore_picks(tmp_path):
    """What a SIGKILL mid-publish leaves: files still `.partial`, a backup folder with no manifest.
    Restore ignores them (no manifest names them, no .db name is a partial file) and the next publish clears them."""
    config = make_config(tmp_path)
    folder = tmp_path / "mount"
    mount = FolderTarget(folder, keep=3, on_mount=True)
    add(config, 2)
    first = Backup(config, mount).run().published
    cut = folder / "reviews-000000000002-20990101T000000000000Z"
    cut.mkdir()
    (cut / (DELTA_FILE + PARTIAL)).write_bytes(b"SQLite format 3\x00 torn")
    (folder / f"{cut.name}.json{PARTIAL}").write_text('{"fingerprint": "x", "ro')
    (folder / BASES_DIR / ("0" * 64 + ".db" + PARTIAL)).write_bytes(b"torn")
    assert mount.newest() == first
    assert fetch_checked(mount, tmp_path / "staging")[2].total == 2
    add(config, 1)
    Backup(config, mount).run()
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert not [p for p in left if p.endswith(PARTIAL) or p.startswith(cut.name)], left
