"""Issue 12, worker side: a poisoned or hostile newest backup, `verify`, the restore drill, `status`.

Real huggingface_hub client against tests/hubserver.py; the attacker is someone
with write access to the dataset, committing with the same client.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from shared.config import load_config
from shared.db import connect
from tests.hub_fixtures import HUB_REPO as REPO
from tests.hub_fixtures import HUB_TOKEN, hub_client_env, hub_config
from tests.store_support import add_reviews, all_rows, exported_comments
from worker.backup import Backup
from worker.drill import RestoreDrill
from worker.hub import HubTarget
from worker.loop import BackupLoop
from worker.restore import restore
from worker.state import load_state

ROOT = Path(__file__).resolve().parent.parent


def target_for(srv) -> HubTarget:
    return HubTarget(HfApi(endpoint=srv.endpoint, token=HUB_TOKEN), REPO, has_token=True)


def add(config, ratings, tag="r"):
    return add_reviews(config, ratings=ratings, tag=tag)


def rows(db_path: Path) -> list[tuple]:
    return all_rows(db_path, ("id", "name", "comments"))


def worker_cli(config, srv, *args) -> subprocess.CompletedProcess:
    env = hub_client_env(srv.endpoint)
    env.update({"FEEDBACK_DATA_DIR": str(config.data_dir), "HF_DATASET_REPO": REPO})
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def attacker_commit(srv, db_bytes: bytes, title: str = "Backup (forged)") -> str:
    """Someone with write access pushes a new newest reviews.db (the card stays as it was)."""
    api = HfApi(endpoint=srv.endpoint, token=HUB_TOKEN)
    info = api.create_commit(REPO, repo_type="dataset", commit_message=title,
                             operations=[CommitOperationAdd("reviews.db", db_bytes)])
    return info.oid


def hostile_db(tmp_path: Path, source: Path, statements: list[str]) -> bytes:
    """A valid copy of `source` (a real backup) carrying extra schema objects."""
    path = tmp_path / "hostile.db"
    src = connect(source, readonly=True)
    dst = sqlite3.connect(path)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")
        for statement in statements:
            dst.execute(statement)
        dst.commit()
    finally:
        dst.close()
        src.close()
    return path.read_bytes()


def rating_column(db_path: Path) -> str:
    conn = connect(db_path, readonly=True)
    try:
        names = [r[1] for r in conn.execute("PRAGMA table_info(reviews)")]
    finally:
        conn.close()
    return "rating" if "rating" in names else "review"


@pytest.fixture
def published(hub_server, tmp_path):
    """A dataset with two good backups (3 then 5 reviews); returns (config, target, good revision)."""
    config = hub_config(tmp_path / "origin")
    target = target_for(hub_server)
    add(config, [5, 4, 3])
    Backup(config, target).run()
    add(config, [2, 1], tag="s")
    outcome = Backup(config, target).run()
    return config, target, outcome.published.revision


def test_restore_walks_back_past_a_poisoned_newest_backup(hub_server, published, tmp_path, caplog):
    origin, target, good = published
    bad = attacker_commit(hub_server, b"this is not an SQLite database" * 100)
    fresh = hub_config(tmp_path / "fresh")
    with caplog.at_level(logging.WARNING, logger="worker.restore"):
        info = restore(fresh, target)
    assert info.revision == good
    assert rows(fresh.db_path) == rows(origin.db_path)  # all 5 reviews, not an empty form
    skipped = [r.getMessage() for r in caplog.records if "skipped backup" in r.getMessage()]
    # The replaced db is caught by its checksum (the card records the sha256 of the checked base,
    # issue 14) or, for a backup without one, by integrity_check.
    assert len(skipped) == 1 and bad in skipped[0], skipped
    assert "sha256 differs" in skipped[0] or "not a readable database" in skipped[0], skipped
    # The next cycle publishes over the poisoned revision (no conflict, no failure streak).
    add(fresh, [4], tag="after")
    outcome = Backup(fresh, target).run()
    assert outcome.published and outcome.published.rows == 6
    assert worker_cli(fresh, hub_server, "verify").returncode == 0


def test_verify_checks_a_revision_without_touching_the_live_database(hub_server, published, tmp_path):
    origin, target, good = published
    bad = attacker_commit(hub_server, b"garbage" * 1000)
    before = origin.db_path.read_bytes()
    refused = worker_cli(origin, hub_server, "verify")
    assert refused.returncode == 1 and "refused" in refused.stdout + refused.stderr, refused
    assert bad[:7] in refused.stdout or "newest" in refused.stdout
    ok = worker_cli(origin, hub_server, "verify", "--revision", good)
    assert ok.returncode == 0 and "restorable: 5 reviews" in ok.stdout, ok
    assert origin.db_path.read_bytes() == before
    assert not list(origin.data_dir.glob(".verify*"))


@pytest.mark.parametrize("case", ["AFTER INSERT DELETE trigger", "UPDATE comments trigger", "view over reviews",
                                  "changed trigger of ours"])
def test_a_hostile_newest_backup_is_restored_without_its_foreign_objects(hub_server, published, tmp_path, case):
    origin, target, _good = published
    col = rating_column(origin.db_path)
    statements = {
        "AFTER INSERT DELETE trigger": [f"CREATE TRIGGER evil_delete AFTER INSERT ON reviews WHEN NEW.{col} <= 3 "
                                        "BEGIN DELETE FROM reviews WHERE id = NEW.id; END"],
        "UPDATE comments trigger": [f"CREATE TRIGGER evil_rewrite AFTER INSERT ON reviews WHEN NEW.{col} >= 4 "
                                    "BEGIN UPDATE reviews SET comments = 'pwned' WHERE id = NEW.id; END"],
        "view over reviews": ["CREATE VIEW evil_view AS SELECT name, comments FROM reviews"],
        "changed trigger of ours": ["DROP TRIGGER reviews_ai",
                                    "CREATE TRIGGER reviews_ai AFTER INSERT ON reviews BEGIN DELETE FROM reviews "
                                    "WHERE id = NEW.id; END"],
    }[case]
    attacker_commit(hub_server, hostile_db(tmp_path, origin.db_path, statements))
    fresh = hub_config(tmp_path / "fresh")
    restore(fresh, target)
    ids = add(fresh, [1, 2, 3, 4, 5], tag="new")  # through shared/store.py, as the form writes
    stored = rows(fresh.db_path)
    assert [r[0] for r in stored][-5:] == ids
    assert [r[2] for r in stored][-5:] == [f"new comment {i}" for i in range(5)]
    conn = connect(fresh.db_path, readonly=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        total = conn.execute("SELECT SUM(n) FROM review_stats").fetchone()[0]
    finally:
        conn.close()
    assert not {n for n in names if n.startswith("evil")}
    assert total == len(stored)  # our totals trigger is in place and counted every insert


def test_status_exits_non_zero_while_backups_fail(hub_server, tmp_path):
    config = hub_config(tmp_path / "data", BACKUP_BACKOFF_CAP_SECONDS="1")
    add(config, [5])
    loop = BackupLoop(Backup(config, target_for(hub_server)), interval=1, backoff_cap=1)
    hub_server.fail_next(1000, mode="503")
    try:
        loop.tick(final=True)
        loop.tick(final=True)
    finally:
        hub_server.fail_next(0)
    failing = worker_cli(config, hub_server, "status")
    assert load_state(config.state_path).consecutive_failures == 2
    assert failing.returncode == 1 and "consecutive_failures" in failing.stdout
    loop.tick(final=True)
    assert worker_cli(config, hub_server, "status").returncode == 0


def test_the_restore_drill_records_its_result_and_status_reports_it(hub_server, published, tmp_path):
    origin, target, good = published
    now = [time.time()]
    config = hub_config(origin.data_dir, RESTORE_DRILL_INTERVAL_SECONDS="3600")
    drill = RestoreDrill(config, target, clock=lambda: now[0])
    assert drill.maybe_run() is None  # not yet: the first drill comes a while after start
    now[0] += 3600
    passed = drill.maybe_run()
    assert passed.ok and passed.revision == good
    status = worker_cli(config, hub_server, "status")
    assert status.returncode == 0 and "last_drill_ok" in status.stdout and "True" in status.stdout, status.stdout
    assert drill.maybe_run() is None  # the next one is due an interval after this one
    attacker_commit(hub_server, b"not a database" * 50)
    now[0] += 3600
    failed = drill.maybe_run()
    assert failed is not None and not failed.ok and "refused" in failed.detail
    status = worker_cli(config, hub_server, "status")
    assert status.returncode == 1 and "refused" in status.stdout, status.stdout
    state = load_state(config.state_path)
    assert state.last_drill_ok is False and state.last_drill_at


# ---------------------------------------------------------------- the formula guard's first character


DISGUISED = [" =HYPERLINK(\"http://x\")", "\u00a0=1+1", "\u200b=1+1", "\ufeff@SUM(A1)", "\u3000+1",
             "\uff1dSUM(A1:A2)", "\uff0b1", "\uff0d1", "\uff20x", "\n=1"]
HARMLESS = ["hello = world", "5 stars", "", "   ", "\u00a0", "é=1"]


def test_formulas_behind_spaces_zero_width_or_full_width_are_guarded_in_the_csv(tmp_path):
    comments = exported_comments(tmp_path, DISGUISED + HARMLESS)
    assert comments == ["'" + t for t in DISGUISED] + HARMLESS
    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path / "data")})
    assert rows(config.db_path)[0][2] == DISGUISED[0]  # the database keeps the text exactly as sent


# ---------------------------------------------------------------- the whole app on a fresh disk


def test_a_fresh_disk_under_a_poisoned_newest_backup_opens_with_the_good_reviews(hub_server, published, tmp_path):
    """supervisord, the worker's start-up restore and the form: not empty, and the drill runs in the loop."""
    from tests import gradio_api
    from tests.apprunner import App, wait_until

    origin, _target, good = published
    bad = attacker_commit(hub_server, b"\x00poison" * 500)
    env = {k: v for k, v in hub_client_env(hub_server.endpoint, base={}).items() if k.startswith("HF_")}
    env.update({"HF_DATASET_REPO": REPO, "RESTORE_DRILL_INTERVAL_SECONDS": "1"})
    with App(tmp_path / "fresh" / "data", env=env) as app:
        overview = gradio_api.overview(app.url)
        assert overview.ok and overview.data[1] == len(rows(origin.db_path)), overview  # total reviews shown
        # supervisord copies the worker's output to its log on its own schedule: wait for the line.
        log = wait_until(lambda: (lambda t: t if f"skipped backup revision={bad}" in t else "")(app.log("worker")),
                         20, 0.2, "the walk-back line in the worker's log")
        assert good in log, log[-3000:]
        assert gradio_api.add_review(app.url, "after", 2, "after the walk-back").ok
        # The loop's drill: the worker's own push replaces the poisoned newest, and the drill passes.
        wait_until(lambda: load_state(app.data_dir / "worker-state.json").last_drill_ok, 60, 0.5, "a drill")
        status = app.worker("status")
        assert status.returncode == 0 and "last_drill_ok" in status.stdout, status.stdout + status.stderr
