"""Incremental backups end to end (issue 14): the real worker, the real huggingface_hub
client against tests/hubserver.py, real SQLite files.

What is sent follows the new reviews; every published revision is still one
consistent backup (db = base + delta, CSV shards, card agree row for row);
restore and --revision work on the new layout and on backups made before it."""

import json
import shutil

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from shared.db import connect
from shared.schema import open_store_db
from shared.store import read_summary
from tests.backup_tree_support import shard_names as shards
from tests.backup_tree_support import use_small_shards
from tests.hub_fixtures import HUB_TOKEN
from tests.hub_fixtures import HUB_REPO as REPO
from tests.hub_fixtures import hub_config
from tests.store_support import add_reviews as add
from tests.store_support import all_rows as local_rows
from tests.test_hub_sync import check_pushed, run_worker_cmd
from worker.backup import Backup
from worker.hub import HubError, HubTarget
from worker.restore import restore
from worker.snapshot import SnapshotError, take_snapshot
from worker.targets import LocalFolderTarget


class RecordingApi(HfApi):
    """The real client; it only remembers which paths each commit carried."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[set, set]] = []

    def create_commit(self, repo_id, operations, **kwargs):
        ops = list(operations)
        self.sent.append(({o.path_in_repo for o in ops if isinstance(o, CommitOperationAdd)},
                          {o.path_in_repo for o in ops if isinstance(o, CommitOperationDelete)}))
        return super().create_commit(repo_id, ops, **kwargs)


def recording_target(srv):
    api = RecordingApi(endpoint=srv.endpoint, token=HUB_TOKEN)
    return HubTarget(api, REPO), api


@pytest.fixture
def small_shards(monkeypatch):
    use_small_shards(monkeypatch, rebase_min_rows=12)


def restored_rows(srv, tmp_path, revision=None):
    config = hub_config(tmp_path / f"restore-{revision or 'newest'}")
    target = HubTarget(HfApi(endpoint=srv.endpoint, token=HUB_TOKEN), REPO)
    restore(config, target, revision=revision)
    return local_rows(config.db_path)


def test_an_append_cycle_sends_the_delta_the_last_shard_and_the_card(hub_server, data_dir, tmp_path, small_shards):
    config = hub_config(data_dir)
    add(config, 25, tag="a")
    target, api = recording_target(hub_server)
    first = Backup(config, target).run()
    assert first.cycle == "full"
    assert api.sent[-1][0] == {"reviews.db", "reviews-delta.db", "README.md"} | shards(
        "0000000001-0000000010", "0000000011-0000000020", "0000000021-0000000030")
    rows_first = check_pushed(hub_server, config, first.published.revision, tmp_path / "1")

    add(config, 3, tag="b")  # ids 26..28: the last shard
    second = Backup(config, target).run()
    assert second.cycle == "append"
    assert api.sent[-1] == ({"reviews-delta.db", "README.md"} | shards("0000000021-0000000030"), set())
    rows_second = check_pushed(hub_server, config, second.published.revision, tmp_path / "2")
    assert second.published.base_max_id == 25 and second.published.max_id == 28

    # A restarted worker (new objects, nothing in memory: what it knows is on disk) does the same.
    add(config, 4, tag="c")  # ids 29..32: the last shard and a new one
    target, api = recording_target(hub_server)
    third = Backup(config, target).run()
    assert third.cycle == "append"
    assert api.sent[-1][0] == {"reviews-delta.db", "README.md"} | shards("0000000021-0000000030",
                                                                         "0000000031-0000000040")
    rows_third = check_pushed(hub_server, config, third.published.revision, tmp_path / "3")

    # Every revision restores to exactly what it held, base + delta put together.
    assert restored_rows(hub_server, tmp_path, first.published.revision) == rows_first
    assert restored_rows(hub_server, tmp_path, second.published.revision) == rows_second
    assert restored_rows(hub_server, tmp_path) == rows_third
    restored = connect(tmp_path / "restore-newest" / "reviews.db", readonly=True)
    live = connect(config.db_path, readonly=True)
    assert read_summary(restored) == read_summary(live), "totals and the write counter too"
    restored.close()
    live.close()


def test_the_base_is_re_uploaded_only_at_a_rebase(hub_server, data_dir, tmp_path, small_shards):
    config = hub_config(data_dir)
    add(config, 5)
    target, api = recording_target(hub_server)
    Backup(config, target).run()
    add(config, 13)  # > REBASE_MIN_ROWS (12) above the base
    outcome = Backup(config, target).run()
    assert outcome.cycle == "rebase"
    assert "reviews.db" in api.sent[-1][0]
    assert outcome.published.base_max_id == 18
    check_pushed(hub_server, config, outcome.published.revision, tmp_path)


def test_failed_pushes_are_caught_up_by_the_next_cycle(hub_server, data_dir, tmp_path, small_shards):
    config = hub_config(data_dir)
    add(config, 8)
    target, api = recording_target(hub_server)
    Backup(config, target).run()
    for n in (5, 6):  # two cycles whose push fails; together they cross two shard boundaries
        add(config, n)
        hub_server.fail_next(1, mode="503", only="commit")
        with pytest.raises(HubError, match="503"):
            Backup(config, target).run()
        hub_server.fail_next(0)
    outcome = Backup(config, target).run()
    assert {"csv/reviews-0000000001-0000000010.csv", "csv/reviews-0000000011-0000000020.csv"} <= api.sent[-1][0]
    check_pushed(hub_server, config, outcome.published.revision, tmp_path)


def old_layout_card(rows: int, max_id: int, fingerprint: str, tip: str) -> str:
    meta = json.dumps({"at": "2026-11-01T00:00:00Z", "fingerprint": fingerprint, "location": "x", "max_id": max_id,
                       "revision": None, "rows": rows, "tip": tip}, sort_keys=True)
    return f"# Feedback form reviews: backup\n\n<!-- feedback-backup {meta} -->\n"


def test_a_hub_backup_made_before_the_change_restores_and_is_then_replaced_whole(hub_server, data_dir, tmp_path):
    # What the worker published before issue 14: reviews.db with every review, one reviews.csv.
    old = hub_config(tmp_path / "old")
    add(old, 5, tag="old")
    snap = take_snapshot(old.db_path, tmp_path / "old-snap.db")
    api = HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN)
    api.create_repo(REPO, repo_type="dataset", private=True)
    card = old_layout_card(5, 5, snap.summary.fingerprint, snap.tip)
    api.create_commit(REPO, [CommitOperationAdd("reviews.db", str(snap.path)),
                             CommitOperationAdd("reviews.csv", b"id,created_at,name,review,comments\n"),
                             CommitOperationAdd("README.md", card.encode())],
                      repo_type="dataset", commit_message="Backup (old layout)")

    r = run_worker_cmd(hub_server, data_dir, "restore")
    assert r.returncode == 0, r.stderr
    config = hub_config(data_dir)
    assert local_rows(config.db_path) == local_rows(old.db_path)
    # verify and --at read it too.
    r = run_worker_cmd(hub_server, data_dir, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    by_time = tmp_path / "by-time"
    r = run_worker_cmd(hub_server, by_time, "restore", "--at", "2100-01-01T00:00Z")
    assert r.returncode == 0, r.stdout + r.stderr
    assert local_rows(by_time / "reviews.db") == local_rows(old.db_path)

    add(config, 2, tag="new")
    target, rec = recording_target(hub_server)
    outcome = Backup(config, target).run()
    assert outcome.cycle == "full"
    assert rec.sent[-1][1] == {"reviews.csv"}, "the old single CSV is deleted, not left stale"
    check_pushed(hub_server, config, outcome.published.revision, tmp_path)


def test_a_local_backup_made_before_the_change_restores_and_is_pruned(config, tmp_path):
    old = hub_config(tmp_path / "old")
    add(old, 4, tag="old")
    snap = take_snapshot(old.db_path, tmp_path / "old-snap.db")
    config.backups_dir.mkdir(parents=True)
    stem = "reviews-000000000001-20261101T000000000000Z"
    shutil.copyfile(snap.path, config.backups_dir / f"{stem}.db")
    (config.backups_dir / f"{stem}.csv").write_text("id,created_at,name,review,comments\n")
    (config.backups_dir / f"{stem}.json").write_text(json.dumps({
        "fingerprint": snap.summary.fingerprint, "rows": 4, "max_id": 4, "at": "2026-11-01T00:00:00Z",
        "location": str(config.backups_dir / f"{stem}.db"), "revision": stem, "tip": snap.tip}))
    target = LocalFolderTarget(config.backups_dir, keep=1)
    restore(config, target)
    assert local_rows(config.db_path) == local_rows(old.db_path)

    add(config, 1, tag="new")
    outcome = Backup(config, target).run()
    assert outcome.published.rows == 5
    assert not (config.backups_dir / f"{stem}.db").exists(), "pruned like any other backup (keep=1)"
    fresh = hub_config(tmp_path / "fresh")
    restore(fresh, target)
    assert local_rows(fresh.db_path) == local_rows(config.db_path)


def test_a_backup_whose_delta_is_missing_is_refused_and_changes_nothing(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    add(config, 3)
    target, _ = recording_target(hub_server)
    Backup(config, target).run()
    add(config, 2)
    Backup(config, target).run()
    api = HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN)
    api.create_commit(REPO, [CommitOperationDelete("reviews-delta.db")], repo_type="dataset",
                      commit_message="someone deletes a file by hand")
    fresh = hub_config(tmp_path / "fresh")
    r = run_worker_cmd(hub_server, fresh.data_dir, "restore")
    assert r.returncode != 0
    assert "reviews-delta.db" in r.stderr or "not found" in r.stderr.lower(), r.stderr
    assert not fresh.db_path.exists() or local_rows(fresh.db_path) == []


def test_full_flag_and_a_non_append_change_rewrite_every_file(hub_server, data_dir, tmp_path, small_shards):
    config = hub_config(data_dir)
    add(config, 15)
    target, api = recording_target(hub_server)
    Backup(config, target).run()
    add(config, 1)
    assert Backup(config, target).run(full=True).cycle == "full"
    assert "reviews.db" in api.sent[-1][0] and "csv/reviews-0000000001-0000000010.csv" in api.sent[-1][0]
    conn = open_store_db(config.db_path)
    conn.execute("UPDATE reviews SET comments = 'edited' WHERE id = 2")  # an owner's edit
    conn.close()
    outcome = Backup(config, target).run()
    assert outcome.cycle == "full"
    rows = check_pushed(hub_server, config, outcome.published.revision, tmp_path)
    assert rows[1][4] == "edited"


def test_a_damaged_base_is_refused_by_its_checksum_and_changes_nothing(config, tmp_path):
    add(config, 30)
    target = LocalFolderTarget(config.backups_dir, keep=3)
    published = Backup(config, target).run().published
    base = config.backups_dir / published.revision / "reviews.db"
    damaged = bytearray(base.read_bytes())
    damaged[-100] ^= 0xFF  # one flipped bit pattern inside a row: integrity_check would not see it
    base.unlink()  # a hard link to the worker's own file: replace this backup's copy only
    base.write_bytes(bytes(damaged))
    fresh = hub_config(tmp_path / "fresh")
    with pytest.raises(SnapshotError, match="sha256"):
        restore(fresh, target)
    assert not fresh.db_path.exists()
