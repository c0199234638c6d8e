"""The backup files kept between runs (issue 14): base + delta == the mirror row for
row, the CSV shards together == a full export, and only changed files are rewritten."""

import csv
import io
import os
import shutil
import stat

import pytest

from shared.db import connect, transaction
from shared.schema import BACKUP_COLUMNS, COLUMNS, open_store_db
from shared.store import read_summary
from worker import tree as tree_mod
from shared.csv_export import write_reviews_csv as export_csv
from tests.backup_tree_support import review_rows as rows
from tests.backup_tree_support import shard_names as shards
from tests.backup_tree_support import use_small_shards
from worker.mirror import Mirror
from worker.snapshot import SnapshotError
from worker.shards import csv_name
from worker.delta import apply_delta
from worker.tree import BASE_FILE, DELTA_FILE, Tree

COLS = ", ".join(COLUMNS)


@pytest.fixture
def small_shards(monkeypatch):
    use_small_shards(monkeypatch, rebase_min_rows=15)


def add(db, n, tag="r"):
    conn = open_store_db(db)
    with transaction(conn):
        conn.executemany(f"INSERT INTO reviews ({COLS.split(', ', 1)[1]}) VALUES (?, ?, ?, ?)",
                         [(f"2026-01-01T00:00:{i % 60:02d}.000Z", f"{tag}{i}", 1 + i % 5,
                           ["=1+1", "", None, "a,b\n\"c\""][i % 4]) for i in range(n)])
    conn.close()


def backed_up(tmp_path, n, tag="r"):
    """A live database with n reviews, and a mirror and a tree after their first (full) update."""
    live = tmp_path / "reviews.db"
    add(live, n, tag=tag)
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror)
    tree.update(mirror.refresh(live))
    return live, mirror, tree


def restored(tree, tmp_path):
    """What a restore makes of the tree: the base with the delta applied."""
    staged = tmp_path / "restored.db"
    shutil.copyfile(tree.folder / BASE_FILE, staged)
    apply_delta(staged, tree.folder / DELTA_FILE, base_max_id=tree.state().base_max_id)
    return staged


def csv_rows(tree):
    out = []
    for name in tree.files():
        if name.startswith("csv/"):
            parsed = list(csv.reader(io.StringIO((tree.folder / name).read_text(encoding="utf-8"))))
            assert parsed[0] == list(BACKUP_COLUMNS)
            out.extend(parsed[1:])
    return out


def full_csv_rows(db, tmp_path):
    path = tmp_path / "full.csv"
    export_csv(db, path)
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))[1:]


def check_consistent(tree, live, tmp_path):
    staged = restored(tree, tmp_path)
    assert rows(staged) == rows(live)
    a, b = connect(staged, readonly=True), connect(live, readonly=True)
    try:
        assert read_summary(a) == read_summary(b), "totals and the write counter come back too"
        assert a.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        a.close()
        b.close()
    assert csv_rows(tree) == full_csv_rows(live, tmp_path)
    assert parquet_rows(tree) == [(r[0], r[2], r[3], r[4]) for r in rows(live)]


def parquet_rows(tree):
    """(id, name, rating, comments) of every Parquet shard, in order: raw values, NULL kept."""
    import pyarrow.parquet as pq

    out = []
    for name in tree.files():
        if name.startswith("data/"):
            t = pq.read_table(tree.folder / name).to_pydict()
            out += list(zip(t["id"], t["name"], t["rating"], t["comments"]))
    return out


def test_appends_rewrite_only_the_delta_and_the_last_shard(tmp_path, small_shards):
    live = tmp_path / "reviews.db"
    add(live, 23)
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror)
    first = tree.update(mirror.refresh(live))
    assert first.kind == "full"
    assert set(tree.files()) == {BASE_FILE, DELTA_FILE} | shards("0000000001-0000000010", "0000000011-0000000020",
                                                                 "0000000021-0000000030")
    check_consistent(tree, live, tmp_path)
    full_shard = tree.folder / "csv/reviews-0000000001-0000000010.csv"
    inode = full_shard.stat().st_ino

    add(live, 5, tag="new")  # ids 24..28: the last shard only
    update = tree.update(mirror.refresh(live))
    assert update.kind == "append"
    assert update.changed == {DELTA_FILE} | shards("0000000021-0000000030")
    assert full_shard.stat().st_ino == inode, "a full shard is never rewritten"
    assert tree.state().delta_rows == 5
    check_consistent(tree, live, tmp_path)

    add(live, 4, tag="more")  # ids 29..32: crosses into a new shard
    update = tree.update(mirror.refresh(live))
    assert update.changed == {DELTA_FILE} | shards("0000000021-0000000030", "0000000031-0000000040")
    check_consistent(tree, live, tmp_path)
    assert tree.update(mirror.refresh(live)).kind == "same"


def test_a_big_delta_becomes_the_new_base(tmp_path, small_shards):
    live, mirror, tree = backed_up(tmp_path, 5)
    base_sha256 = tree.state().base_sha256
    add(live, 16)  # > REBASE_MIN_ROWS (15)
    update = tree.update(mirror.refresh(live))
    assert update.kind == "rebase" and BASE_FILE in update.changed
    assert tree.state().base_sha256 != base_sha256 and tree.state().delta_rows == 0
    check_consistent(tree, live, tmp_path)


def test_a_day_without_a_rebase_forces_one(tmp_path, small_shards):
    live = tmp_path / "reviews.db"
    add(live, 5)
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror)
    tree.update(mirror.refresh(live), now=1_000_000.0)
    add(live, 1)
    assert tree.update(mirror.refresh(live), now=1_000_000.0 + 3600).kind == "append"
    add(live, 1)
    assert tree.update(mirror.refresh(live), now=1_000_000.0 + tree_mod.FULL_CHECK_SECONDS + 1).kind == "rebase"
    check_consistent(tree, live, tmp_path)


def test_a_non_append_change_rebuilds_every_file(tmp_path, small_shards):
    live, mirror, tree = backed_up(tmp_path, 25)
    conn = open_store_db(live)
    with transaction(conn):
        conn.execute("DELETE FROM reviews WHERE id > 12")  # e.g. restore --force of an older backup
        conn.execute("UPDATE reviews SET name = 'owner edit' WHERE id = 1")
    conn.close()
    update = tree.update(mirror.refresh(live))
    assert update.kind == "full"
    assert "csv/reviews-0000000021-0000000030.csv" not in tree.files(), "no stale shard survives"
    check_consistent(tree, live, tmp_path)


def test_a_lost_tree_state_rebuilds_the_tree(tmp_path, small_shards):
    live, mirror, tree = backed_up(tmp_path, 12)
    tree.state_path.write_text("{not json")
    add(live, 2)
    assert tree.update(mirror.refresh(live)).kind == "full"
    check_consistent(tree, live, tmp_path)


def test_apply_delta_refuses_a_delta_that_does_not_follow_the_base(tmp_path, small_shards):
    live, mirror, tree = backed_up(tmp_path, 8)
    add(live, 3)
    tree.update(mirror.refresh(live))
    staged = tmp_path / "staged.db"
    shutil.copyfile(tree.folder / BASE_FILE, staged)
    with pytest.raises(SnapshotError, match="manifest says"):
        apply_delta(staged, tree.folder / DELTA_FILE, base_max_id=5)  # a manifest from another base
    before = rows(staged)
    conn = connect(staged)
    with transaction(conn):
        conn.execute("DELETE FROM reviews WHERE id = 8")  # a base that ends lower than the delta expects
    conn.close()
    with pytest.raises(SnapshotError):
        apply_delta(staged, tree.folder / DELTA_FILE, base_max_id=8)
    assert len(rows(staged)) == len(before) - 1, "nothing applied"


def test_ids_below_one_from_a_hand_edited_file_land_in_the_first_shard(tmp_path, small_shards):
    live = tmp_path / "reviews.db"
    add(live, 3)
    conn = open_store_db(live)
    with transaction(conn):
        conn.execute(f"INSERT INTO reviews ({COLS}) VALUES (-5, '2026-01-01T00:00:00.000Z', 'neg', 3, '')")
        conn.execute(f"INSERT INTO reviews ({COLS}) VALUES (0, '2026-01-01T00:00:00.000Z', 'zero', 3, '')")
    conn.close()
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror)
    tree.update(mirror.refresh(live))
    check_consistent(tree, live, tmp_path)


def test_names_withheld_leave_no_name_in_any_file_and_switching_rewrites_all(tmp_path, small_shards):
    live, mirror, tree = backed_up(tmp_path, 14, tag="secret-name-")
    assert tree.update(mirror.refresh(live), names=tree_mod.BLANK).kind == "full", "a switch rewrites every file"
    add(live, 3, tag="secret-name-new-")
    assert tree.update(mirror.refresh(live), names=tree_mod.BLANK).kind == "append"
    for name in tree.files():
        assert b"secret-name" not in (tree.folder / name).read_bytes(), name
    staged = restored(tree, tmp_path)
    assert [r[:2] + (None,) + r[3:] for r in rows(live)] == rows(staged)
    a, b = connect(staged, readonly=True), connect(live, readonly=True)
    assert read_summary(a) == read_summary(b), "the same fingerprint: nothing but the names differ"
    a.close()
    b.close()
    assert all(r[2] == "" for r in csv_rows(tree))
    assert all(r[1] is None for r in parquet_rows(tree))


def test_a_failure_midway_leaves_no_state_and_the_next_run_rebuilds(tmp_path, small_shards, monkeypatch):
    live, mirror, tree = backed_up(tmp_path, 12)
    add(live, 3)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tree_mod, "SHARD_FORMATS", [(csv_name, disk_full)])
    with pytest.raises(OSError):
        tree.update(mirror.refresh(live))
    assert tree.state() is None, "no state vouches for half-written files"
    monkeypatch.undo()
    use_small_shards(monkeypatch, rebase_min_rows=15)
    assert tree.update(mirror.refresh(live)).kind == "full"
    check_consistent(tree, live, tmp_path)


@pytest.mark.parametrize("names", [tree_mod.KEEP, tree_mod.BLANK])
def test_every_file_of_the_tree_is_ours_only_whatever_the_umask_and_no_temp_is_left(tmp_path, small_shards, names):
    live = tmp_path / "reviews.db"
    add(live, 12)
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror)
    old = os.umask(0o022)
    try:
        assert tree.update(mirror.refresh(live), names=names).kind == "full"
        add(live, 3)
        assert tree.update(mirror.refresh(live), names=names).kind == "append"
    finally:
        os.umask(old)
    on_disk = [p for p in mirror.folder.rglob("*") if p.is_file()]
    assert {p.relative_to(tree.folder).as_posix() for p in on_disk if tree.folder in p.parents} == set(tree.files())
    assert set(tree.files()) == {BASE_FILE, DELTA_FILE} | shards("0000000001-0000000010", "0000000011-0000000020")
    assert not [p for p in on_disk if p.name.endswith(".tmp")]
    loose = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in on_disk if stat.S_IMODE(p.stat().st_mode) != 0o600}
    assert loose == {}, "the reviews (and names) are ours only"
