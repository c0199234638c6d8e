"""Merging the newest backup into a database that started empty."""

import shutil

from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review, read_summary
from shared.reviews import Review
from tests.store_support import all_rows
from worker.merge import merge_backup_into


def rows(path):
    return all_rows(path, ("id", "created_at", "name"))


def test_backup_keeps_ids_local_rows_follow_and_a_second_merge_adds_nothing(tmp_path):
    backup, live = tmp_path / "backup.db", tmp_path / "live.db"
    conn = open_store_db(backup)
    for i in range(5):
        insert_review(conn, Review(f"old{i}", 5, ""))
    conn.close()
    conn = open_store_db(live)
    for i in range(3):
        insert_review(conn, Review(f"new{i}", 1, ""))
    conn.close()

    result = merge_backup_into(live, backup)
    assert (result.from_backup, result.from_local) == (5, 3)
    merged = rows(live)
    assert [r[2] for r in merged] == [f"old{i}" for i in range(5)] + [f"new{i}" for i in range(3)]
    assert [r[0] for r in merged] == list(range(1, 9))
    assert merged[:5] == rows(backup)
    summary = read_summary(connect(live, readonly=True))
    assert summary.total == 8 and summary.counts == (3, 0, 0, 0, 5)

    # The merged database was pushed but the worker died before recording it:
    # merging that backup again must not duplicate anything.
    shutil.copyfile(live, tmp_path / "pushed.db")
    again = merge_backup_into(live, tmp_path / "pushed.db")
    assert again.from_local == 0
    assert rows(live) == merged
    conn = open_store_db(live)
    assert insert_review(conn, Review("next", 3, "")) == 9  # ids go on after the merge
