"""Erasure that reaches every copy: after the owner deletes a review, the next backup cycle
leaves its text in no byte of any file of the newest backup on each target (db, delta, CSV,
Parquet; the Hub through tests/hubserver.py and the local folder), in no file of the data
folder (live db, mirror, tree, older local backups), and tombstones keep it deleted through
the never-fewer guard, a restore and a merge."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi, hf_hub_download

from shared import moderation as mod
from shared.config import load_config
from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from tests.hub_fixtures import HUB_TOKEN, hub_api, hub_server  # noqa: F401
from tests.test_hub_sync import REPO, hub_config, target_for
from worker.backup import Backup, BackupConflict
from worker.merge import merge_backup_into
from worker.restore import restore
from worker.targets import LocalFolderTarget

SECRET = "qzxv0176erasemesecret"


def holds(path: Path, secret: str = SECRET) -> bool:
    """The text is in the file's bytes, or (Parquet: compressed) in any of its values."""
    data = path.read_bytes()
    if secret.encode() in data:
        return True
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return any(secret in str(v) for col in table.columns for v in col.to_pylist() if v is not None)
    return False


def files_holding(folder: Path, secret: str = SECRET) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and holds(p, secret))


def fill(config, n=30, victim_at=10):
    """n reviews; the one at `victim_at` carries the secret in its name and comments."""
    conn = open_store_db(config.db_path)
    victim = None
    try:
        for i in range(n):
            if i == victim_at:
                victim = insert_review(conn, Review(f"Name {SECRET}", 2, f"call me on {SECRET} please"))
            else:
                insert_review(conn, Review(f"person {i}", 1 + i % 5, f"review number {i}"))
    finally:
        conn.close()
    return victim


def delete(config, ids):
    conn = open_store_db(config.db_path)
    try:
        return mod.delete(conn, ids)
    finally:
        conn.close()


def local_config(data_dir, **extra):
    return load_config({"FEEDBACK_DATA_DIR": str(data_dir), "BACKUP_INTERVAL_SECONDS": "1", **extra})


def test_local_folder_target_newest_backup_and_every_older_one_lose_the_text(tmp_path):
    config = local_config(tmp_path / "data")
    target = LocalFolderTarget(config.backups_dir, keep=5)
    victim = fill(config)
    Backup(config, target).run()
    conn = open_store_db(config.db_path)
    insert_review(conn, Review("later", 5, "a later review"))
    mod.hide(conn, [1])
    conn.close()
    Backup(config, target).run()
    assert len(target.history()) == 2
    assert files_holding(config.data_dir), "the test's secret is findable before the delete"

    delete(config, [victim])
    out = Backup(config, target).run()
    assert out.published is not None and out.cycle == "full"
    assert files_holding(config.data_dir) == [], "no file of the data folder holds the text"
    # The newest backup holds every other review, and the tombstone; the older ones, which held
    # the text, are gone.
    history = target.history()
    assert [h.rows for h in history] == [30]
    newest = config.backups_dir / history[0].revision
    names = {p.relative_to(newest).as_posix() for p in newest.rglob("*") if p.is_file()}
    assert {"reviews.db", "reviews-delta.db"} <= names and any(n.startswith("csv/") for n in names) and any(
        n.startswith("data/") for n in names)
    db = connect(newest / "reviews.db", readonly=True)
    try:
        assert db.execute("SELECT review_id FROM tombstones").fetchall() == [(victim,)]
        assert db.execute("SELECT COUNT(*) FROM reviews WHERE id = ?", (victim,)).fetchone()[0] == 0
        assert db.execute("SELECT action FROM moderation_log ORDER BY id").fetchall() == [("hide",), ("delete",)]
        assert db.execute("SELECT status FROM reviews WHERE id = 1").fetchone()[0] == "hidden"
    finally:
        db.close()
    # The next cycles: nothing to erase again, and a restore of the newest brings nothing back.
    assert Backup(config, target).run().published is None


def test_hub_newest_revision_holds_no_byte_of_the_text(hub_server, tmp_path):  # noqa: F811
    config = hub_config(tmp_path / "data")
    target = target_for(hub_server)
    victim = fill(config, n=25, victim_at=24)  # the newest review: the tip of the backup
    first = Backup(config, target).run().published.revision
    delete(config, [victim])
    published = Backup(config, target).run().published
    assert published is not None
    api = HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN)
    files = api.list_repo_files(REPO, repo_type="dataset", revision=published.revision)
    assert any(f.startswith("csv/") for f in files) and any(f.endswith(".parquet") for f in files)
    held = []
    for name in files:
        path = Path(hf_hub_download(REPO, name, repo_type="dataset", revision=published.revision,
                                    endpoint=hub_server.endpoint, token=HUB_TOKEN, local_dir=tmp_path / "dl"))
        if holds(path):
            held.append(name)
    assert held == []
    assert files_holding(config.data_dir) == []
    # The older revision still holds it until the history is rewritten (shared.moderation requests).
    old = Path(hf_hub_download(REPO, "reviews.db", repo_type="dataset", revision=first,
                               endpoint=hub_server.endpoint, token=HUB_TOKEN, local_dir=tmp_path / "old"))
    assert holds(old)


def test_the_guard_accepts_a_deliberate_delete_and_refuses_an_accidental_loss(tmp_path):
    config = local_config(tmp_path / "data")
    target = LocalFolderTarget(config.backups_dir, keep=3)
    fill(config, n=12)
    Backup(config, target).run()
    delete(config, [3, 12])  # 12 is the backup's highest id (its tip)
    assert Backup(config, target).run().published.rows == 10

    conn = open_store_db(config.db_path)
    conn.execute("DELETE FROM reviews WHERE id = 5")  # a hand edit: no tombstone
    conn.close()
    with pytest.raises(BackupConflict, match="lacks reviews"):
        Backup(config, target).run()
    # A delete AND an accidental loss together: still refused.
    delete(config, [7])
    with pytest.raises(BackupConflict):
        Backup(config, target).run()


def test_restoring_an_older_backup_does_not_bring_a_deleted_review_back(tmp_path):
    config = local_config(tmp_path / "data")
    target = LocalFolderTarget(config.backups_dir, keep=5)
    victim = fill(config, n=8, victim_at=2)
    older = Backup(config, target).run().published.revision
    delete(config, [victim])
    # The owner's older backups that hold it are removed at the next cycle; a copy kept elsewhere
    # (here: a second folder target that never saw the delete) still holds it.
    other = LocalFolderTarget(tmp_path / "elsewhere", keep=5)
    (tmp_path / "elsewhere").mkdir()
    import shutil
    shutil.copytree(config.backups_dir / older, tmp_path / "elsewhere" / older)
    shutil.copy(config.backups_dir / f"{older}.json", tmp_path / "elsewhere" / f"{older}.json")
    restore(config, other, force=True)
    conn = connect(config.db_path, readonly=True)
    try:
        assert conn.execute("SELECT COUNT(*) FROM reviews WHERE id = ?", (victim,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 7
        assert conn.execute("SELECT review_id FROM tombstones").fetchall() == [(victim,)]
    finally:
        conn.close()
    assert not any(holds(p) for p in config.data_dir.glob("reviews.db*") if p.is_file())


def test_a_merge_never_resurrects_a_deleted_review_and_carries_the_moderation(tmp_path):
    backup_cfg = local_config(tmp_path / "old")
    victim = fill(backup_cfg, n=6, victim_at=1)
    conn = open_store_db(backup_cfg.db_path)
    mod.hide(conn, [3])
    mod.reply(conn, 4, "Thanks!")
    mod.delete(conn, [victim])
    conn.close()
    # A fresh disk that took two reviews while the backup was out of reach; it also has a
    # tombstone of its own for a review the backup still holds (deleted from a restored copy).
    fresh = local_config(tmp_path / "new")
    conn = open_store_db(fresh.db_path)
    insert_review(conn, Review("new 1", 5, "fresh"))
    conn.execute("INSERT INTO tombstones (review_id) VALUES (5)")
    conn.close()
    result = merge_backup_into(fresh.db_path, backup_cfg.db_path)
    assert result.from_backup == 4 and result.from_local == 1
    conn = connect(fresh.db_path, readonly=True)
    try:
        ids = [r[0] for r in conn.execute("SELECT id FROM reviews ORDER BY id")]
        assert victim not in ids and 5 not in ids
        assert ids == [1, 3, 4, 6, 7], "the local review follows the highest id ever used"
        assert conn.execute("SELECT status FROM reviews WHERE id = 3").fetchone()[0] == "hidden"
        assert conn.execute("SELECT reply FROM reviews WHERE id = 4").fetchone()[0] == "Thanks!"
        assert sorted(r[0] for r in conn.execute("SELECT review_id FROM tombstones")) == [victim, 5]
        assert [r[0] for r in conn.execute("SELECT action FROM moderation_log ORDER BY id")] == [
            "hide", "reply", "delete"]
    finally:
        conn.close()


def test_a_mounted_bucket_folder_loses_the_text_too(tmp_path):
    """The second folder target (a bucket mounted as a folder: base shared under bases/, one
    delta per backup): the same erasure, shared base included."""
    from worker.targets import FolderTarget

    config = local_config(tmp_path / "data")
    mount = FolderTarget(tmp_path / "bucket", keep=5, on_mount=True)
    victim = fill(config, n=20, victim_at=4)
    Backup(config, mount).run()
    conn = open_store_db(config.db_path)
    insert_review(conn, Review("later", 5, "one more"))
    conn.close()
    Backup(config, mount).run()
    assert len(mount.history()) == 2 and files_holding(tmp_path / "bucket")
    delete(config, [victim])
    assert Backup(config, mount).run().published is not None
    assert [h.rows for h in mount.history()] == [20]
    assert files_holding(tmp_path / "bucket") == [] and files_holding(config.data_dir) == []
    assert len(list((tmp_path / "bucket" / "bases").iterdir())) == 1, "the old shared base went with its backups"


def test_a_backup_taken_before_the_erasure_finished_still_holds_no_text(tmp_path):
    """The cycle's snapshot may fall between the delete and the end of the FTS merge (a busy
    database): the worker merges its own copy's segments before any backup file is made."""
    config = local_config(tmp_path / "data")
    target = LocalFolderTarget(config.backups_dir, keep=3)
    victim = fill(config, n=40, victim_at=7)
    Backup(config, target).run()
    conn = open_store_db(config.db_path)
    try:
        mod.delete(conn, [victim], erase=False)  # the row is gone, the FTS segment still has the words
        mod.checkpoint_truncate(conn)
        assert holds(config.db_path), "the live file still holds the words: the case under test"
        Backup(config, target).run()
        newest = config.backups_dir / target.history()[0].revision
        assert [str(p) for p in newest.rglob("*") if p.is_file() and holds(p)] == []
        assert files_holding(config.backups_dir) == []
        mod.erase_traces(conn)
        assert not holds(config.db_path)
    finally:
        conn.close()
