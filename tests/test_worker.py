"""The backup worker on real files: the loop, signals, change detection, the local target."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest


from shared.db import connect, insert_review, open_store_db
from shared.reviews import Review
from tests.apprunner import wait_until
from worker.backup import Backup
from worker.loop import BackupLoop
from worker.restore import fetch_checked
from worker.state import load_state
from worker.targets import LocalFolderTarget

ROOT = Path(__file__).resolve().parent.parent


def manifests(folder: Path) -> list[Path]:
    return sorted(folder.glob("reviews-*.json"))


def add(config, n=1, rating=4):
    conn = open_store_db(config.db_path)
    for i in range(n):
        insert_review(conn, Review(f"r{i}", rating, "c"))
    conn.close()


def test_no_change_means_no_new_backup_also_after_a_restart(config):
    add(config, 3)
    target = LocalFolderTarget(config.backups_dir, keep=5)
    first = Backup(config, target).run()
    assert first.published is not None and first.published.rows == 3
    for _ in range(3):
        assert Backup(config, target).run().published is None
    # A restarted worker that lost its state file asks the target instead.
    config.state_path.unlink()
    assert Backup(config, LocalFolderTarget(config.backups_dir, keep=5)).run().published is None
    assert len(manifests(config.backups_dir)) == 1
    add(config, 1)
    assert Backup(config, target).run().published.rows == 4
    assert len(manifests(config.backups_dir)) == 2


def test_local_target_keeps_newest_n_complete_pairs(config):
    target = LocalFolderTarget(config.backups_dir, keep=3)
    for i in range(6):
        add(config, 1)
        Backup(config, target).run()
    kept = manifests(config.backups_dir)
    assert len(kept) == 3
    for manifest in kept:
        info = json.loads(manifest.read_text())
        stem = manifest.name[: -len(".json")]
        # base + delta db and the CSV shards, hard links to the worker's files
        folder = config.backups_dir / stem
        assert (folder / "reviews.db").exists() and (folder / "reviews-delta.db").exists()
        staging = config.data_dir / f"check-{stem}"
        staging.mkdir()
        db, _, summary = fetch_checked(target, staging, stem)  # what a restore makes of it: base + delta
        assert summary.total == info["rows"]
        conn = connect(db, readonly=True)
        assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == info["rows"]
        conn.close()
        shards = sorted(folder.glob("csv/*.csv"))
        assert sum(len(f.read_text().splitlines()) - 1 for f in shards) == info["rows"]
    assert [json.loads(m.read_text())["rows"] for m in kept] == [4, 5, 6]
    leftovers = [p for p in config.backups_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.slow  # 40 backups
def test_backup_names_sort_in_publish_order(config):
    """Restore and pruning pick the newest by name: the name must follow the publish order
    (a name made of two clock reads once sorted a newer backup first)."""
    target = LocalFolderTarget(config.backups_dir, keep=100)
    for _ in range(40):
        add(config, 1)
        Backup(config, target).run()
    rows = [json.loads(m.read_text())["rows"] for m in manifests(config.backups_dir)]
    assert rows == list(range(1, 41))
    assert target.newest().rows == 40


def test_a_failing_job_does_not_stop_the_loop_and_recovery_is_logged(config, caplog):
    add(config, 2)
    # The backups folder cannot be created while a file stands in its place.
    config.backups_dir.write_text("in the way")
    loop = BackupLoop(Backup(config, LocalFolderTarget(config.backups_dir, keep=3)),
                      interval=0.2, backoff_cap=0.4)
    stop = threading.Event()
    runner = threading.Thread(target=loop.run, args=(stop,))
    with caplog.at_level(logging.DEBUG, logger="worker"):
        runner.start()
        try:
            # Wait on what is asserted (the state file), not on the in-memory counter: the
            # counter and the file change at different instants (this test once failed between them).
            wait_until(lambda: load_state(config.state_path).consecutive_failures >= 3, 10,
                       what="three failed runs recorded")
            assert runner.is_alive()
            config.backups_dir.unlink()
            wait_until(lambda: manifests(config.backups_dir), 10, what="a backup after recovery")
            wait_until(lambda: load_state(config.state_path).consecutive_failures == 0, 5,
                       what="failures reset in the state file")
        finally:
            stop.set()
            runner.join(10)
    assert not runner.is_alive()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, "a failing streak is logged once, not on every try"
    assert "backup failed" in errors[0].getMessage() and "backups" in errors[0].getMessage()
    assert any("recovered after" in r.getMessage() for r in caplog.records)
    state = load_state(config.state_path)
    assert state.consecutive_failures == 0 and state.last_error is None


def test_backoff_grows_and_is_capped(config):
    config.backups_dir.write_text("in the way")
    add(config, 1)
    now = [1000.0]
    loop = BackupLoop(Backup(config, LocalFolderTarget(config.backups_dir, keep=3)),
                      interval=10, backoff_cap=35, clock=lambda: now[0])
    delays = []
    for _ in range(5):
        loop.tick()
        delays.append(loop.not_before - now[0])
        loop.tick()  # still backing off: no new attempt
        now[0] = loop.not_before
    assert delays == [10, 20, 35, 35, 35]
    assert loop.failures == 5


def run_worker(config, *extra_env):
    env = {**os.environ, "FEEDBACK_DATA_DIR": str(config.data_dir), "BACKUP_INTERVAL_SECONDS": "3600",
           "WORKER_NICE": "0"}
    return subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_makes_a_final_backup_and_exits(config):
    add(config, 2)
    proc = run_worker(config)
    try:
        wait_until(lambda: len(manifests(config.backups_dir)) == 1, 30, what="the first backup")
        add(config, 3)  # written after the last backup: only the final one can catch it
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    newest = json.loads(manifests(config.backups_dir)[-1].read_text())
    assert newest["rows"] == 5
    assert "final backup" in out and "shutdown complete" in out


def test_status_and_backup_commands(config):
    add(config, 2)
    env = {**os.environ, "FEEDBACK_DATA_DIR": str(config.data_dir)}
    r = subprocess.run([sys.executable, "-m", "worker", "backup"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "published rows=2" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "worker", "backup"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert "no change" in r.stdout
    r = subprocess.run([sys.executable, "-m", "worker", "status", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    status = json.loads(r.stdout)
    assert status["last_backup_rows"] == 2 and status["consecutive_failures"] == 0
    assert status["hub_sync"] == "off" and status["last_backup_location"].startswith(str(config.backups_dir))


LOCK_HOLDER = """
import sys
sys.path.insert(0, {root!r})
from shared.config import load_config
from worker.lock import worker_lock
from worker.state import update_target
config = load_config({{"FEEDBACK_DATA_DIR": {data!r}}})
with worker_lock(config.data_dir):
    print("locked", flush=True)
    sys.stdin.readline()
    update_target(config, "t", last_error="written by a manual backup")
"""


def test_the_state_file_is_updated_under_the_worker_lock(config):
    """A manual `python -m worker backup` and the loop cannot overwrite each other's state."""
    from worker.state import update_target

    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER.format(root=str(ROOT), data=str(config.data_dir))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        writer = threading.Thread(target=update_target, args=(config, "t"), kwargs={"consecutive_failures": 7})
        writer.start()
        writer.join(0.5)
        assert writer.is_alive(), "update_target wrote while another process held the worker lock"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(30) == 0
        writer.join(30)
    finally:
        holder.kill()
    state = load_state(config.state_path).target("t")
    assert state.consecutive_failures == 7 and state.last_error == "written by a manual backup"


def test_the_worker_lock_is_reentrant_in_one_thread_only(config):
    from worker.lock import worker_lock

    got = threading.Event()

    def take() -> None:
        with worker_lock(config.data_dir):
            got.set()

    other = threading.Thread(target=take, daemon=True)
    with worker_lock(config.data_dir):
        with worker_lock(config.data_dir):  # a backup run updating the state: no self-deadlock
            pass
        other.start()
        assert not got.wait(0.3), "another thread took the lock we hold"
    other.join(10)
    assert got.is_set()
