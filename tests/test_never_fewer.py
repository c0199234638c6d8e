"""A fresh, emptier database never overwrites a richer backup (issue: never publish fewer)."""

import json
import logging
import threading

from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from tests.hub_fixtures import HUB_TOKEN
from tests.hub_fixtures import HUB_REPO as REPO
from tests.hub_fixtures import hub_config
from tests.store_support import add_reviews as add
from tests.store_support import all_rows as local_rows
from tests.test_hub_sync import run_worker_cmd, target_for
from worker.backup import Backup, BackupConflict
from worker.loop import BackupLoop
from worker.startup import prepare
from worker.state import load_state


def hub_rows(srv, tmp_path, revision="main"):
    """The rows of the backup at `revision`: its db (the base) then its delta."""
    from huggingface_hub import hf_hub_download
    rows = []
    for name in ("reviews.db", "reviews-delta.db"):
        path = hf_hub_download(REPO, name, repo_type="dataset", revision=revision, endpoint=srv.endpoint,
                               token=HUB_TOKEN, local_dir=tmp_path / f"check-{revision[:8]}")
        conn = connect(path, readonly=True)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows += conn.execute("SELECT id, created_at, name, rating, comments FROM reviews ORDER BY id").fetchall()
        conn.close()
    return rows


def test_fresh_disk_with_hub_down_merges_before_the_first_push(hub_server, tmp_path, caplog):
    old = hub_config(tmp_path / "old")
    add(old, 5, tag="old-")
    Backup(old, target_for(hub_server)).run()
    old_rows = local_rows(old.db_path)

    config = hub_config(tmp_path / "new", RESTORE_TIMEOUT_SECONDS="0.5")
    target = target_for(hub_server)
    hub_server.fail_next(100_000, mode="503")
    prepare(config, target)  # cannot restore: starts empty, remembers to merge
    assert load_state(config.state_path).pending_merge
    assert local_rows(config.db_path) == []
    add(config, 3, tag="new-")  # people keep using the form
    loop = BackupLoop(Backup(config, target), interval=0.05, backoff_cap=0.05)
    for _ in range(3):
        loop.tick()
        loop.not_before = 0
    assert loop.failures == 3
    assert "5 reviews" in hub_server.list_commits(REPO)[0]["title"], "nothing smaller was pushed"

    # The Hub comes back; a writer keeps submitting during the merge.
    hub_server.fail_next(0)
    acknowledged, stop = [], threading.Event()

    def writer():
        conn = open_store_db(config.db_path)
        i = 0
        while not stop.is_set() and i < 300:
            insert_review(conn, Review(f"during-{i}", 4, ""))
            acknowledged.append(f"during-{i}")
            i += 1
        conn.close()

    t = threading.Thread(target=writer)
    with caplog.at_level(logging.INFO, logger="worker"):
        t.start()
        try:
            loop.tick()
        finally:
            stop.set()
            t.join(30)
    assert loop.failures == 0
    loop.tick()  # catch the last writes
    pushed = hub_rows(hub_server, tmp_path)
    names = [r[2] for r in pushed]
    assert len(names) == len(set(names)), "every review exactly once"
    assert set(names) == {f"old-{i}" for i in range(5)} | {f"new-{i}" for i in range(3)} | set(acknowledged)
    assert pushed[:5] == old_rows, "the backup's reviews keep their ids"
    assert [r[0] for r in pushed] == list(range(1, len(pushed) + 1))
    local_part = pushed[5:]
    assert [r[1] for r in local_part] == sorted(r[1] for r in local_part), "created_at order"
    merged = [r.getMessage() for r in caplog.records if "merged the newest backup" in r.getMessage()]
    assert len(merged) == 1 and "from_backup=5" in merged[0] and "from_local=" in merged[0]
    assert not load_state(config.state_path).pending_merge


def test_a_second_data_folder_does_not_overwrite_the_first(hub_server, tmp_path):
    first = hub_config(tmp_path / "first")
    add(first, 6, tag="first-")
    Backup(first, target_for(hub_server)).run()
    before = hub_server.list_commits(REPO)[0]["oid"]

    for n in (2, 9):  # fewer reviews, and more reviews but a different history
        second = hub_config(tmp_path / f"second-{n}")
        add(second, n, tag="second-")
        r = run_worker_cmd(hub_server, second.data_dir, "backup")
        assert r.returncode == 1
        assert "rows=6" in r.stderr and f"rows={n}" in r.stderr and "restore --force" in r.stderr
        assert hub_server.list_commits(REPO)[0]["oid"] == before

    # The running loop: an ERROR in the log, and `status` shows the conflict until it is resolved.
    second = hub_config(tmp_path / "second-9")
    loop = BackupLoop(Backup(second, target_for(hub_server)), interval=1, backoff_cap=1)
    loop.tick()
    status = run_worker_cmd(hub_server, second.data_dir, "status", "--json")
    assert status.returncode == 1
    assert "rows=6" in json.loads(status.stdout)["conflict"]
    assert hub_server.list_commits(REPO)[0]["oid"] == before
    # Resolved by taking the backup.
    r = run_worker_cmd(hub_server, second.data_dir, "restore", "--force")
    assert r.returncode == 0, r.stderr
    loop.not_before = 0
    loop.tick()
    assert run_worker_cmd(hub_server, second.data_dir, "status", "--json").returncode == 0


def test_older_revision_is_published_only_with_the_explicit_flag(hub_server, tmp_path):
    config = hub_config(tmp_path / "m")
    add(config, 3, tag="a-")
    old_rev = Backup(config, target_for(hub_server)).run().published.revision
    add(config, 4, tag="b-")
    Backup(config, target_for(hub_server)).run()

    r = run_worker_cmd(hub_server, config.data_dir, "restore", "--revision", old_rev, "--force")
    assert r.returncode == 0, r.stderr
    try:
        Backup(config, target_for(hub_server)).run()
        raise AssertionError("a smaller database was published without the flag")
    except BackupConflict as exc:
        assert "publish --allow-fewer" in str(exc)
    assert len(hub_rows(hub_server, tmp_path, "main")) == 7

    r = run_worker_cmd(hub_server, config.data_dir, "publish", "--allow-fewer")
    assert r.returncode == 0, r.stderr
    assert [row[2] for row in hub_rows(hub_server, tmp_path / "after", "main")] == ["a-0", "a-1", "a-2"]
