"""The backup as a dataset: read with the real `datasets` and pandas (hf://) clients, names rules,
`python -m worker backups` and `restore --at`, against the tests' Hub server."""

import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download

from shared.config import load_config
from shared import moderation
from shared.db import connect
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import Review
from tests.hub_fixtures import HUB_REPO as REPO
from tests.hub_fixtures import HUB_TOKEN, hub_client_env, hub_config
from worker.backup import Backup
from shared.csv_export import guard_cell
from worker.hub import HubTarget
from worker.loop import BackupLoop
from worker.privacy import NamesChoiceMissing

ROOT = Path(__file__).resolve().parent.parent
CSV_SHARD = "csv/reviews-0000000001-0000100000.csv"  # the first shard of ids: every review of these small tests
FEATURES = {"id": "int64", "created_at": "timestamp[ms, tz=UTC]", "name": "string", "rating": "int8",
            "comments": "string", "status": "string", "reply": "string", "reply_at": "timestamp[ms, tz=UTC]"}

# Values a reader must get back exactly: NULL, '', and texts that CSV readers like to turn into NULL.
TRICKY = [
    (None, 5, ""), ("", 4, None), ("NULL", 3, "NULL"), ("NA", 2, "NA"), ("null", 1, "n/a"),
    ("=HYPERLINK(1)", 5, "'=typed with a quote"), ("+1", 4, "-2"), ("@at", 3, "tab\there"),
    ("Zoë «ü»", 2, "line one\nline two, \"quoted\""), ("  spaced  ", 1, "ends with a comma,"),
]


def target_for(srv, config):
    return HubTarget(HfApi(endpoint=srv.endpoint, token=HUB_TOKEN), REPO, private=config.hf_dataset_private,
                     license_id=config.hf_dataset_license, publish_names=config.hf_dataset_publish_names)


def insert_raw(config, rows):
    conn = open_store_db(config.db_path)
    conn.executemany("INSERT INTO reviews (name, rating, comments) VALUES (?, ?, ?)", rows)
    conn.close()


def db_rows(path):
    conn = connect(path, readonly=True)
    try:
        return [list(r) for r in conn.execute(
            "SELECT id, created_at, name, rating, comments, status, reply, reply_at FROM reviews ORDER BY id"
        ).fetchall()]
    finally:
        conn.close()


def download(srv, filename, revision, tmp_path):
    return Path(hf_hub_download(REPO, filename, repo_type="dataset", revision=revision, endpoint=srv.endpoint,
                                token=HUB_TOKEN, local_dir=tmp_path / f"dl-{revision[:8]}"))


def read_as_readers_do(srv, revisions, tmp_path):
    env = hub_client_env(srv.endpoint, hf_home=str(tmp_path / "reader-home"))
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "dataset_reader.py"), REPO, *revisions],
                       capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def iso_ms(text):
    """The db's created_at text as the readers print a timestamp[ms, UTC]."""
    return text[:23].replace(" ", "T") + "+00:00"


def test_every_revision_reads_back_typed_and_exact_with_datasets_and_pandas(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    target = target_for(hub_server, config)
    revisions = []
    insert_raw(config, TRICKY)
    revisions.append(Backup(config, target).run().published.revision)
    conn = open_store_db(config.db_path)
    for i in range(3):
        insert_review(conn, Review(f"later {i}", 1 + i, "NULL" if i == 1 else f"more {i}"))
    revisions.append(Backup(config, target).run().published.revision)
    # An owner's edit of an old row (not something the form does): the next backup shows it too.
    conn.execute("UPDATE reviews SET comments = 'NA' WHERE id = 1")
    # The owner's moderation travels too: a hidden review and a reply (a formula-looking one).
    moderation.hide(conn, [2])
    moderation.reply(conn, 3, "=Thanks, fixed")
    conn.close()
    revisions.append(Backup(config, target).run().published.revision)

    read = read_as_readers_do(hub_server, revisions, tmp_path)
    for rev in revisions:
        # The backup's db is its base plus its delta (issue 14).
        expected = (db_rows(download(hub_server, "reviews.db", rev, tmp_path))
                    + db_rows(download(hub_server, "reviews-delta.db", rev, tmp_path)))
        got = read[rev]
        assert got["features"] == FEATURES
        assert got["pandas_dtypes"] == {"id": "int64", "created_at": "datetime64[ms, UTC]", "name": "str",
                                        "rating": "int8", "comments": "str", "status": "str", "reply": "str",
                                        "reply_at": "datetime64[ms, UTC]"}
        typed = [[i, iso_ms(t), name, rating, comments, status, reply, iso_ms(at) if at else None]
                 for i, t, name, rating, comments, status, reply, at in expected]
        assert got["datasets_rows"] == typed, rev  # NULL, '', 'NULL', 'NA' all distinct; no guard
        assert got["pandas_rows"] == typed, rev
        # The CSV: the same rows, text only, NULL as an empty cell, and the guard (only here).
        assert got["csv_columns"] == ["id", "created_at", "name", "rating", "comments", "status", "reply",
                                      "reply_at"]
        assert got["csv_rows"] == [[str(i), t, guard_cell(name or ""), str(rating), guard_cell(comments or ""),
                                    status, guard_cell(reply or ""), at or ""]
                                   for i, t, name, rating, comments, status, reply, at in expected], rev
    first = read[revisions[0]]["datasets_rows"]
    assert [r[2] for r in first[:5]] == [None, "", "NULL", "NA", "null"]
    assert [r[4] for r in first[:5]] == ["", None, "NULL", "NA", "n/a"]
    assert first[5][2] == "=HYPERLINK(1)" and read[revisions[0]]["csv_rows"][5][2] == "'=HYPERLINK(1)"
    assert read[revisions[2]]["datasets_rows"][0][4] == "NA"
    assert len(read[revisions[2]]["datasets_rows"]) == len(TRICKY) + 3
    last = read[revisions[2]]
    assert [r[5] for r in last["datasets_rows"][:3]] == ["public", "hidden", "public"]
    assert last["datasets_rows"][2][6] == "=Thanks, fixed" and last["csv_rows"][2][6] == "'=Thanks, fixed"
    assert last["datasets_rows"][2][7] is not None and last["datasets_rows"][1][7] is None


def test_the_card_points_readers_at_parquet_and_says_what_it_holds(hub_server, data_dir, tmp_path):
    import yaml

    config = hub_config(data_dir, HF_DATASET_LICENSE="cc-by-4.0")
    insert_raw(config, TRICKY)
    published = Backup(config, target_for(hub_server, config)).run().published
    card = download(hub_server, "README.md", published.revision, tmp_path).read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0" and meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}]
    for words in ("timestamp[ms, tz=UTC]", "int8", "UTC", "only** in the CSV", "name", "comments",
                  "python -m worker restore --at", "python -m worker backups", "private"):
        assert words in card, words
    newest = hub_server.list_commits(REPO)[0]
    assert newest["title"].startswith("Backup ") and newest["title"].endswith(
        f": {len(TRICKY)} reviews (first backup)")


def test_commit_titles_carry_the_change(hub_server, data_dir):
    config = hub_config(data_dir)
    target = target_for(hub_server, config)
    insert_raw(config, [("a", 1, "")] * 1233)
    Backup(config, target).run()
    insert_raw(config, [("b", 2, "")] * 5)
    Backup(config, target).run()
    title = hub_server.list_commits(REPO)[0]["title"]
    assert re.fullmatch(r"Backup \d{4}-\d\d-\d\dT\d\d:\d\dZ: 1,238 reviews \(\+5\)", title), title


def test_an_empty_database_is_not_published(hub_server, data_dir):
    config = hub_config(data_dir)
    open_store_db(config.db_path).close()
    assert Backup(config, target_for(hub_server, config)).run().published is None
    assert hub_server.stats().get("total", 0) == 0 and not hub_server.repo_exists(REPO)


def test_a_private_dataset_keeps_the_names(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    insert_raw(config, [("Ada Lovelace", 5, "x")])
    rev = Backup(config, target_for(hub_server, config)).run().published.revision
    assert hub_server.is_private(REPO)
    assert db_rows(download(hub_server, "reviews.db", rev, tmp_path))[0][2] == "Ada Lovelace"
    assert "Ada Lovelace" in download(hub_server, CSV_SHARD, rev, tmp_path).read_text(encoding="utf-8")


@pytest.mark.parametrize("how", ["HF_DATASET_PRIVATE=false", "the existing repo is public"])
def test_a_public_dataset_without_a_choice_gets_nothing_and_one_clear_log_line(hub_server, data_dir, caplog, how):
    extra = {"HF_DATASET_PRIVATE": "false"} if how.startswith("HF_") else {}
    config = hub_config(data_dir, **extra)
    if not extra:
        HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN).create_repo(REPO, repo_type="dataset", private=False)
    insert_raw(config, [("Ada Lovelace", 5, "x")])
    commits_before = len(hub_server.list_commits(REPO)) if hub_server.repo_exists(REPO) else 0
    with pytest.raises(NamesChoiceMissing, match="HF_DATASET_PUBLISH_NAMES"):
        Backup(config, target_for(hub_server, config)).run()
    # Through the loop, as the worker runs: refused again and again, logged once.
    loop = BackupLoop(Backup(config, target_for(hub_server, config)), interval=0.01, backoff_cap=0.01)
    with caplog.at_level(logging.INFO, logger="worker"):
        for _ in range(3):
            loop.not_before = 0.0
            loop.tick()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("worker")]
    assert len(lines) == 1 and "HF_DATASET_PUBLISH_NAMES" in lines[0] and how in lines[0], lines
    commits_after = len(hub_server.list_commits(REPO)) if hub_server.repo_exists(REPO) else 0
    assert commits_after == commits_before
    assert hub_server.stats().get("commit", 0) == 0 and hub_server.stats().get("preupload", 0) == 0


def test_names_withheld_are_blank_in_every_pushed_file_and_the_card_says_so(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir, HF_DATASET_PRIVATE="false", HF_DATASET_PUBLISH_NAMES="false")
    insert_raw(config, [("Ada Lovelace", 5, "first"), ("Grace Hopper", 4, "second"), (None, 3, "third")])
    rev = Backup(config, target_for(hub_server, config)).run().published.revision
    assert not hub_server.is_private(REPO)
    db = download(hub_server, "reviews.db", rev, tmp_path)
    assert [r[2] for r in db_rows(db)] == [None, None, None]
    assert [r[4] for r in db_rows(db)] == ["first", "second", "third"]
    raw = db.read_bytes().lower()  # not in free pages, not in the search index (which stores terms lowercased)
    assert b"lovelace" not in raw and b"hopper" not in raw and b"ada" not in raw
    assert "Lovelace" not in download(hub_server, CSV_SHARD, rev, tmp_path).read_text(encoding="utf-8")
    read = read_as_readers_do(hub_server, [rev], tmp_path)[rev]
    assert [r[2] for r in read["datasets_rows"]] == [None, None, None]
    assert [r[4] for r in read["pandas_rows"]] == ["first", "second", "third"]
    card = download(hub_server, "README.md", rev, tmp_path).read_text(encoding="utf-8")
    assert "Names are withheld" in card and "not the names" in card
    # The local database keeps them: it is the owner's.
    assert [r[2] for r in db_rows(config.db_path)][:2] == ["Ada Lovelace", "Grace Hopper"]
    # The owner changes their mind: the next backup publishes them, in every file.
    names_on = hub_config(data_dir, HF_DATASET_PRIVATE="false", HF_DATASET_PUBLISH_NAMES="true")
    insert_raw(names_on, [("Edsger", 2, "fourth")])
    rev2 = Backup(names_on, target_for(hub_server, names_on)).run().published.revision
    read2 = read_as_readers_do(hub_server, [rev2], tmp_path)[rev2]
    assert [r[2] for r in read2["datasets_rows"]] == ["Ada Lovelace", "Grace Hopper", None, "Edsger"]


def worker_cli(srv, data_dir, *args):
    env = hub_client_env(srv.endpoint, hf_home=str(data_dir.parent / "cli-home"))
    env.update(FEEDBACK_DATA_DIR=str(data_dir), HF_DATASET_REPO=REPO, WORKER_NICE="0")
    return subprocess.run([sys.executable, "-m", "worker", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def test_backups_lists_newest_first_and_restore_at_picks_the_newest_at_or_before(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    target = target_for(hub_server, config)
    published = []
    for n in (3, 2, 3):
        insert_raw(config, [("x", 3, "")] * n)
        published.append(Backup(config, target).run().published)
        time.sleep(1.1)  # spacing, not a timing assertion: backup times have one-second resolution

    listed = worker_cli(hub_server, data_dir, "backups")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert "revision" in lines[0] and len(lines) == 4
    assert [line.split()[0] for line in lines[1:]] == [p.revision for p in reversed(published)]
    assert [line.split()[2] for line in lines[1:]] == ["8", "5", "3"]
    as_json = json.loads(worker_cli(hub_server, data_dir, "backups", "--json").stdout)
    assert [(e["revision"], e["at"], e["rows"]) for e in as_json] == [
        (p.revision, p.at, p.rows) for p in reversed(published)]

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    second_at = published[1].at  # e.g. 2026-11-25T10:00:01Z: the second backup, exactly
    r = worker_cli(hub_server, fresh, "restore", "--at", second_at)
    assert r.returncode == 0, r.stderr
    assert len(db_rows(fresh / "reviews.db")) == 5
    # A minute-precision time after the last backup: the newest.
    r = worker_cli(hub_server, fresh, "restore", "--force", "--at", "2999-01-01T00:00Z")
    assert r.returncode == 0, r.stderr
    assert len(db_rows(fresh / "reviews.db")) == 8
    before_all = worker_cli(hub_server, fresh, "restore", "--force", "--at", "2000-01-01T00:00Z")
    assert before_all.returncode == 1 and "no backup at or before 2000-01-01T00:00:00Z" in before_all.stderr
    assert len(db_rows(fresh / "reviews.db")) == 8  # unchanged
    bad = worker_cli(hub_server, fresh, "restore", "--at", "yesterday")
    assert bad.returncode == 2 and "--at 'yesterday' is not a UTC time" in bad.stderr


def test_a_local_target_lists_its_backups_and_keeps_parquet_with_each(data_dir, tmp_path):
    import pyarrow.parquet as pq

    config = load_config({"FEEDBACK_DATA_DIR": str(data_dir)})
    from worker.targets import LocalFolderTarget
    target = LocalFolderTarget(config.backups_dir, keep=10)
    insert_raw(config, TRICKY)
    first = Backup(config, target).run().published
    insert_raw(config, [("y", 1, "")])
    second = Backup(config, target).run().published
    assert [e.revision for e in target.history()] == [second.revision, first.revision]
    shards = sorted((config.backups_dir / first.revision / "data").glob("*.parquet"))
    assert len(pq.read_table(shards[0])) == len(TRICKY)  # the first backup's own rows, unchanged
    shards = sorted((config.backups_dir / second.revision / "data").glob("*.parquet"))
    assert len(pq.read_table(shards[0])) == len(TRICKY) + 1


def test_a_card_the_hub_refuses_is_logged_with_its_message_and_retried(hub_server, data_dir, tmp_path, caplog):
    config = hub_config(data_dir)
    insert_raw(config, [("a", 5, "kept")])
    hub_server.fail_next(2, mode="card", only="validate_yaml")
    loop = BackupLoop(Backup(config, target_for(hub_server, config)), interval=0.01, backoff_cap=0.01)
    with caplog.at_level(logging.INFO, logger="worker"):
        for _ in range(3):
            loop.not_before = 0.0
            loop.tick()
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "the Hub refused the dataset card (README.md)" in messages
    assert "injected: the card's metadata is invalid" in messages  # the Hub's own words
    assert "backup recovered after 2 failures" in messages
    commits = [c for c in hub_server.list_commits(REPO) if c["title"].startswith("Backup ")]
    assert len(commits) == 1 and commits[0]["title"].endswith(": 1 review (first backup)")
    db = download(hub_server, "reviews.db", commits[0]["oid"], tmp_path)
    assert [r[4] for r in db_rows(db)] == ["kept"]


def test_the_test_hub_checks_card_yaml_like_the_hub(hub_api):
    from huggingface_hub import CommitOperationAdd

    hub_api.create_repo(REPO, repo_type="dataset")
    bad = b"---\nlicense: [unclosed\n---\n# card\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        hub_api.create_commit(REPO, [CommitOperationAdd("README.md", bad)], commit_message="bad card",
                              repo_type="dataset")
    with pytest.raises(ValueError, match="license"):
        hub_api.create_commit(REPO, [CommitOperationAdd("README.md", b"---\nlicense: not-a-license\n---\n")],
                              commit_message="bad license", repo_type="dataset")


def test_the_worker_commit_goes_through_xet_when_the_hub_offers_it(tmp_path, data_dir):
    """With Xet on (as in production) and the test Hub handing out a local CAS through the Xet
    token route, the worker's own commit uploads every large file with hf_xet: nothing in it
    (an in-memory buffer, say) makes the client fall back to plain HTTP/LFS."""
    import hashlib
    import os

    import hf_xet

    from tests.hub_fixtures import HUB_LFS_THRESHOLD, HUB_TOKENS
    from tests.hubserver import HubServer

    cas = tmp_path / "cas"
    srv = HubServer(tokens=HUB_TOKENS, lfs_threshold=HUB_LFS_THRESHOLD, xet_cas=cas).start()
    try:
        config = hub_config(data_dir)
        insert_raw(config, [(f"n{i}", 1 + i % 5, os.urandom(400).hex()) for i in range(3000)])
        env = hub_client_env(srv.endpoint, hf_home=str(tmp_path / "xet-home"))
        del env["HF_HUB_DISABLE_XET"]
        env.update(FEEDBACK_DATA_DIR=str(data_dir), HF_DATASET_REPO=REPO, WORKER_NICE="0")
        r = subprocess.run([sys.executable, "-m", "worker", "backup"], capture_output=True, text=True,
                           timeout=180, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Falling back to HTTP" not in r.stderr
        stats = srv.stats()
        assert stats.get("xet_write_token", 0) >= 1
        assert stats.get("lfs_batch", 0) == 0 and stats.get("lfs_put", 0) == 0
        files = srv.list_commits(REPO)[0]["files"]
        assert "reviews.db" in files and CSV_SHARD in files
        # The shard the worker keeps is byte for byte what the CAS holds for the committed file.
        shard = next((data_dir / "backups" / ".mirror" / "tree" / "data").glob("*.parquet"))
        assert shard.stat().st_size >= HUB_LFS_THRESHOLD  # so it took the LFS/Xet path
        info = hf_xet.hash_files([str(shard)])[0]
        back = tmp_path / "from-cas.parquet"
        with hf_xet.XetSession().new_file_download_group(endpoint=f"local://{cas}") as group:
            group.start_download_file(hf_xet.XetFileInfo(info.hash, info.file_size), str(back))
        assert back.read_bytes() == shard.read_bytes()
        with srv._lock:  # the commit names the shard by the sha256 that hf_xet computed
            entry = srv._repos[f"datasets/{REPO}"]["commits"][-1]["files"][f"data/{shard.name}"]
        assert entry["blob"] == hashlib.sha256(shard.read_bytes()).hexdigest() and entry["lfs"]
    finally:
        srv.stop()


def test_shards_whose_ids_are_gone_are_deleted_from_the_dataset(hub_server, data_dir, monkeypatch):
    from worker import shards

    monkeypatch.setattr(shards, "SHARD_ROWS", 10)
    config = hub_config(data_dir)
    insert_raw(config, [("x", 3, "")] * 25)
    Backup(config, target_for(hub_server, config)).run()
    shards = sorted(f for f in hub_server.list_commits(REPO)[0]["files"] if f.startswith("data/"))
    assert shards == ["data/reviews-0000000001-0000000010.parquet", "data/reviews-0000000011-0000000020.parquet",
                      "data/reviews-0000000021-0000000030.parquet"]
    conn = open_store_db(config.db_path)
    conn.execute("DELETE FROM reviews WHERE id > 10")  # e.g. undoing bad data, then publish --allow-fewer
    conn.close()
    Backup(config, target_for(hub_server, config)).run(allow_fewer=True)
    files = hub_server.list_commits(REPO)[0]["files"]
    assert sorted(f for f in files if f.startswith("data/")) == ["data/reviews-0000000001-0000000010.parquet"]
