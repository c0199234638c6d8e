"""The app for real: supervisord from the project's supervisord.conf, HTTP API calls, local backups."""

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from shared.db import connect
from tests import gradio_api
from tests.apprunner import App, wait_until


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with App(tmp_path_factory.mktemp("e2e") / "data", env={"BACKUP_INTERVAL_SECONDS": "1"}) as a:
        yield a


def newest_backup(app):
    manifests = sorted((app.data_dir / "backups").glob("reviews-*.json"))
    return json.loads(manifests[-1].read_text()) if manifests else None


def test_both_programs_run_under_supervisord(app):
    out = app.ctl("status").stdout
    assert "web" in out and "worker" in out and out.count("RUNNING") == 2, out
    sock = app.data_dir / "supervisor.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700


def test_reviews_over_the_api_end_up_in_the_local_backup(app):
    sent = []
    for i in range(12):
        r = gradio_api.add_review(app.url, f"e2e-{i}", 1 + i % 5, f"comment {i}")
        assert r.ok, r.error
        sent.append(f"e2e-{i}")
        status, _, rating_cleared, _, list_html, total = r.data[:6]
        assert status.startswith("Thank you") and rating_cleared is None
        assert gradio_api.latest_reviews(list_html)[0][0].name == f"e2e-{i}"  # newest first
    conn = connect(app.data_dir / "reviews.db", readonly=True)
    expected = conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    conn.close()
    wait_until(lambda: (newest_backup(app) or {}).get("rows") == expected, 20, what="a backup with every review")
    info = newest_backup(app)
    folder = Path(info["location"]).parent  # the backup's folder: base db + delta db + CSV shards
    names = set()
    for db in ("reviews.db", "reviews-delta.db"):
        backup = connect(folder / db, readonly=True)
        names |= {row[0] for row in backup.execute("SELECT name FROM reviews")}
        backup.close()
    assert set(sent) <= names
    csv_text = "".join(f.read_text(encoding="utf-8") for f in sorted(folder.glob("csv/*.csv")))
    assert all(name in csv_text for name in sent)
    # The manifest lands before the worker logs the backup, and supervisord writes the log later still.
    wait_until(lambda: "backup published" in app.log("worker"), 20, what="the worker's backup log line")
    assert "backup published" not in app.log("web")


def test_bad_input_over_the_api_stores_nothing(app):
    before = gradio_api.overview(app.url).data[1]
    for args in [("x", None, "y"), ("x", 7, "y"), ("n" * 101, 3, ""), ("x", 3, "c" * 5001), ("a\x00", 3, "")]:
        r = gradio_api.add_review(app.url, *args)
        assert not r.ok and r.error, args
    assert gradio_api.overview(app.url).data[1] == before


def test_restarting_the_worker_leaves_the_form_answering(app):
    errors, done = [], []
    stop = threading.Event()

    def submit_steadily():
        i = 0
        while not stop.is_set() and i < 400:
            r = gradio_api.add_review(app.url, f"during-restart-{i}", 3, "")
            (done if r.ok else errors).append(r.error)
            i += 1
            time.sleep(0.02)

    old_pid = app.pid("worker")
    t = threading.Thread(target=submit_steadily)
    t.start()
    try:
        # Synchronise on what happened, not on sleeps: submissions flow before, and after, the restart.
        wait_until(lambda: len(done) + len(errors) >= 5, 60, what="submissions before the restart")
        result = app.ctl("restart", "worker")
        assert "worker: started" in result.stdout, result.stdout + result.stderr
        after_restart = len(done) + len(errors)
        wait_until(lambda: len(done) + len(errors) >= after_restart + 5, 60, what="submissions after the restart")
    finally:
        stop.set()
        t.join(60)
    assert errors == [] and len(done) >= 10
    assert app.pid("worker") not in (0, old_pid)
    # supervisord writes the old worker's last lines to its log on its own schedule.
    wait_until(lambda: "shutdown complete" in app.log("worker"), 20, what="the old worker's last log line")
    wait_until(lambda: (newest_backup(app) or {}).get("rows", 0) >= len(done), 20, what="the backup to catch up")


def test_worker_log_can_be_tailed_separately(app):
    out = app.ctl("tail", "worker").stdout
    assert "proc=worker" in out and "proc=web" not in out


def test_a_port_taken_before_the_web_binds_it_is_detected_and_another_used(tmp_path):
    """free_port() races other suites on this machine: the runner must notice and never test someone else's server."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with App(tmp_path / "data", port=taken) as app:
            assert app.port != taken
            assert gradio_api.overview(app.url).ok
