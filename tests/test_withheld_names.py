"""A withheld name in each pushed file, byte for byte: NULL in the databases and the Parquet
files, the quoted empty text ("") in the CSV, and the card saying so (shared.reviews.WITHHELD_NAME_*)."""

import sqlite3

import pyarrow.parquet as pq

from shared.db import open_store_db, transaction
from worker.card import render_card
from worker.manifest import BackupManifest
from worker.mirror import Mirror
from worker.privacy import BLANK
from worker.tree import BASE_FILE, DELTA_FILE, Tree
from shared.db import Summary


def _add(db, names):
    conn = open_store_db(db)
    with transaction(conn):
        conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)",
                         [(f"2026-01-01T00:00:0{i}.000Z", name, 4, f"c{i}") for i, name in enumerate(names)])
    conn.close()


def test_every_file_holds_a_withheld_name_as_it_always_has(tmp_path):
    live = tmp_path / "reviews.db"
    _add(live, ["Ada", "", None])
    mirror = Mirror(tmp_path / ".mirror")
    tree = Tree(mirror, variant=BLANK)
    tree.update(mirror.refresh(live), names=BLANK)  # the base
    _add(live, ["Grace"])
    tree.update(mirror.refresh(live), names=BLANK)  # and a delta
    for db_file, ids in ((BASE_FILE, [1, 2, 3]), (DELTA_FILE, [4])):
        conn = sqlite3.connect(tree.folder / db_file)
        assert conn.execute("SELECT id, name FROM reviews ORDER BY id").fetchall() == [(i, None) for i in ids]
        conn.close()
    csv_files = [n for n in tree.files() if n.startswith("csv/")]
    parquet_files = [n for n in tree.files() if n.endswith(".parquet")]
    assert len(csv_files) == len(parquet_files) == 1
    lines = (tree.folder / csv_files[0]).read_text(encoding="utf-8").splitlines()
    assert lines[1] == '1,"2026-01-01T00:00:00.000Z","","4","c0","public","",""', lines[1]
    assert all(',"","4",' in line for line in lines[1:]) and len(lines) == 5
    names = pq.read_table(tree.folder / parquet_files[0]).column("name").to_pylist()
    assert names == [None] * 4


def test_the_card_says_what_a_withheld_name_is_in_each_file():
    info = BackupManifest(fingerprint="f", rows=1, max_id=1, at="2026-01-01T00:00:00Z", location="")
    summary = Summary(total=1, counts=(0, 0, 0, 1, 0), max_id=1, changes=1, public_counts=(0, 0, 0, 1, 0))
    card = render_card("a/b", info, summary, private=False, names=BLANK)
    assert "NULL in the database and the Parquet files, an empty cell in the CSV" in card
    assert "withheld" not in render_card("a/b", info, summary, private=True, names="keep")
