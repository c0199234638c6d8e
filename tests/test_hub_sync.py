"""Hub sync through the real huggingface_hub client against the local Hub-compatible server."""

import csv
import io
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi, hf_hub_download

from shared.db import connect
from shared.schema import BACKUP_COLUMNS
from tests.apprunner import App, wait_until
from tests.hub_fixtures import HUB_OTHER_TOKEN, HUB_READ_TOKEN, HUB_TOKEN, hub_client_env, hub_config
from tests.hub_fixtures import HUB_REPO as REPO
from tests.store_support import add_reviews as add
from tests.store_support import all_rows as local_rows
from worker.backup import Backup
from worker.hub import HubError, HubTarget
from worker.loop import BackupLoop

ROOT = Path(__file__).resolve().parent.parent


def target_for(srv, token=HUB_TOKEN, **kwargs):
    return HubTarget(HfApi(endpoint=srv.endpoint, token=token), REPO, has_token=bool(token), **kwargs)


def download(srv, filename, revision, tmp_path):
    return Path(hf_hub_download(REPO, filename, repo_type="dataset", revision=revision, endpoint=srv.endpoint,
                                token=HUB_TOKEN, local_dir=tmp_path / f"dl-{revision[:8]}"))


def check_pushed(srv, config, revision, tmp_path):
    """The db (base + delta) and the CSV shards at `revision` hold exactly the local database's rows."""
    db = download(srv, "reviews.db", revision, tmp_path)
    delta = download(srv, "reviews-delta.db", revision, tmp_path)
    expected = local_rows(config.db_path)
    assert local_rows(db) + local_rows(delta) == expected
    for f in (db, delta):
        assert connect(f, readonly=True).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    files = HfApi(endpoint=srv.endpoint, token=HUB_TOKEN).list_repo_files(REPO, repo_type="dataset", revision=revision)
    assert "reviews.csv" not in files, "no stale single CSV next to the shards"
    parsed = []
    for name in sorted(f for f in files if f.startswith("csv/")):
        rows = list(csv.reader(io.StringIO(download(srv, name, revision, tmp_path).read_text(encoding="utf-8"))))
        assert rows[0] == list(BACKUP_COLUMNS)
        parsed += rows[1:]
    assert [int(r[0]) for r in parsed] == [r[0] for r in expected]
    ids = []
    for name in sorted(f for f in files if f.startswith("data/") and f.endswith(".parquet")):
        ids += pq.read_table(download(srv, name, revision, tmp_path)).column("id").to_pylist()
    assert ids == [r[0] for r in expected], "the Parquet shards hold the same reviews"
    card = download(srv, "README.md", revision, tmp_path).read_text(encoding="utf-8")
    assert f"Reviews: {len(expected):,}" in card and "python -m worker restore" in card
    return expected


def test_push_is_one_private_commit_with_db_csv_and_card(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    add(config, 25)
    outcome = Backup(config, target_for(hub_server)).run()
    assert hub_server.is_private(REPO), "datasets are created private by default"
    commits = hub_server.list_commits(REPO)
    newest = commits[0]
    assert newest["oid"] == outcome.published.revision
    assert set(newest["files"]) >= {"reviews.db", "reviews-delta.db", "csv/reviews-0000000001-0000100000.csv",
                                    "README.md"}
    assert "25 reviews" in newest["title"] and "Z" in newest["title"]  # UTC time and the count
    check_pushed(hub_server, config, outcome.published.revision, tmp_path)
    assert hub_server.stats().get("lfs_put", 0) == 0  # small files took the regular path


def test_large_database_goes_through_lfs(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    add(config, 3000, comment="x" * 600)  # > 1 MB: the server asks for LFS
    assert config.db_path.stat().st_size > 1_000_000 or (data_dir / "reviews.db-wal").stat().st_size > 0
    outcome = Backup(config, target_for(hub_server)).run()
    assert hub_server.stats().get("lfs_put", 0) >= 1
    check_pushed(hub_server, config, outcome.published.revision, tmp_path)


def test_public_only_when_asked(hub_server, data_dir):
    config = hub_config(data_dir, HF_DATASET_PRIVATE="false", HF_DATASET_PUBLISH_NAMES="true")
    add(config, 1)
    Backup(config, target_for(hub_server, private=config.hf_dataset_private,
                              publish_names=config.hf_dataset_publish_names)).run()
    assert not hub_server.is_private(REPO)


def test_no_change_means_no_commit_and_no_request_also_after_restart(hub_server, data_dir):
    config = hub_config(data_dir)
    add(config, 5)
    Backup(config, target_for(hub_server)).run()
    commits = len(hub_server.list_commits(REPO))
    hub_server.reset_stats()
    for _ in range(3):
        assert Backup(config, target_for(hub_server)).run().published is None
    assert hub_server.stats().get("total", 0) == 0, "an unchanged cycle sends no request at all"
    # Restart with the state file lost too: the worker asks the Hub, which holds this data.
    config.state_path.unlink()
    assert Backup(config, target_for(hub_server)).run().published is None
    stats = hub_server.stats()
    assert stats.get("commit", 0) == 0 and stats.get("preupload", 0) == 0 and stats.get("lfs_put", 0) == 0
    assert len(hub_server.list_commits(REPO)) == commits
    add(config, 1)
    assert Backup(config, target_for(hub_server)).run().published.rows == 6
    assert len(hub_server.list_commits(REPO)) == commits + 1


def test_outage_then_recovery_pushes_everything_and_logs_once(hub_server, data_dir, tmp_path, caplog):
    config = hub_config(data_dir)
    add(config, 3, tag="before")
    loop = BackupLoop(Backup(config, target_for(hub_server)), interval=0.3, backoff_cap=0.6)
    loop.tick()
    assert loop.failures == 0
    stop = threading.Event()
    with caplog.at_level(logging.DEBUG, logger="worker"):
        hub_server.fail_next(10_000, mode="503")  # the Hub is down
        runner = threading.Thread(target=loop.run, args=(stop,))
        runner.start()
        try:
            for i in range(4):
                add(config, 2, tag=f"during{i}-")
                wait_until(lambda n=i: loop.failures >= n + 1, 15, what="a failed cycle")
        finally:
            stop.set()
            runner.join(30)
        # Looked at with the loop stopped: a running loop may be re-taking the snapshot at this instant.
        assert (data_dir / "backups" / ".mirror" / "tree" / "reviews-delta.db").exists(), \
            "the backup's files are kept until a push succeeds"
        hub_server.fail_next(0)
        stop = threading.Event()
        runner = threading.Thread(target=loop.run, args=(stop,))
        runner.start()
        try:
            wait_until(lambda: loop.failures == 0, 30, what="recovery")
        finally:
            stop.set()
            runner.join(30)
    newest = hub_server.list_commits(REPO)[0]["oid"]
    rows = check_pushed(hub_server, config, newest, tmp_path)
    assert len(rows) == 11
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "503" in errors[0]
    assert any("recovered after" in r.getMessage() for r in caplog.records)


def test_bad_or_missing_token_gives_one_clear_error(hub_server, data_dir, caplog):
    config = hub_config(data_dir)
    add(config, 2)
    for token, cause in (("hf_not_a_real_token_123", "401"), (None, "HF_TOKEN is not set"),
                         (HUB_READ_TOKEN, "403"), (HUB_OTHER_TOKEN, "")):
        with pytest.raises(HubError) as err:
            Backup(config, target_for(hub_server, token=token)).run()
        assert cause in str(err.value)
        assert "hf_not_a_real_token_123" not in str(err.value)
    loop = BackupLoop(Backup(config, target_for(hub_server, token="hf_not_a_real_token_123")),
                      interval=0.1, backoff_cap=0.2)
    with caplog.at_level(logging.DEBUG, logger="worker"):
        loop.tick()
    assert loop.failures == 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HF_TOKEN" in text and "hf_not_a_real_token_123" not in text


def run_worker_cmd(srv, data_dir, *args, token=HUB_TOKEN, extra=None):
    env = hub_client_env(srv.endpoint, token=token)
    env.update({"FEEDBACK_DATA_DIR": str(data_dir), "HF_DATASET_REPO": REPO, **(extra or {})})
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_restore_empty_folder_refusal_force_and_revision(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir)
    add(config, 4, tag="old")
    first = Backup(config, target_for(hub_server)).run().published.revision
    add(config, 3, tag="new")
    Backup(config, target_for(hub_server)).run()
    everything = local_rows(config.db_path)

    fresh = tmp_path / "fresh"
    r = run_worker_cmd(hub_server, fresh, "restore")
    assert r.returncode == 0, r.stderr
    assert local_rows(fresh / "reviews.db") == everything

    r = run_worker_cmd(hub_server, fresh, "restore", "--revision", first)
    assert r.returncode == 3 and "--force" in r.stderr
    assert local_rows(fresh / "reviews.db") == everything  # untouched

    r = run_worker_cmd(hub_server, fresh, "restore", "--revision", first, "--force")
    assert r.returncode == 0, r.stderr
    assert [row[2] for row in local_rows(fresh / "reviews.db")] == [f"old{i}" for i in range(4)]
    kept = list(fresh.glob("reviews.db.pre-restore-*"))
    assert len(kept) == 1 and local_rows(kept[0]) == everything
    assert connect(fresh / "reviews.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_status_shows_the_hub_side(hub_server, data_dir):
    config = hub_config(data_dir)
    add(config, 2)
    run_worker_cmd(hub_server, data_dir, "backup")
    r = run_worker_cmd(hub_server, data_dir, "status", "--json")
    status = json.loads(r.stdout)
    assert status["target"] == f"hub:{REPO}" and status["hub_sync"] == "on"
    assert status["last_backup_revision"] == hub_server.list_commits(REPO)[0]["oid"]
    assert status["consecutive_failures"] == 0


def test_squash_keeps_history_short_and_the_newest_backup(hub_server, data_dir, tmp_path):
    config = hub_config(data_dir, HF_SQUASH_AFTER_COMMITS="3")
    target = target_for(hub_server, squash_after=config.hf_squash_after_commits)
    for i in range(6):
        add(config, 1, tag=f"s{i}-")
        Backup(config, target).run()
        assert len(hub_server.list_commits(REPO)) <= 3
    newest = hub_server.list_commits(REPO)[0]["oid"]
    assert len(check_pushed(hub_server, config, newest, tmp_path)) == 6
    add(config, 1)
    assert Backup(config, target).run().published is not None  # still pushes after a squash


def test_fresh_disk_restores_before_the_first_page_load(hub_server, tmp_path):
    seeded = hub_config(tmp_path / "old-machine")
    add(seeded, 7, tag="restored-")
    Backup(seeded, target_for(hub_server)).run()
    env = hub_client_env(hub_server.endpoint, token=HUB_TOKEN, base={})
    env = {k: v for k, v in env.items() if k.startswith("HF_")}
    env.update({"HF_DATASET_REPO": REPO, "BACKUP_INTERVAL_SECONDS": "2"})
    app = App(tmp_path / "new-machine", env=env)
    with app:
        from tests import gradio_api
        first = gradio_api.overview(app.url)
        assert first.ok and first.data[1] == 7
        shown, _ = gradio_api.latest_reviews(first.data[0])
        assert [review.name for review in shown][:3] == ["restored-6", "restored-5", "restored-4"]
        web_pid = app.pid("web")
        environ = Path(f"/proc/{web_pid}/environ").read_bytes().split(b"\0")
        assert not any(item.startswith((b"HF_TOKEN=", b"HUGGING_FACE_HUB_TOKEN=")) for item in environ)
        assert HUB_TOKEN.encode() not in b"\0".join(environ)
        r = gradio_api.add_review(app.url, "after-restore", 5, "")
        assert r.ok and r.data[5] == 8
        wait_until(lambda: "8 reviews" in hub_server.list_commits(REPO)[0]["title"], 30, what="the push")
    logs = "\n".join(p.read_text(errors="replace") for p in (app.data_dir / "logs").glob("*.log"))
    assert "restored backup rows=7" in logs
    assert HUB_TOKEN not in logs
