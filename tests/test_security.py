"""Security properties of the running app (see SECURITY.md for the threat model).

- The Hub token never reaches the web process, a log, the data folder, a commit
  or dataset card, or an error message, also while the Hub is failing.
- Only our user can control supervisord (socket 0700), and nothing but the
  form listens on the network, and only on the configured address.
- The dataset is created private; supervisord.conf holds no secret.
- The owner's page exists only with ADMIN_PASSWORD, and then every route of
  it, the HTTP API included, needs the login.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
import stat
from pathlib import Path

import httpx
import pytest

from tests import gradio_api
from tests.apprunner import ROOT, App, wait_until
from tests.hub_fixtures import HUB_LFS_THRESHOLD, HUB_TOKENS, HUB_USER, hub_client_env
from tests.hubserver import HubServer

REPO = "alice/feedback"
SECRET = "hf_SECRET_test_token_value_123"  # distinctive, so that grepping for it means something
WRONG = "hf_WRONG_test_token_value_456"
ADMIN_PASSWORD = "owner-Pa55word-for-tests"
OWNER_ROUTES = [  # every kind of route of the owner's Gradio app; none may answer without the login
    ("GET", "/admin/config"),
    ("GET", "/admin/gradio_api/info"),
    ("POST", "/admin/gradio_api/call/show"),
    ("POST", "/admin/gradio_api/call/prepare_csv"),
    ("POST", "/admin/gradio_api/queue/join"),
    ("GET", "/admin/gradio_api/queue/data?session_hash=probe"),
    ("POST", "/admin/gradio_api/run/predict"),
    ("POST", "/admin/gradio_api/upload"),  # 404 for everyone: see test_uploads_are_refused
]


def request(client: httpx.Client, method: str, url: str) -> httpx.Response:
    body = {"data": ["", 0], "fn_index": 0, "session_hash": "probe"} if method == "POST" else None
    return client.request(method, url, json=body)


# ---------------------------------------------------------------- the app with Hub sync


@pytest.fixture(scope="module")
def hub():
    srv = HubServer(tokens=HUB_TOKENS, lfs_threshold=HUB_LFS_THRESHOLD)
    srv.add_token(SECRET, HUB_USER)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def hub_app(hub, tmp_path_factory):
    env = {k: v for k, v in hub_client_env(hub.endpoint, token=SECRET, base={}).items() if k.startswith("HF_")}
    # A short backoff cap: a refused token is a permanent error, retried only after the cap.
    env.update({"HF_DATASET_REPO": REPO, "BACKUP_BACKOFF_CAP_SECONDS": "2"})
    with App(tmp_path_factory.mktemp("security-hub") / "data", env=env) as app:
        yield app


def pushed(hub: HubServer, rows: int) -> bool:
    try:
        return any(f"{rows} reviews" in c["title"] for c in hub.list_commits(REPO))
    except KeyError:
        return False


@pytest.fixture(scope="module")
def leak_run(hub, hub_app):
    """Reviews pushed, Hub failures of several kinds, then one-shot worker commands that fail.

    Returns the outputs of those commands; the files and the Hub are inspected by the tests."""
    n = 0

    def submit(k: int) -> None:
        nonlocal n
        for _ in range(k):
            n += 1
            r = gradio_api.add_review(hub_app.url, f"sec-{n}", 1 + n % 5, f"comment {n}")
            assert r.ok, r.error

    submit(3)
    wait_until(lambda: pushed(hub, n), 30, 0.2, "the first push")
    for mode in ("503", "drop", "401"):
        hub.fail_next(2, mode=mode)
        submit(1)
        wait_until(lambda: pushed(hub, n), 30, 0.2, f"the push after injected {mode} failures")
    # The push lands on the Hub before the worker logs its recovery: wait for the lines, do not read at once.
    wait_until(lambda: "backup failed" in hub_app.log("worker") and "backup recovered" in hub_app.log("worker"),
               30, 0.2, "the failure and recovery lines in the worker's log")
    # One-shot commands as ops would run them, with the worker stopped and a review not yet backed up
    # (with nothing to back up, a `backup` does not talk to the Hub at all).
    assert "stopped" in hub_app.ctl("stop", "worker").stdout
    submit(1)
    outputs = {
        "backup with a wrong token": hub_app.worker("backup", env={"HF_TOKEN": WRONG}),
        "backup to someone else's dataset": hub_app.worker("backup", env={"HF_DATASET_REPO": "bob/feedback"}),
        "restore from a missing dataset": hub_app.worker("restore", "--force",
                                                         env={"HF_DATASET_REPO": "alice/missing"}),
    }
    hub.fail_next(1000, mode="503")
    try:
        outputs["backup while the Hub is down"] = hub_app.worker("backup")
    finally:
        hub.fail_next(0)
    outputs["status"] = hub_app.worker("status", "--json")
    assert "started" in hub_app.ctl("start", "worker").stdout
    wait_until(lambda: pushed(hub, n), 30, 0.2, "the push after the worker restarted")
    return outputs


def test_web_process_environment_has_no_token(hub_app, leak_run):
    worker_env = Path(f"/proc/{hub_app.pid('worker')}/environ").read_bytes()
    assert SECRET.encode() in worker_env  # the worker does hold it: the check below means something
    web_pid = hub_app.pid("web")
    environ = Path(f"/proc/{web_pid}/environ").read_bytes()
    cmdline = Path(f"/proc/{web_pid}/cmdline").read_bytes()
    assert SECRET.encode() not in environ and SECRET.encode() not in cmdline
    names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
    assert not names & {b"HF_TOKEN", b"HUGGING_FACE_HUB_TOKEN"}


def test_no_file_in_the_data_folder_holds_the_token(hub_app, leak_run):
    """Logs (every one, supervisord's included), state, database, backups: nothing holds the token."""
    files = [p for p in hub_app.data_dir.rglob("*") if p.is_file() and not p.is_socket()]
    logs = [p for p in files if p.parent.name == "logs"]
    assert {"web.log", "worker.log", "supervisord.log"} <= {p.name for p in logs}
    assert any("backup failed" in p.read_text(errors="replace") for p in logs)
    leaking = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaking == []


def test_commits_and_dataset_cards_hold_no_token(hub, leak_run):
    commits = hub.list_commits(REPO)
    assert len(commits) >= 5
    for commit in commits:
        assert SECRET not in commit["title"] and SECRET not in (commit["message"] or "")
        if "README.md" in commit["files"]:
            card = hub.read_file(REPO, "README.md", revision=commit["oid"]).decode()
            assert SECRET not in card


def test_error_messages_hold_no_token(hub_app, leak_run):
    for what, result in leak_run.items():
        text = result.stdout + result.stderr
        assert SECRET not in text and WRONG not in text, what
    failed = {k: v for k, v in leak_run.items() if k != "status"}
    assert all(r.returncode != 0 for r in failed.values()), {k: r.returncode for k, r in failed.items()}
    assert "401" in leak_run["backup with a wrong token"].stderr
    assert "403" in leak_run["backup to someone else's dataset"].stderr
    assert "503" in leak_run["backup while the Hub is down"].stderr


def test_the_dataset_is_created_private_by_default(hub, hub_app, leak_run):
    assert "HF_DATASET_PRIVATE" not in hub_app.env
    assert hub.is_private(REPO)
    anonymous = httpx.get(f"{hub.endpoint}/api/datasets/{REPO}", timeout=10)
    assert anonymous.status_code in (401, 404)


# ---------------------------------------------------------------- supervisord and the network


def test_supervisord_conf_holds_no_secret():
    text = (ROOT / "supervisord.conf").read_text()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    parser.read_string(text)
    assert "inet_http_server" not in parser.sections()
    assert "username" not in parser["unix_http_server"] and "password" not in parser["unix_http_server"]
    for pattern in (r"hf_[A-Za-z0-9]{8,}", r"(?i)token\s*=", r"(?i)password\s*=", r"(?i)secret\s*=",
                    r"(?i)HF_TOKEN\s*=", r"(?i)ADMIN_PASSWORD\s*="):
        assert not re.search(pattern, text), pattern
    # The web's command strips the token, whatever supervisord's own environment holds.
    assert parser["program:web"]["command"].startswith("env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN ")


def test_control_socket_is_0700(hub_app):
    sock = hub_app.data_dir / "supervisor.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700


def test_files_the_programs_write_are_ours_only(hub_app, leak_run):
    paths = [hub_app.data_dir / name for name in ("reviews.db", "reviews.db-wal", "worker-state.json")]
    paths += [p for p in (hub_app.data_dir / "backups").rglob("*")]
    paths += [p for p in (hub_app.data_dir / "logs").glob("*.log")]
    assert paths
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths
             if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _decode(address: str) -> tuple[str, int]:
    host, port = address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp{,6} print each 32-bit word of the address in host (little-endian) order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw), int(port, 16)


def listening(pid: int) -> set[tuple[str, int]]:
    """The TCP addresses process `pid` listens on, from /proc (no `ss` needed)."""
    inodes = _socket_inodes(pid)
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                found.add(_decode(fields[1]))
    return found


def test_only_the_web_listens_and_only_on_the_configured_address(hub_app):
    assert hub_app.env["GRADIO_SERVER_NAME"] == "127.0.0.1"
    assert listening(hub_app.pid("web")) == {("127.0.0.1", hub_app.port)}
    # supervisord has no inet HTTP server, and the worker serves nothing.
    assert listening(hub_app.proc.pid) == set()
    assert listening(hub_app.pid("worker")) == set()


def test_the_web_cannot_be_reached_on_another_local_address(hub_app):
    # 127.0.0.2 is this machine too (all of 127/8 is loopback): first check that it is reachable at all.
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        probe.listen(1)
        try:
            socket.create_connection(("127.0.0.2", probe.getsockname()[1]), timeout=2).close()
        except OSError as exc:
            pytest.skip(f"127.0.0.2 is not usable here: {exc}")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", hub_app.port), timeout=2).close()


# ---------------------------------------------------------------- the owner's page


def test_without_admin_password_there_is_no_owners_page(hub_app):
    assert "ADMIN_PASSWORD" not in hub_app.env
    with httpx.Client(timeout=10) as client:
        for path in ("/admin", "/admin/", "/admin/config", "/admin/gradio_api/info"):
            assert client.get(hub_app.url + path).status_code == 404, path
        r = request(client, "POST", hub_app.url + "/admin/gradio_api/call/show")
        assert r.status_code in (404, 405), r.text
        # The public API offers only the form's two calls.
        info = client.get(hub_app.url + "/gradio_api/info").json()
        assert set(info["named_endpoints"]) == {"/add_review", "/overview"}


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("security-admin")
    with App(root / "data", env={"ADMIN_PASSWORD": ADMIN_PASSWORD, "GRADIO_TEMP_DIR": str(root / "gradio-tmp")}) as app:
        yield app


def test_owners_page_and_its_api_need_the_login(admin_app):
    r = gradio_api.add_review(admin_app.url, "owner-only-name", 4, "owner-only comment")
    assert r.ok, r.error
    with httpx.Client(timeout=10) as client:
        page = client.get(admin_app.url + "/admin/")
        assert page.status_code == 200 and "owner-only" not in page.text  # the login form, no data
        for method, path in OWNER_ROUTES:
            r = request(client, method, admin_app.url + path)
            expected = 404 if path.endswith("/upload") else 401
            assert r.status_code == expected, (method, path, r.status_code, r.text[:200])
            assert "owner-only" not in r.text
        # The public app's config knows nothing of the owner's components.
        assert "admin-list" not in client.get(admin_app.url + "/config").text


def test_uploads_are_refused(admin_app):
    """The form takes no files; an open upload route would let anyone fill the disk."""
    with httpx.Client(timeout=10) as client:
        for path in ("/gradio_api/upload", "/admin/gradio_api/upload"):
            r = client.post(admin_app.url + path, files={"files": ("a.txt", b"x" * 1000)})
            assert r.status_code == 404, (path, r.status_code)


def test_owners_csv_exports_are_not_served_without_the_login(admin_app):
    """Exports live in the data folder; the public app must refuse them, the owner's needs the login."""
    folder = admin_app.data_dir / "owner-exports" / "0123456789abcdef"
    folder.mkdir(parents=True, exist_ok=True)
    export = folder / "reviews-20000101-000000.csv"
    export.write_text("id,name\n1,exported-secret-name\n")
    with httpx.Client(timeout=10) as client:
        public = client.get(f"{admin_app.url}/gradio_api/file={export}")
        assert public.status_code in (403, 404) and "exported-secret-name" not in public.text
        owner = client.get(f"{admin_app.url}/admin/gradio_api/file={export}")
        assert owner.status_code == 401 and "exported-secret-name" not in owner.text


def test_owners_login_refuses_wrong_passwords_and_accepts_the_right_one(admin_app):
    wrong = ["", "wrong", ADMIN_PASSWORD.upper(), ADMIN_PASSWORD[:-1], ADMIN_PASSWORD + " ", " " + ADMIN_PASSWORD]
    with httpx.Client(timeout=10) as client:
        for password in wrong:
            r = client.post(admin_app.url + "/admin/login", data={"username": "owner", "password": password})
            assert r.status_code in (400, 401, 422), (password, r.status_code)  # 422: empty field
            assert not any(name.startswith("access-token") for name in client.cookies), password
            assert client.get(admin_app.url + "/admin/config").status_code == 401
    # Those were 5 refusals (the empty one is a 422, not a guess): this address now cools down
    # (tests/test_harden_web.py), so the owner comes from another one (all of 127/8 is loopback).
    with httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as client:
        r = client.post(admin_app.url + "/admin/login", data={"username": "anyone", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        assert client.get(admin_app.url + "/admin/config").status_code == 200
        info = client.get(admin_app.url + "/admin/gradio_api/info")
        assert info.status_code == 200 and info.json()["named_endpoints"] == {}  # nothing offered as an API
    # Refused logins are logged, never with the password; the right one never appears either.
    logs = "\n".join(p.read_text(errors="replace") for p in (admin_app.data_dir / "logs").glob("*.log"))
    assert "owner login refused" in logs
    assert ADMIN_PASSWORD not in logs

