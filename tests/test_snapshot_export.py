"""Snapshots under continuous writes, and the CSV exported from them."""

import csv
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review, read_summary
from shared.reviews import Review
from shared.csv_export import guard_cell, write_reviews_csv as export_csv
from worker.snapshot import integrity_check, take_snapshot

ROOT = str(Path(__file__).resolve().parent.parent)

INSERTER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from shared.schema import open_store_db
    from shared.store import insert_review
    from shared.reviews import Review
    conn = open_store_db({path!r})
    deadline = time.monotonic() + {seconds}
    i = 0
    while time.monotonic() < deadline:
        insert_review(conn, Review("writer", 1 + i % 5, "x" * (i % 300)))
        i += 1
    print(i)
""")


@pytest.mark.slow  # a writer process runs for 6 s
def test_snapshots_under_continuous_inserts_are_complete_and_consistent(tmp_path):
    db = tmp_path / "reviews.db"
    conn = open_store_db(db)
    conn.executemany("INSERT INTO reviews (name, rating, comments) VALUES (?, ?, ?)",
                     [("seed", 1 + i % 5, "y" * 200) for i in range(20000)])
    conn.close()
    writer = subprocess.Popen([sys.executable, "-c", INSERTER.format(root=ROOT, path=str(db), seconds=6)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    taken = []
    try:
        while writer.poll() is None and len(taken) < 25:
            dest = tmp_path / f"snap{len(taken)}.db"
            snap = take_snapshot(db, dest)
            integrity_check(snap.path)
            out = tmp_path / f"snap{len(taken)}.csv"
            export_csv(snap.path, out)
            with open(out, newline="", encoding="utf-8") as f:
                rows = sum(1 for _ in csv.reader(f)) - 1
            sconn = connect(snap.path, readonly=True)
            actual = sconn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
            sconn.close()
            # The CSV has exactly the snapshot's rows, and the trigger totals agree.
            assert rows == actual == snap.summary.total
            assert not Path(str(dest) + "-wal").exists()  # self-contained file
            taken.append(actual)
    finally:
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    inserted = int(out)
    assert inserted > 100, "the writer should have been busy during the snapshots"
    assert len(taken) >= 3
    assert taken == sorted(taken) and taken[-1] > taken[0]  # snapshots saw the writes progress
    final = read_summary(connect(db, readonly=True))
    assert final.total == 20000 + inserted


def test_csv_neutralises_formulas_and_keeps_everything_else(tmp_path):
    db = tmp_path / "reviews.db"
    conn = open_store_db(db)
    hostile = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tTab", "\rCR", '=HYPERLINK("http://x","y")',
               "plain", "", "a,b\n\"quoted\"", "e\u0301 🎉 \u202e", "<script>alert(1)</script>"]
    for text in hostile:
        insert_review(conn, Review(text, 3, text))
    conn.close()
    snap = take_snapshot(db, tmp_path / "s.db")
    out = tmp_path / "s.csv"
    export_csv(snap.path, out)
    frame = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(frame.columns) == ["id", "created_at", "name", "rating", "comments", "status", "reply", "reply_at"]
    assert list(frame["name"]) == [guard_cell(t) for t in hostile]
    assert list(frame["comments"]) == [guard_cell(t) for t in hostile]
    for stored, exported in zip(hostile, frame["comments"]):
        assert exported == (("'" + stored) if stored[:1] in ("=", "+", "-", "@", "\t", "\r") else stored)


def _parsed(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_the_export_matches_a_reference_writer_byte_for_byte(tmp_path):
    db = tmp_path / "reviews.db"
    conn = open_store_db(db)
    for i in range(3000):  # more than one fetch of the cursor
        insert_review(conn, Review(["=x", "-y", "ok", "", "@z"][i % 5] + str(i), 1 + i % 5, f"line\n{i}, \"q\""))
    conn.execute("UPDATE reviews SET reply = '+thanks', reply_at = '2026-01-01T00:00:00.000Z', status = 'hidden' "
                 "WHERE id % 7 = 0")
    rows = conn.execute("SELECT id, created_at, name, rating, comments, status, reply, reply_at FROM reviews "
                        "ORDER BY id").fetchall()
    conn.close()
    reference = [["id", "created_at", "name", "rating", "comments", "status", "reply", "reply_at"]]
    reference += [[str(r[0]), r[1], guard_cell(r[2]), str(r[3]), guard_cell(r[4]), r[5], guard_cell(r[6] or ""),
                   r[7] or ""] for r in rows]
    export_csv(db, tmp_path / "export.csv")
    assert _parsed(tmp_path / "export.csv") == reference
    # The format every backup so far has: id bare, every other cell quoted, LF line ends.
    lines = (tmp_path / "export.csv").read_bytes().split(b"\n")
    assert lines[0] == b'"id","created_at","name","rating","comments","status","reply","reply_at"'
    assert lines[1].startswith(b'1,"') and b"\r" not in lines[1]


def test_export_survives_nulls_first_and_mixed_types(tmp_path):
    """A seed-era or hand-edited table: NULLs in the first rows, then numbers and text."""
    db = tmp_path / "odd.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, created_at TEXT, name TEXT, rating INTEGER, "
                 "comments TEXT, status TEXT, reply TEXT, reply_at TEXT)")
    conn.executemany("INSERT INTO reviews (created_at, name, rating, comments) VALUES (?, ?, ?, ?)",
                     [("t", None, None, None)] * 3000 + [("t", 5, 2.5, "=1+1"), ("=now()", "-x", "=5", "plain")])
    conn.commit()
    conn.close()
    export_csv(db, tmp_path / "odd.csv")
    parsed = _parsed(tmp_path / "odd.csv")
    assert len(parsed) == 3003
    assert parsed[1] == ["1", "t", "", "", "", "", "", ""]
    assert parsed[-2] == ["3001", "t", "5", "2.5", "'=1+1", "", "", ""]
    assert parsed[-1] == ["3002", "'=now()", "'-x", "'=5", "plain", "", "", ""]


def test_integrity_check_rejects_garbage(tmp_path):
    import pytest

    from worker.snapshot import SnapshotError
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    with pytest.raises(SnapshotError):
        integrity_check(bad)


@pytest.mark.slow  # imports gradio (the owner's page)
def test_owner_export_and_backup_csv_are_one_format(tmp_path):
    """The owner's download holds the backup CSV's cells (same reviews, same formula guard), plus each
    time in the owner's zone."""
    from web.admin import write_export

    db = tmp_path / "reviews.db"
    conn = open_store_db(db)
    for i in range(50):
        insert_review(conn, Review(["=x", "Ann", "", "+1"][i % 4], 1 + i % 5, f"a, \"b\"\nline {i}"))
    conn.close()
    snap = take_snapshot(db, tmp_path / "snap.db")
    export_csv(snap.path, tmp_path / "backup.csv")
    owner = write_export(db, tmp_path / "exports", zone="UTC")
    with open(owner, newline="", encoding="utf-8") as fh:
        owner_rows = list(csv.DictReader(fh))
    with open(tmp_path / "backup.csv", newline="", encoding="utf-8") as fh:
        backup_rows = list(csv.DictReader(fh))
    assert [(r["id"], r["created_at_utc"], r["name"], r["rating"], r["comments"]) for r in owner_rows] == \
        [(r["id"], r["created_at"], r["name"], r["rating"], r["comments"]) for r in backup_rows]
    assert owner.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow  # imports gradio in a fresh process
def test_the_web_never_imports_the_worker():
    """The web must not reach the backup side (nor its token handling)."""
    code = "import sys, web.app, web.admin, web.__main__; print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
