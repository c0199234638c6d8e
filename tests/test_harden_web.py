"""Issue 12, web side: proxies, log escaping, connection floods, the route allowlist, the owner's login.

Real app under supervisord (tests/apprunner.py), real sockets on 127.0.0.1. The
flood is bounded: FLOOD_SOCKETS idle sockets held for a few seconds.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from shared.logs import RepeatFilter, q
from tests import gradio_api
from tests.apprunner import App, wait_until
from tests.async_run import run_async
from web.client_address import client_address
from web.login_throttle import MAX_FAILURES, Failures

ADMIN_PASSWORD = "owner-Harden-pass-789"
FORGED = "9.9.9.9 level=CRITICAL proc=worker.backup forged=yes"
COOLDOWN = 2  # seconds; the default is 300
STREAM_SECONDS = 4
SESSION_IDLE, SESSION_MAX = 6, 14
FLOOD_SOCKETS = 3000
FLOOD_SOURCE = "127.0.0.2"  # all of 127/8 is loopback: the flood has its own address, the form's users another
DRIP_SOURCE = "127.0.0.3"
# A client address no other test of this module sends from (127.0.9.x), so no test depends on which
# ran before it and used up the per-client rate limit of the shared app.
PROBE_SOURCE = "127.0.9.1"


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("peer, header, hops, expected", [
    ("10.0.0.1", [], 0, "10.0.0.1"),
    ("10.0.0.1", ["198.18.0.1, 203.0.113.9"], 0, "10.0.0.1"),            # 0 hops: the header is ignored
    ("10.0.0.1", ["198.18.0.1, 203.0.113.9"], 1, "203.0.113.9"),         # one proxy: the rightmost entry
    ("10.0.0.1", ["anything, at all, 198.18.0.1, 203.0.113.9"], 1, "203.0.113.9"),
    ("10.0.0.1", ["198.18.0.1, 203.0.113.9, 10.0.0.7"], 2, "203.0.113.9"),  # two proxies
    ("10.0.0.1", ["198.18.0.1", "203.0.113.9"], 1, "203.0.113.9"),       # two header lines are one list
    ("10.0.0.1", ["203.0.113.9"], 2, "203.0.113.9"),                     # fewer entries than hops
    ("10.0.0.1", [], 1, "10.0.0.1"),                                      # did not come through the proxy
    ("10.0.0.1", ["203.0.113.9:5678"], 1, "203.0.113.9"),
    ("10.0.0.1", ["[2001:db8::1]:443"], 1, "2001:db8::1"),
])
def test_client_address_counts_hops_from_the_right(peer, header, hops, expected):
    assert client_address(peer, header, hops) == expected


def test_nothing_left_of_the_trusted_hop_changes_the_key():
    keys = {client_address("10.0.0.1", [f"198.18.0.{i}, {'x' * i}, 203.0.113.9"], 1) for i in range(50)}
    assert keys == {"203.0.113.9"}


@pytest.mark.parametrize("value, expected", [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8::1", "2001:db8::1"),
    (FORGED, '"' + FORGED + '"'),
    ("a\nlevel=CRITICAL", '"a\\nlevel=CRITICAL"'),
    ('x" y=1', '"x\\" y=1"'),
    ("", '""'),
])
def test_q_keeps_request_values_one_field(value, expected):
    assert q(value) == expected


def test_repeat_filter_lets_a_burst_through_then_counts(caplog):
    now = [0.0]
    filt = RepeatFilter(window=60, burst=3, clock=lambda: now[0])
    record = lambda: logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept failed %s", ("x",), None)  # noqa: E731
    passed = [filt.filter(record()) for _ in range(100)]
    assert passed.count(True) == 3
    now[0] = 61
    later = record()
    assert filt.filter(later) and "suppressed_repeats=97" in later.getMessage()
    other = logging.LogRecord("web.login", logging.WARNING, __file__, 1, "owner login refused client=%s", ("a",), None)
    assert filt.filter(other)  # another message is never held back by the flood


def test_login_failures_cool_down_then_clear():
    now = [0.0]
    failures = Failures(cooldown=300, clock=lambda: now[0])
    for i in range(MAX_FAILURES - 1):
        assert failures.attempt("a") == (0.0, i + 1, False)
    assert failures.blocked_for("a") == 0
    assert failures.attempt("a") == (0.0, MAX_FAILURES, True)  # counted as it goes in: still checked
    assert failures.blocked_for("a") == 300 and failures.blocked_for("b") == 0
    assert failures.attempt("a")[0] == 300  # the next one is refused unchecked
    now[0] = 301
    assert failures.blocked_for("a") == 0 and failures.attempt("a") == (0.0, 1, False)
    failures.succeeded("a")
    assert failures.attempt("a") == (0.0, 1, False)
    # An attempt that never reached the check (an empty form: 422) is given back, even the fifth.
    for _ in range(MAX_FAILURES - 1):
        failures.attempt("c")
    assert failures.attempt("c")[2] and failures.blocked_for("c") > 0
    failures.not_checked("c")
    assert failures.blocked_for("c") == 0 and failures.attempt("c") == (0.0, MAX_FAILURES, True)


# ---------------------------------------------------------------- behind one proxy


@pytest.fixture(scope="module")
def proxy_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-proxy")
    env = {"FEEDBACK_TRUSTED_PROXY_HOPS": "1", "FEEDBACK_RATE_LIMIT_PER_MINUTE": "5",
           "ADMIN_PASSWORD": ADMIN_PASSWORD, "FEEDBACK_LOGIN_COOLDOWN_SECONDS": str(COOLDOWN),
           "FORWARDED_ALLOW_IPS": "*",  # the old advice: must no longer let uvicorn pick the leftmost entry
           "GRADIO_TEMP_DIR": str(root / "gradio-tmp"),
           # Short limits, so the tests below can watch them end (defaults: 300 s, 30 min, 12 h).
           "FEEDBACK_STREAM_MAX_SECONDS": str(STREAM_SECONDS),
           "FEEDBACK_OWNER_SESSION_IDLE_SECONDS": str(SESSION_IDLE), "FEEDBACK_OWNER_SESSION_MAX_SECONDS": str(SESSION_MAX)}
    with App(root / "data", env=env) as app:
        yield app


def submit_as(app: App, forwarded: str, tag: str) -> gradio_api.CallResult:
    with httpx.Client(timeout=30, headers={"x-forwarded-for": forwarded}) as client:
        return gradio_api.add_review(app.url, "proxy", 4, tag, client=client)


def stored_comments(app: App, prefix: str) -> list[str]:
    import sqlite3
    conn = sqlite3.connect(f"file:{app.data_dir / 'reviews.db'}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT comments FROM reviews WHERE comments LIKE ?", (prefix + "%",))]
    finally:
        conn.close()


def test_forged_left_entries_do_not_escape_the_rate_limit(proxy_app):
    results = [submit_as(proxy_app, f"198.18.0.{i}, 203.0.113.9", f"xff-left-{i}") for i in range(8)]
    assert [r.ok for r in results] == [True] * 5 + [False] * 3
    assert all("Too many reviews" in r.error for r in results[5:])
    assert len(stored_comments(proxy_app, "xff-left-")) == 5
    # Another address given by the proxy is another client.
    assert submit_as(proxy_app, "198.18.0.1, 203.0.113.10", "xff-other").ok


def test_a_forged_address_is_one_quoted_value_in_the_log(proxy_app):
    for i in range(6):  # the sixth is rate limited, and logged with the client's address
        submit_as(proxy_app, FORGED, f"forged-{i}")
    with httpx.Client(timeout=10, headers={"x-forwarded-for": FORGED}) as client:
        client.post(proxy_app.url + "/admin/login", data={"username": FORGED, "password": "wrong-forged"})
    def both_logged():
        text = proxy_app.log("web")
        return text if "owner login refused" in text and "rate limited" in text else None
    log = wait_until(both_logged, 20, 0.2, "the log lines")
    lines = [line for line in log.splitlines() if "9.9.9.9" in line]
    assert len(lines) >= 2, log[-2000:]
    for line in lines:
        fields = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]*)', line)  # logfmt: key=bare or key="quoted"
        keys = [k for k, _ in fields]
        assert keys.count("level") == 1 and keys.count("proc") == 1 and "forged" not in keys, line
        assert dict(fields)["level"] in ("INFO", "WARNING") and dict(fields)["proc"].startswith("web"), line
        assert dict(fields)["client"] == f'"{FORGED}"', line
    assert not re.search(r"^\S+ level=CRITICAL", log, re.M)
    assert "wrong-forged" not in log


def test_owner_login_is_throttled_per_client_and_the_owner_gets_in_after_the_cool_down(proxy_app):
    attacker = {"x-forwarded-for": "203.0.113.66"}
    with httpx.Client(timeout=10, headers=attacker) as client:
        codes = [client.post(proxy_app.url + "/admin/login",
                             data={"username": "o", "password": f"guess-{i}"}).status_code for i in range(MAX_FAILURES)]
        assert codes == [400] * MAX_FAILURES
        refused = client.post(proxy_app.url + "/admin/login", data={"username": "o", "password": ADMIN_PASSWORD})
        assert refused.status_code == 429  # even the right password: not checked during the cool-down
        assert "Too many wrong passwords" in refused.json()["detail"] and refused.headers["retry-after"]
        assert not any(name.startswith("access-token") for name in client.cookies)
    # A forged entry on the left does not start a fresh count; another client is not affected.
    with httpx.Client(timeout=10, headers={"x-forwarded-for": "198.18.0.99, 203.0.113.66"}) as client:
        assert client.post(proxy_app.url + "/admin/login", data={"username": "o", "password": "x"}).status_code == 429
    with httpx.Client(timeout=10, headers={"x-forwarded-for": "203.0.113.67"}) as client:
        assert client.post(proxy_app.url + "/admin/login", data={"username": "o", "password": "x"}).status_code == 400
    time.sleep(COOLDOWN + 0.5)  # the cool-down itself (a wait, not a timing assertion)
    with httpx.Client(timeout=10, headers=attacker) as client:
        ok = client.post(proxy_app.url + "/admin/login", data={"username": "owner", "password": ADMIN_PASSWORD})
        assert ok.status_code == 200
        assert client.get(proxy_app.url + "/admin/config").status_code == 200
    # The last line is written by supervisord after the answer we just read: wait for it.
    log = wait_until(lambda: (lambda text: text if "owner login accepted" in text else "")(proxy_app.log("web")),
                     20, 0.2, "the accepted-login line")
    assert "owner login refused client=203.0.113.66 reason=wrong_password" in log
    assert "owner login refused client=203.0.113.66 reason=cool_down" in log
    assert "owner login accepted client=203.0.113.66" in log
    everything = "\n".join(p.read_text(errors="replace") for p in (proxy_app.data_dir / "logs").glob("*.log*"))
    assert ADMIN_PASSWORD not in everything and "guess-1" not in everything


OPEN_OWNER_ROUTES = [  # answered by Gradio without the login before issue 12
    ("GET", "/admin/gradio_api/heartbeat/probe"),
    ("GET", "/admin/gradio_api/startup-events"),
    ("GET", "/admin/gradio_api/app_id"),
    ("GET", "/admin/manifest.json"),
    ("GET", "/admin/openapi.json"),
    ("GET", "/admin/gradio_api/token"),
    ("POST", "/admin/gradio_api/reset"),
    ("GET", "/admin/config"),
    ("GET", "/admin/gradio_api/info"),
]


def test_every_owner_route_but_the_login_form_needs_the_login(proxy_app):
    with httpx.Client(timeout=10, headers={"x-forwarded-for": "203.0.113.80"}) as client:
        for method, path in OPEN_OWNER_ROUTES:
            r = client.request(method, proxy_app.url + path, json={"session_hash": "probe", "fn_index": 0})
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        login_page = client.get(proxy_app.url + "/admin/")
        assert login_page.status_code == 200  # the login form itself, which states the throttle up front
        assert "logins from your address are refused for 1 minute(s)" in login_page.text
        r = client.post(proxy_app.url + "/admin/login", data={"username": "owner", "password": ADMIN_PASSWORD})
        assert r.status_code == 200
        # Gradio sets Path=/; narrowed so the public app never receives the owner's cookie.
        cookies = r.headers.get_list("set-cookie")
        assert cookies and all("Path=/admin;" in c or c.endswith("Path=/admin") for c in cookies), cookies
        assert client.get(proxy_app.url + "/admin/gradio_api/app_id").status_code == 200
        assert client.get(proxy_app.url + "/admin/config").status_code == 200
        # Uploads stay refused even with the login.
        r = client.post(proxy_app.url + "/admin/gradio_api/upload", files={"files": ("a.txt", b"x")})
        assert r.status_code == 404


def test_the_public_app_answers_only_the_forms_routes(proxy_app):
    temp = Path(proxy_app.env["GRADIO_TEMP_DIR"])
    temp.mkdir(parents=True, exist_ok=True)
    planted = temp / "planted.txt"
    planted.write_text("planted-temp-file")
    before = {p for p in temp.rglob("*")}
    with httpx.Client(timeout=10) as client:
        refused = [
            client.post(proxy_app.url + "/gradio_api/process_recording",
                        files={"audio": ("a.wav", b"RIFF" + b"\0" * 2000, "audio/wav")}),
            client.post(proxy_app.url + "/gradio_api/upload", files={"files": ("a.txt", b"x" * 100)}),
            client.get(f"{proxy_app.url}/gradio_api/file={planted}"),
            client.get(f"{proxy_app.url}/file={planted}"),
            client.post(proxy_app.url + "/gradio_api/run/add_review", json={"data": ["n", 3, "c"]}),
            client.post(proxy_app.url + "/gradio_api/api/add_review", json={"data": ["n", 3, "c"]}),
            client.get(proxy_app.url + "/gradio_api/startup-events"),
            client.get(proxy_app.url + "/monitoring"),
            client.get(proxy_app.url + "/gradio_api/upload_progress?upload_id=x"),
            client.post(proxy_app.url + "/gradio_api/stream/x"),
            client.get(proxy_app.url + "/openapi.json"),
            client.get(proxy_app.url + "/docs"),
            client.post(proxy_app.url + "/gradio_api/call/other", json={"data": []}),
            client.delete(proxy_app.url + "/"),
        ]
        assert [r.status_code for r in refused] == [404] * len(refused), [(r.url.path, r.status_code) for r in refused]
        assert all("planted-temp-file" not in r.text for r in refused)
        assert {p for p in temp.rglob("*")} == before  # nothing was written to Gradio's temp folder
        # What the form uses still answers.
        for path in ("/", "/config", "/gradio_api/info", "/theme.css"):
            assert client.get(proxy_app.url + path).status_code == 200, path
        assert gradio_api.overview(proxy_app.url, client=client).ok


def test_the_api_describes_the_rating_as_the_integers_it_accepts(proxy_app):
    info = httpx.get(proxy_app.url + "/gradio_api/info", timeout=10).json()
    rating = info["named_endpoints"]["/add_review"]["parameters"][1]
    assert rating["type"]["type"] == "integer" and rating["python_type"]["type"] == "int"
    assert (rating["type"]["minimum"], rating["type"]["maximum"]) == (1, 5)
    assert submit_as(proxy_app, "203.0.113.90", "api-int").ok  # what the description says is accepted


def test_too_few_inputs_are_refused_without_the_values_in_any_log(proxy_app):
    marker = "review-text-that-must-not-be-logged-4711"
    with httpx.Client(timeout=30, headers={"x-forwarded-for": "203.0.113.91"}) as client:
        r = gradio_api.call(proxy_app.url, "add_review", [marker, 3], client=client)
    assert not r.ok and "needs 3 inputs" in r.error and marker not in r.error
    assert submit_as(proxy_app, "203.0.113.91", "after-short-call").ok  # the web is fine
    logs = "\n".join(p.read_text(errors="replace") for p in (proxy_app.data_dir / "logs").glob("*.log*"))
    assert marker not in logs


def test_the_worker_does_not_hold_the_owners_password(proxy_app):
    web = Path(f"/proc/{proxy_app.pid('web')}/environ").read_bytes()
    assert ADMIN_PASSWORD.encode() in web  # the web does need it: the check below means something
    worker = Path(f"/proc/{proxy_app.pid('worker')}/environ").read_bytes()
    names = {item.split(b"=", 1)[0] for item in worker.split(b"\0") if item}
    assert b"ADMIN_PASSWORD" not in names and ADMIN_PASSWORD.encode() not in worker


# ---------------------------------------------------------------- no proxy: a connection flood


@pytest.fixture(scope="module")
def direct_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-direct")
    env = {"FEEDBACK_RATE_LIMIT_PER_MINUTE": "5", "ADMIN_PASSWORD": ADMIN_PASSWORD}
    with App(root / "data", env=env) as app:
        yield app


def test_without_a_proxy_x_forwarded_for_is_ignored(direct_app):
    results = []
    for i in range(7):
        with httpx.Client(timeout=30, headers={"x-forwarded-for": f"198.18.1.{i}"}) as client:
            results.append(gradio_api.add_review(direct_app.url, "direct", 3, f"direct-{i}", client=client).ok)
    assert results == [True] * 5 + [False] * 2
    # supervisord copies the web's output to the log file on its own schedule: wait for the line.
    wait_until(lambda: "rate limited client=127.0.0.1" in direct_app.log("web"), 20, 0.2, "the rate-limit log line")


def _loopback_source_usable() -> bool:
    try:
        with socket.socket() as probe, socket.socket() as s:
            probe.bind(("127.0.0.1", 0))
            probe.listen(1)
            s.bind((FLOOD_SOURCE, 0))
            s.settimeout(2)
            s.connect(probe.getsockname())
        return True
    except OSError:
        return False


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        sock.recv(4096, socket.MSG_DONTWAIT)  # b"": closed; data: the 503, which the server sends with its close
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _sockets_from(pid: int, source: str) -> int:
    """How many of the process's TCP sockets have `source` as their peer.

    Counted by socket, not by open files: a submit may start a new worker thread in the web,
    which opens its own database connection (three files) and keeps it, so the open-file
    count need not return to what it was once the flood is gone."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while we looked
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    peer = socket.inet_aton(source)[::-1].hex().upper()  # /proc/net/tcp: host byte order (little-endian)
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[2].split(":")[0] == peer and row[9] in inodes)


def test_a_connection_flood_neither_stops_the_form_nor_floods_the_log(direct_app):
    if not _loopback_source_usable():
        pytest.skip(f"cannot connect from {FLOOD_SOURCE} here")
    # An earlier line an attacker would want gone: a refused owner login.
    with httpx.Client(timeout=10) as client:
        assert client.post(direct_app.url + "/admin/login", data={"username": "o", "password": "x"}).status_code == 400
    wait_until(lambda: "owner login refused" in direct_app.log("web"), 10, 0.1, "the refused login line")
    web_pid = direct_app.pid("web")
    fds_before = _open_fds(web_pid)
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD_SOCKETS):
            s = socket.socket()
            s.bind((FLOOD_SOURCE, 0))
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", direct_app.port))
            assert err in (0, errno.EINPROGRESS), err
            flood.append(s)
        # One slow client dripping header bytes (slowloris): the deadline is not reset by data.
        drip = socket.create_connection(("127.0.0.1", direct_app.port), timeout=5, source_address=(DRIP_SOURCE, 0))
        drip.sendall(b"GET / HTTP/1.1\r\n")
        # While the flood holds its sockets, other clients are answered (from an address of their own).
        with httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=PROBE_SOURCE)) as client:
            assert client.get(direct_app.url + "/").status_code == 200
            r = gradio_api.add_review(direct_app.url, "during the flood", 5, "flood-survivor", client=client)
            assert r.ok, r.error
        # The web holds at most the per-client cap of the flood's sockets, far below the open-file limit.
        assert _open_fds(web_pid) < fds_before + 128 + 64
        drip.setblocking(False)
        try:
            for _ in range(3):
                drip.sendall(b"X-Drip: 1\r\n")
                time.sleep(1)
        except OSError:
            pass  # closed by the server already: what we want
        # Every socket the web accepted is closed again: refused at once, or at the request deadline.
        # (Sockets the kernel never handed to the web, its accept queue being full, cost it nothing.)
        wait_until(lambda: _sockets_from(web_pid, FLOOD_SOURCE) + _sockets_from(web_pid, DRIP_SOURCE) == 0,
                   60, 0.5, "the web to close the flood's sockets")
        wait_until(lambda: _closed_by_peer(drip), 30, 0.5, "the server to close the slow client")
        drip.close()
    finally:
        for s in flood:
            s.close()
    assert "flood-survivor" in stored_comments(direct_app, "flood-")
    logs = direct_app.data_dir / "logs"
    assert not list(logs.glob("web.log.*")) and not list(logs.glob("web.err.log.*"))  # nothing rotated
    web_log = direct_app.log("web")
    assert "owner login refused client=127.0.0.1" in web_log  # the earlier line survived
    assert len(web_log) < 100_000 and (logs / "web.err.log").stat().st_size < 100_000
    assert web_log.count("connection refused") <= 10, web_log[-3000:]


def test_connection_caps_stay_under_the_open_file_limit():
    from web.connections import FD_RESERVE, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, connection_limits

    assert connection_limits(20_000) == (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT)
    total, per_client = connection_limits(1024)  # a common default soft limit
    assert total == 1024 - FD_RESERVE and per_client <= total
    assert connection_limits(100) == (16, 16)  # never zero, even on a tiny limit


def test_oversized_headers_are_refused_and_the_form_stays_up(direct_app):
    with socket.create_connection(("127.0.0.1", direct_app.port), timeout=10,
                                  source_address=("127.0.0.1", 0)) as s:
        # In two parts: h11's cap is on what it buffers while the headers are incomplete.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        time.sleep(0.5)
        try:
            s.sendall(b"\r\n\r\n")
        except OSError:
            pass  # closed already
        reply = s.recv(200)
    assert reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")) or reply == b"", reply
    assert httpx.get(direct_app.url + "/", timeout=10).status_code == 200


# ---------------------------------------------------------------- round three: streams, heads, logins, logs


def _open_stream(app: App, path: str, forwarded: str | None = None, source: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """A raw GET of an event stream; returns the socket (left open) and its status line."""
    s = socket.create_connection(("127.0.0.1", app.port), timeout=10, source_address=(source, 0))
    extra = f"X-Forwarded-For: {forwarded}\r\n" if forwarded else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    head = s.recv(4096)
    _first_bytes[s.fileno()] = head  # the status line and whatever came with it
    return s, head.split(b"\r\n", 1)[0]


_first_bytes: dict[int, bytes] = {}


def test_streams_are_capped_per_client_behind_a_proxy_and_others_still_get_in(proxy_app):
    from web.streams import MAX_STREAMS_PER_CLIENT

    held = []
    try:
        # All from the proxy's socket (127.0.0.1); the client is the address the proxy appended.
        statuses = []
        for i in range(MAX_STREAMS_PER_CLIENT + 8):
            s, status = _open_stream(proxy_app, f"/gradio_api/heartbeat/cap{i}", "198.18.9.9, 203.0.113.50")
            held.append(s)
            statuses.append(status)
        assert statuses.count(b"HTTP/1.1 200 OK") == MAX_STREAMS_PER_CLIENT, statuses
        assert statuses[MAX_STREAMS_PER_CLIENT:] == [b"HTTP/1.1 503 Service Unavailable"] * 8
        # Another visitor behind the same proxy: a stream of their own, and the form.
        s, status = _open_stream(proxy_app, "/gradio_api/heartbeat/other", "203.0.113.51")
        held.append(s)
        assert status == b"HTTP/1.1 200 OK"
        with httpx.Client(timeout=10, headers={"x-forwarded-for": "203.0.113.51"}) as client:
            assert client.get(proxy_app.url + "/config").status_code == 200
    finally:
        for s in held:
            s.close()
    # Closed streams give their slots back.
    wait_until(lambda: _open_stream(proxy_app, "/gradio_api/heartbeat/again", "203.0.113.50")[1]
               == b"HTTP/1.1 200 OK", 20, 0.5, "the client's streams to be released")


def test_a_stream_ends_at_its_lifetime(proxy_app):
    started = time.monotonic()
    s, status = _open_stream(proxy_app, "/gradio_api/heartbeat/lifetime", "203.0.113.52")
    try:
        assert status == b"HTTP/1.1 200 OK"
        s.settimeout(2)
        received = _first_bytes[s.fileno()]
        ended = False
        while not ended and time.monotonic() - started < STREAM_SECONDS + 15:
            try:  # a chunked body: ends with the zero-length chunk, then the server may close
                chunk = s.recv(4096)
            except TimeoutError:
                continue  # nothing yet (a heartbeat writes every 15 s): keep waiting until the bound
            received += chunk
            ended = not chunk or received.endswith(b"0\r\n\r\n")
        assert ended, f"still streaming after {STREAM_SECONDS + 15} s"
        assert b"ALIVE" in received
    finally:
        s.close()


def test_the_stream_cap_counts_every_client_in_total():
    """StreamLimit alone, in-process (the total of 500 is measured by bench/stream_slots.py)."""
    import asyncio

    from web.streams import StreamLimit

    async def endless(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(3600)

    async def scenario():
        limit = StreamLimit(endless, per_client=2, total=3, lifetime=60)
        statuses: list[int] = []

        async def one(client):
            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
            scope = {"type": "http", "method": "GET", "path": "/gradio_api/heartbeat/x", "client": (client, 1)}
            await limit(scope, None, send)

        tasks = [asyncio.create_task(one(c)) for c in ("a", "a", "a", "b", "c", "d")]
        await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return statuses, limit.open_total

    statuses, left = run_async(scenario())
    assert sorted(statuses) == [200, 200, 200, 503, 503, 503] and left == 0


def test_parallel_logins_from_one_address_are_checked_at_most_max_failures_times(proxy_app):
    import threading

    n = 60
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def guess(i):
        with httpx.Client(timeout=60, headers={"x-forwarded-for": "203.0.113.70"}) as client:
            barrier.wait()
            codes.append(client.post(proxy_app.url + "/admin/login",
                                     data={"username": "o", "password": f"parallel-{i}"}).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(codes) == n
    assert codes.count(400) <= MAX_FAILURES and codes.count(429) >= n - MAX_FAILURES, sorted(codes)


def test_refused_logins_from_every_address_are_logged_whatever_one_address_floods(proxy_app):
    def login(address, i):
        with httpx.Client(timeout=10, headers={"x-forwarded-for": address}) as client:
            return client.post(proxy_app.url + "/admin/login", data={"username": "o", "password": f"w{i}"})

    for i in range(MAX_FAILURES + 5):  # one address: its refusals, then its cool-down refusals
        login("203.0.113.80", i)
    others = [f"203.0.113.{81 + i}" for i in range(8)]
    for i, address in enumerate(others):
        assert login(address, i).status_code == 400
    text = wait_until(lambda: (lambda t: t if f"client={others[-1]} reason=wrong_password" in t else "")(
        proxy_app.log("web")), 20, 0.2, "the last address's refusal line")
    for address in others:
        assert f"owner login refused client={address} reason=wrong_password" in text, address


def test_the_owner_session_expires_when_idle_and_after_its_maximum(proxy_app):
    headers = {"x-forwarded-for": "203.0.113.90"}
    with httpx.Client(timeout=10, headers=headers) as client:
        assert client.post(proxy_app.url + "/admin/login",
                           data={"username": "owner", "password": ADMIN_PASSWORD}).status_code == 200
        assert client.get(proxy_app.url + "/admin/config").status_code == 200
        time.sleep(SESSION_IDLE + 1)  # idle past the limit (a wait, not a timing assertion)
        assert client.get(proxy_app.url + "/admin/config").status_code == 401
        assert client.get(proxy_app.url + "/admin/gradio_api/app_id").status_code == 401
    with httpx.Client(timeout=10, headers=headers) as client:
        assert client.post(proxy_app.url + "/admin/login",
                           data={"username": "owner", "password": ADMIN_PASSWORD}).status_code == 200
        started = time.monotonic()
        codes = []
        while time.monotonic() - started < SESSION_MAX + 3:  # in use every second: never idle
            codes.append(client.get(proxy_app.url + "/admin/config").status_code)
            time.sleep(1)
        assert codes[0] == 200 and codes[-1] == 401 and 401 not in codes[:len(codes) // 2], codes
    log = wait_until(lambda: (lambda t: t if "reason=max" in t else "")(proxy_app.log("web")), 20, 0.2, "expiry lines")
    assert "owner session expired reason=idle" in log


def test_logout_is_a_post_from_the_owners_page_only(proxy_app):
    with httpx.Client(timeout=10, headers={"x-forwarded-for": "203.0.113.91"}) as client:
        assert client.post(proxy_app.url + "/admin/login",
                           data={"username": "owner", "password": ADMIN_PASSWORD}).status_code == 200
        get = client.get(proxy_app.url + "/admin/logout", follow_redirects=False)
        assert get.status_code == 405 and get.headers["allow"] == "POST"
        foreign = client.post(proxy_app.url + "/admin/logout", headers={"sec-fetch-site": "cross-site"},
                              follow_redirects=False)
        assert foreign.status_code == 403
        assert client.get(proxy_app.url + "/admin/config").status_code == 200  # still logged in
        own = client.post(proxy_app.url + "/admin/logout", headers={"sec-fetch-site": "same-origin"},
                          follow_redirects=False)
        assert own.status_code in (302, 307), own.status_code
        assert client.get(proxy_app.url + "/admin/config").status_code == 401


def test_a_drip_fed_body_is_closed(direct_app):
    import select

    from web.connections import REQUEST_BODY_TIMEOUT_SECONDS, REQUEST_HEADER_TIMEOUT_SECONDS

    s = socket.create_connection(("127.0.0.1", direct_app.port), timeout=60, source_address=("127.0.0.7", 0))
    try:
        s.sendall(b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 200000\r\n\r\n")
        started = time.monotonic()
        limit = REQUEST_HEADER_TIMEOUT_SECONDS + REQUEST_BODY_TIMEOUT_SECONDS + 10
        closed = False
        while not closed and time.monotonic() - started < limit:
            try:
                s.sendall(b"a")  # one byte a second: the body never completes
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if select.select([s], [], [], 0)[0]:
                try:
                    closed = s.recv(4096) == b""  # the server's FIN (it sends no answer)
                except ConnectionResetError:
                    closed = True
            time.sleep(1)
        assert closed, f"still open after {limit} s"
    finally:
        s.close()


def _raw_reply(app: App, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", app.port), timeout=10, source_address=("127.0.0.8", 0)) as s:
        s.sendall(payload)
        return s.recv(200)


def test_request_heads_are_strict_however_they_arrive(direct_app):
    big = _raw_reply(direct_app, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 120_000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 431"), big  # in one write: h11's own cap missed it
    bare_lf = _raw_reply(direct_app, b"GET / HTTP/1.1\nHost: x\n\n")
    assert bare_lf.startswith(b"HTTP/1.1 400"), bare_lf
    mixed = _raw_reply(direct_app, b"GET / HTTP/1.1\r\nHost: x\nX-Other: y\r\n\r\n")
    assert mixed.startswith(b"HTTP/1.1 400"), mixed
    both = _raw_reply(direct_app, b"POST /gradio_api/call/overview HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert both.startswith(b"HTTP/1.1 400"), both
    fine = _raw_reply(direct_app, b"GET /config HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 8000 + b"\r\n\r\n")
    assert fine.startswith(b"HTTP/1.1 200"), fine


def test_anonymous_requests_that_make_gradio_raise_cost_one_line_each(direct_app):
    with httpx.Client(timeout=10) as client:
        client.get(direct_app.url + "/gradio_api/queue/data", params={"session_hash": "no-such-session"})
        client.get(direct_app.url + "/gradio_api/call/overview/no-such-event")
        assert client.get(direct_app.url + "/").status_code == 200
    text = wait_until(lambda: (lambda t: t if "no-such-event" in t else "")(direct_app.log("web")), 20, 0.2,
                      "the error lines")
    lines = [line for line in text.splitlines() if "request failed" in line]
    assert len([line for line in lines if "/gradio_api/queue/data" in line]) == 1, lines
    assert len([line for line in lines if "no-such-event" in line]) == 1, lines
    everything = text + direct_app.log("web.err")
    assert "Traceback" not in everything and "Exception in ASGI application" not in everything


def test_the_root_url_comes_from_the_configuration_not_the_request(direct_app):
    forged = {"host": "evil.example", "x-forwarded-host": "evil2.example", "x-forwarded-proto": "https",
              "x-gradio-server": "http://evil3.example"}
    with httpx.Client(timeout=10, headers=forged) as client:
        config = client.get(direct_app.url + "/config")
        page = client.get(direct_app.url + "/")
        info = client.get(direct_app.url + "/gradio_api/info")
    assert config.json()["root"] == direct_app.url  # FEEDBACK_PUBLIC_URL's default: where the form listens
    for r in (config, page, info):
        assert r.status_code == 200 and "evil" not in r.text, r.url
