"""Faults under a steady stream of submissions: the promise is that no acknowledged review is lost.

The app runs under supervisord with the test Hub server and a 1 s backup
interval. A bounded load thread submits reviews through the HTTP API and
records each one the API acknowledged. After each fault the suite waits for
recovery and checks every review acknowledged so far against the local
database and the newest Hub backup. The tests run in file order and share
one app; the last one checks everything and the table is printed at the end.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

from shared.db import connect
from tests import gradio_api
from tests.apprunner import App, wait_until
from tests.faults.conftest import RESULTS
from tests.hub_fixtures import HUB_TOKEN, HUB_TOKENS, hub_client_env
from tests.hubserver import HubServer
from worker.state import load_state

REPO = "alice/feedback"
LOAD_MAX_REVIEWS = 20_000
LOAD_MAX_SECONDS = 600
LOAD_PAUSE_SECONDS = 0.05
CONVERGE_SECONDS = 60


class Load:
    """A bounded stream of submissions; remembers every acknowledged one."""

    def __init__(self, app: App):
        self.app = app  # its url, read per request: a restart may move the app to another port
        self.acked: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.idle = threading.Event()  # set by the load thread once paused and no request is in flight
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def _run(self) -> None:
        import httpx
        deadline = time.monotonic() + LOAD_MAX_SECONDS
        with httpx.Client(timeout=15) as client:
            for i in range(LOAD_MAX_REVIEWS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                if self.paused.is_set():
                    self.idle.set()
                    time.sleep(0.05)
                    continue
                name = f"load-{i}"
                try:
                    r = gradio_api.add_review(self.app.url, name, 1 + i % 5, f"steady comment {i} " + "x" * (i % 200),
                                              client=client)
                except Exception:  # noqa: BLE001 - the web is being killed on purpose
                    r = None
                with self._lock:
                    if r is not None and r.ok:
                        self.acked.append(name)
                    else:
                        self.failed += 1
                time.sleep(LOAD_PAUSE_SECONDS)

    def pause(self) -> None:
        """Stop submitting and wait until no request is in flight (not a sleep: a slow
        request on a loaded machine outlasts any fixed wait)."""
        self.idle.clear()
        self.paused.set()
        wait_until(lambda: self.idle.is_set() or not self.thread.is_alive(), 60, 0.02,
                   what="the load's request in flight to finish")

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.acked)


def names_in(db_path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [r[0] for r in conn.execute("SELECT name FROM reviews")]
    finally:
        conn.close()


def hub_names(srv: HubServer) -> list[str]:
    """The names in the newest Hub backup: its db (the base) and its delta."""
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("reviews.db", "reviews-delta.db"):
            path = Path(tmp) / name
            path.write_bytes(srv.read_file(REPO, name))
            names += names_in(path)
    return names


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    srv = HubServer(tokens=HUB_TOKENS, lfs_threshold=1_000_000)
    srv.start()
    env = {k: v for k, v in hub_client_env(srv.endpoint, token=HUB_TOKEN, base={}).items() if k.startswith("HF_")}
    env.update({"HF_DATASET_REPO": REPO, "BACKUP_INTERVAL_SECONDS": "1", "BACKUP_BACKOFF_CAP_SECONDS": "2",
                "RESTORE_TIMEOUT_SECONDS": "20"})
    app = App(base / "data", env=env)
    app.start()
    load = Load(app)
    load.thread.start()
    try:
        yield app, srv, load
    finally:
        load.stop.set()
        load.thread.join(30)
        app.stop()
        srv.stop()


def converge(rig, fault: str, count: int) -> None:
    """Wait until every review acknowledged so far is in the local db and the newest Hub backup; record a row."""
    app, srv, load = rig
    acked = load.snapshot()
    want = set(acked)

    def caught_up():
        try:
            return want <= set(hub_names(srv))
        except Exception:  # noqa: BLE001 - the repo or file may not exist yet
            return False

    try:
        wait_until(caught_up, CONVERGE_SECONDS, 0.5, f"the Hub to hold every review acknowledged before '{fault}'")
    finally:
        local = set(names_in(app.data_dir / "reviews.db"))
        try:
            hub = set(hub_names(srv))
        except Exception:  # noqa: BLE001
            hub = set()
        lost = len(want - (local & hub))
        RESULTS.append({"fault": fault, "count": count, "acknowledged": len(want), "in local db": len(want & local),
                        "in newest Hub backup": len(want & hub), "lost": lost})
    assert lost == 0


def wait_new_pid(app: App, program: str, old: int, timeout: float = 60) -> int:
    return wait_until(lambda: (lambda p: p if p not in (0, old) else 0)(app.pid(program)), timeout, 0.2,
                      f"{program} to be restarted")


def test_worker_killed_in_the_middle_of_a_push(rig):
    app, srv, load = rig
    wait_until(lambda: len(load.snapshot()) > 20, 30, what="the load to flow")
    srv.set_delay(1.5)  # each commit takes 1.5 s on the Hub: a kill lands inside it
    kills = 0
    try:
        for _ in range(5):
            pid = app.pid("worker")
            commits = srv.stats().get("commit", 0)
            wait_until(lambda: srv.stats().get("commit", 0) > commits, 40, 0.02, "a push to start")  # noqa: B023 - called within this iteration
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_new_pid(app, "worker", pid)
    finally:
        srv.set_delay(0)
    assert kills == 5
    converge(rig, "worker SIGKILL mid-push", kills)


def test_worker_restarted_by_supervisorctl(rig):
    app, _, _ = rig
    for _ in range(5):
        pid = app.pid("worker")
        out = app.ctl("restart", "worker").stdout
        assert "worker: started" in out, out
        assert app.pid("worker") != pid
        time.sleep(0.5)
    converge(rig, "supervisorctl restart worker", 5)


def test_web_killed_under_load(rig):
    app, _, load = rig
    before = len(load.snapshot())
    pid = app.pid("web")
    os.kill(pid, signal.SIGKILL)
    wait_new_pid(app, "web", pid)
    app.wait_web(60)
    wait_until(lambda: len(load.snapshot()) > before + 10, 60, what="submissions to succeed again")
    assert names_in(app.data_dir / "reviews.db")  # intact: integrity_check inside
    converge(rig, "web SIGKILL under load", 1)


def test_hub_outage_of_several_cycles(rig):
    app, srv, _ = rig
    recovered = app.log("worker").count("recovered after")
    for mode, retry_after in (("503", None), ("429", 1), ("drop", None)):
        failed = srv.stats().get("injected_failures", 0)
        srv.fail_next(100_000, mode=mode, retry_after=retry_after)
        # Several failed requests of this kind, counted by the server (not a sleep).
        wait_until(lambda: srv.stats().get("injected_failures", 0) >= failed + 3, 60, 0.1,  # noqa: B023 - called within this iteration
                   what=f"the worker to meet the {mode} outage")
        srv.fail_next(0)
    converge(rig, "Hub outage: 503, 429+Retry-After, dropped connections", 3)
    # The push lands on the Hub before the worker logs its recovery: wait for the line.
    wait_until(lambda: app.log("worker").count("recovered after") > recovered, 30, 0.2, "the recovery log line")


def test_bad_token_then_the_good_one(rig):
    app, srv, _ = rig
    errors_before = app.log("worker").count("401")
    srv.tokens.pop(HUB_TOKEN)  # the token stops working
    try:
        wait_until(lambda: app.log("worker").count("401") > errors_before, 60, 0.2, "the worker to log the 401")
    finally:
        srv.add_token(HUB_TOKEN, "alice")
    assert "HF_TOKEN" in app.log("worker")
    converge(rig, "bad token, then good again", 1)


def test_full_disk_for_the_backup_folder(rig):
    app, _, _ = rig
    pid = app.pid("worker")
    recovered = app.log("worker").count("recovered after")
    # A file-size limit on the worker: its snapshot cannot be written (EFBIG), as on a full disk.
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))
    try:
        wait_until(lambda: "could not write the snapshot" in app.log("worker"), 30, 0.2, "the worker to hit the limit")
        # A second failed run, recorded by the worker itself: it lived through the first one.
        wait_until(lambda: load_state(app.data_dir / "worker-state.json").consecutive_failures >= 2, 60, 0.2,
                   "a second failed run")
        assert app.pid("worker") == pid, "the worker survives a full disk"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    wait_until(lambda: app.log("worker").count("recovered after") > recovered, 30, 0.2, "recovery")
    converge(rig, "full disk: backup folder", 1)


def test_full_disk_under_the_database(rig):
    app, _, load = rig
    load.pause()
    pid = app.pid("web")
    try:
        conn = connect(app.data_dir / "reviews.db")
        for _ in range(50):  # an empty -wal file: the next commit must grow it
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy and (app.data_dir / "reviews.db-wal").stat().st_size == 0:
                break
            time.sleep(0.1)
        conn.close()
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        try:
            results = [gradio_api.add_review(app.url, f"disk-full-{i}", 3, "no space") for i in range(3)]
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        refused = [r for r in results if not r.ok]
        assert refused, "a full disk must refuse the write"
        assert all("could not be saved" in r.error for r in refused)
        names = names_in(app.data_dir / "reviews.db")  # integrity_check inside: not corrupt
        assert not {f"disk-full-{i}" for i, r in enumerate(results) if not r.ok} & set(names)
        after = gradio_api.add_review(app.url, "disk-has-space-again", 4, "")
        assert after.ok, after.error
        assert app.pid("web") == pid
    finally:
        load.paused.clear()
    converge(rig, "full disk: database", 1)


def test_corrupt_database_at_start_is_moved_aside_and_restored(rig):
    app, srv, load = rig
    load.pause()
    acked = set(load.snapshot())
    app.stop()  # graceful: the worker's final backup pushes the last reviews
    assert acked <= set(hub_names(srv))
    db = app.data_dir / "reviews.db"
    with open(db, "r+b") as f:
        f.seek(0)
        f.write(os.urandom(4096))  # garbage over the header and the first page
    for side in ("reviews.db-wal", "reviews.db-shm"):
        (app.data_dir / side).unlink(missing_ok=True)
    app.start()
    load.paused.clear()
    aside = list(app.data_dir.glob("reviews.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0, "moved aside, never deleted"
    log = app.log("worker")
    assert "level=CRITICAL" in log and "corrupt" in log
    assert acked <= set(names_in(db))
    converge(rig, "corrupt local database at start", 1)


def test_nothing_lost_no_duplicates_at_the_end(rig):
    app, srv, load = rig
    load.stop.set()
    load.thread.join(30)
    converge(rig, "end of run (all faults)", sum(r["count"] for r in RESULTS))
    local = names_in(app.data_dir / "reviews.db")
    hub = hub_names(srv)
    assert len(local) == len(set(local)) and len(hub) == len(set(hub)), "no duplicates"
    assert len(load.acked) > 200, "the load must have been steady"
