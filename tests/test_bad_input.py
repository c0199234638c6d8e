"""Hostile input through Gradio's HTTP API, table-driven, against the real app under supervisord.

Every case either gets a clear error and changes nothing, or is stored exactly
as sent (the name trimmed, see shared/reviews.py), comes back as the literal
string in the overview, and reaches the backup CSV guarded against formula
injection (shared.csv_export.guard_cell) and otherwise unchanged.

The bodies are built here with `json.dumps` (ASCII escapes, NaN allowed), not
with httpx's `json=`: that is how a JSON body carries a lone surrogate
("\\ud800" is valid JSON text) or a NaN, which a script can send and the page
never would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shared.config import DEFAULT_MAX_REQUEST_BYTES
from shared.db import connect
from shared.reviews import MAX_COMMENTS_CHARS, MAX_NAME_CHARS
from tests import gradio_api
from tests.apprunner import App, wait_until
from shared.csv_export import guard_cell
from web.display_text import without_bidi_controls

MAX_REQUEST_BYTES = DEFAULT_MAX_REQUEST_BYTES  # the app runs with the default cap
TEN_MB = 10 * 1024 * 1024
RSS_GROWTH_LIMIT_KB = 50 * 1024
SAVED = re.compile(r"review #(\d+) was saved")
RATING_ERROR = r"rating"


@dataclass(frozen=True)
class Case:
    id: str
    data: list | None = None  # the "data" list of the call; None when `body` is given
    expect: str = "stored"  # or "error"
    match: str = ""  # regex the error message must contain (case-insensitive)
    body: bytes | None = None  # a raw request body instead of {"data": data}
    marks: tuple = field(default=())

    def request_body(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps({"data": self.data}).encode("ascii")

    @property
    def received(self) -> list:
        """The data as the server decodes it (an escaped surrogate pair is one emoji there)."""
        return json.loads(self.request_body())["data"]

    @property
    def stored_name(self) -> str:
        name = self.received[0]
        return "" if name is None else name.strip()

    @property
    def stored_comments(self) -> str:
        comments = self.received[2]
        return "" if comments is None else comments


def ok(id, name, comments="", rating=3):
    return Case(id, [name, rating, comments])


def bad(id, name, rating, comments, match):
    return Case(id, [name, rating, comments], "error", match)


CASES = [
    # Ratings: only the whole numbers 1 to 5.
    bad("rating-0", "r", 0, "", RATING_ERROR),
    bad("rating-6", "r", 6, "", RATING_ERROR),
    bad("rating-minus-1", "r", -1, "", RATING_ERROR),
    bad("rating-3.5", "r", 3.5, "", RATING_ERROR),
    bad("rating-3.0-float", "r", 3.0, "", RATING_ERROR),
    bad("rating-string-3", "r", "3", "", RATING_ERROR),
    bad("rating-abc", "r", "abc", "", RATING_ERROR),
    bad("rating-null", "r", None, "", RATING_ERROR),
    bad("rating-empty-string", "r", "", "", RATING_ERROR),
    bad("rating-list", "r", [3], "", RATING_ERROR),
    bad("rating-object", "r", {"value": 3}, "", RATING_ERROR),
    bad("rating-true", "r", True, "", RATING_ERROR),
    bad("rating-huge", "r", 10**30, "", RATING_ERROR),
    Case("rating-nan", body=b'{"data": ["r", NaN, ""]}', expect="error", match=RATING_ERROR),
    Case("rating-missing", ["r", 3], "error", "needs 3 inputs"),
    Case("data-not-a-list", body=b'{"data": {"name": "r", "rating": 3}}', expect="error", match="valid list"),
    Case("body-not-json", body=b'{"data": ["r", 3, "', expect="error", match="JSON decode error"),
    # Lengths: counted in characters, the name after trimming.
    bad("name-101-chars", "n" * (MAX_NAME_CHARS + 1), 3, "", "too long"),
    bad("comments-5001-chars", "c", 3, "x" * (MAX_COMMENTS_CHARS + 1), "too long"),
    bad("comments-too-long-emoji", "c", 3, "\U0001F600" * (MAX_COMMENTS_CHARS + 1), "too long"),
    ok("name-100-chars", "n" * MAX_NAME_CHARS),
    ok("name-100-chars-padded", "   " + "p" * MAX_NAME_CHARS + "\t\n "),
    ok("comments-5000-chars", "max", "x" * MAX_COMMENTS_CHARS),
    ok("name-null-is-anonymous", None, "no name"),
    # Characters that cannot be stored, and some that can.
    bad("nul-in-name", "a\x00b", 3, "", "NUL"),
    bad("nul-in-comments", "a", 3, "before\x00after", "NUL"),
    bad("lone-high-surrogate-name", "\ud800", 3, "", "invalid characters"),
    bad("lone-low-surrogate-comments", "s", 3, "ok \udfff ok", "invalid characters"),
    ok("surrogate-pair-escaped-is-emoji", "pair", "\ud83d\ude00"),
    ok("right-to-left-override", "\u202egnp.exe", "\u202eevil\u202c text \u2067isolate\u2069"),
    ok("emoji-zwj-and-flags", "\U0001F469\u200d\U0001F4BB", "\U0001F44D\U0001F3FD \U0001F1EB\U0001F1F7 \u2764\ufe0f"),
    ok("combining-marks", "Zalgo", "Z\u0335\u0321\u0327a\u0334\u0353l\u0336\u0331g\u0337\u0316o\u0338\u0324 e\u0301"),
    ok("zero-width-and-bom", "\ufeffbom\u200b", "zero\u200bwidth\u200djoiner"),
    ok("unicode-whitespace-trimmed", "\u00a0\u3000name\u2003", "  keeps its spaces  "),
    ok("control-characters", "bell", "\x07\x1b[31mred\x1b[0m\x08\x7f"),
    ok("newlines-kept", "lines", "one\r\ntwo\nthree\rfour"),
    # SQL injection: parameters, never string building.
    ok("sql-drop-table", "Robert'); DROP TABLE reviews;--", "x"),
    ok("sql-or-true", "' OR '1'='1", "\" OR \"\"=\""),
    ok("sql-union", "u", "1 UNION SELECT name, sql FROM sqlite_master --"),
    # HTML, script and Markdown: stored and shown as text.
    ok("html-script", "<script>alert(1)</script>", "<b>bold</b>"),
    ok("html-img-onerror", "img", "<img src=x onerror=alert(document.cookie)>"),
    ok("markdown-link", "md", "**bold** [click](javascript:alert(1)) ![x](http://127.0.0.1/x.png)"),
    ok("html-entities", "&lt;script&gt;", "&amp; &#60;"),
    # CSV formula injection: stored as sent, guarded in the CSV.
    ok("formula-equals", "=1+1", "=SUM(A1:A9)"),
    ok("formula-plus", "+1", "+cmd"),
    ok("formula-minus", "-1", "-2+3"),
    ok("formula-at", "@SUM(A1)", "@x"),
    ok("formula-tab-first", "tab", "\t=1+1"),
    ok("formula-cr-first", "cr", "\r=1+1"),
    ok("formula-hyperlink", "link", '=HYPERLINK("http://127.0.0.1/?leak="&A1,"Click me")'),
    ok("formula-dde", "dde", "=cmd|' /C calc'!A0"),
    # Guarded too: spreadsheet imports may trim the spaces (the rule in shared/csv_export.py).
    ok("formula-after-trim", "  =1+1", " =2+2 after a space"),
    # Not text at all.
    Case("comments-list", ["l", 3, ["x"]], "error", "must be text"),
    Case("name-number", [5, 3, ""], "error", "must be text"),
]


@dataclass
class Outcome:
    status: int
    ok: bool
    error: str
    review_id: int | None
    rows_before: list
    rows_after: list
    total_before: int
    total_after: int
    shown_after: list  # the overview's list of reviews right after the call
    tags_after: set  # every tag in that list (anything beyond LIST_TAGS came from someone's text)


def rows(app: App) -> list[tuple]:
    conn = connect(app.data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT id, created_at, name, rating, comments FROM reviews ORDER BY id").fetchall()
    finally:
        conn.close()


def overview(app: App) -> tuple[list, set, int]:
    """The overview's latest reviews (and the tags of that list) and the total, as any visitor's page gets them."""
    result = gradio_api.overview(app.url)
    assert result.ok, result.error
    shown, tags = gradio_api.latest_reviews(result.data[0])
    return shown, tags, result.data[1]


def send(url: str, body: bytes, client: httpx.Client) -> gradio_api.CallResult:
    """POST a raw body to /gradio_api/call/add_review and read the event stream."""
    return gradio_api.call_raw(url, "add_review", body, client=client)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = App(tmp_path_factory.mktemp("bad-input") / "data",
            env={"FEEDBACK_RATE_LIMIT_PER_MINUTE": "0", "BACKUP_INTERVAL_SECONDS": "1"})
    a.start()
    a.web_pid_at_start = a.pid("web")
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture(scope="module")
def outcomes(app) -> dict[str, Outcome]:
    """Send every case once, in table order, recording the database and the total around each call."""
    results = {}
    with httpx.Client(timeout=30) as client:
        for case in CASES:
            before, (_, _, total_before) = rows(app), overview(app)
            r = send(app.url, case.request_body(), client)
            match = SAVED.search(str(r.data[0])) if r.ok and r.data else None
            shown, tags, total_after = overview(app)
            results[case.id] = Outcome(r.status, r.ok, r.error or "", int(match.group(1)) if match else None,
                                       before, rows(app), total_before, total_after, shown, tags)
    return results


def params(cases):
    return [pytest.param(c, id=c.id, marks=c.marks) for c in cases]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile_input_is_refused_or_stored_exactly(case, outcomes):
    out = outcomes[case.id]
    if case.expect == "error":
        assert not out.ok and out.error, f"accepted: {case.data!r} -> review #{out.review_id}"
        assert re.search(case.match, out.error, re.IGNORECASE), out.error
        assert out.rows_after == out.rows_before
        assert out.total_after == out.total_before
        return
    assert out.ok, out.error
    assert out.review_id is not None
    assert out.total_after == out.total_before + 1
    new = [r for r in out.rows_after if r not in out.rows_before]
    assert len(new) == 1 and new[0][0] == out.review_id
    _, created_at, name, rating, comments = new[0]
    assert (name, rating, comments) == (case.stored_name, case.data[1], case.stored_comments)
    # The overview right after the call shows the literal strings (newest first, so it is on top).
    assert out.tags_after <= gradio_api.LIST_TAGS, out.tags_after
    top = out.shown_after[0]
    assert (top.created_at, top.rating) == (created_at, case.data[1])
    # Shown as stored, less bidi overrides and isolates (web/display_text.py: they would reverse
    # what the reader sees); the database above keeps them exactly.
    assert (top.name, top.comments) == (without_bidi_controls(case.stored_name),
                                        without_bidi_controls(case.stored_comments))


def test_the_list_shows_names_and_comments_as_text(app):
    """The list is in a gr.HTML (`board`: totals, bars, the list) filled with text escaped on the server
    (web/review_list.py); its template inserts nothing but that value, so no prop can carry someone's
    text in unescaped."""
    config = httpx.get(app.url + "/config", timeout=10).json()
    lists = [c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "board"]
    assert len(lists) == 1
    assert lists[0]["html_template"] == "${value}"
    shown, tags, _ = overview(app)
    assert shown and tags <= gradio_api.LIST_TAGS, tags


@pytest.fixture(scope="module")
def backup_csv(app, outcomes) -> tuple[pd.DataFrame, list[tuple]]:
    """The CSV of the first local backup that holds every stored case, and the rows of its db."""
    newest_id = max(o.review_id for o in outcomes.values() if o.review_id is not None)

    def backup():
        manifests = sorted((app.data_dir / "backups").glob("reviews-*.json"))
        info = json.loads(manifests[-1].read_text()) if manifests else {}
        return info if info.get("max_id", 0) >= newest_id else None

    info = wait_until(backup, 30, 0.2, "a local backup with every stored case")
    # A backup is a base db plus a delta db of the reviews above the base (worker/tree.py): both, in id order.
    db_rows = []
    for db_file in (Path(info["location"]), Path(info["location"]).parent / "reviews-delta.db"):
        if not db_file.exists():
            continue
        conn = connect(db_file, readonly=True)
        try:
            db_rows += conn.execute("SELECT id, created_at, name, rating, comments FROM reviews ORDER BY id").fetchall()
        finally:
            conn.close()
    db_rows.sort()
    # The backup's CSV is sharded by id range (worker/tree.py): read every shard, in id order.
    shards = sorted((Path(info["location"]).parent / "csv").glob("reviews-*.csv"))
    assert shards, f"no CSV shard beside {info['location']}"
    frame = pd.concat([pd.read_csv(shard, keep_default_na=False, dtype=str) for shard in shards],
                      ignore_index=True)
    return frame, db_rows


@pytest.mark.parametrize("case", params([c for c in CASES if c.expect == "stored"]))
def test_stored_input_reaches_the_csv_guarded(case, outcomes, backup_csv):
    frame, _ = backup_csv
    out = outcomes[case.id]
    row = frame[frame["id"] == str(out.review_id)]
    assert len(row) == 1
    for column, value in (("name", case.stored_name), ("comments", case.stored_comments)):
        cell = row.iloc[0][column]
        assert cell == guard_cell(value)
        if value.lstrip(" ").startswith(("=", "+", "-", "@")) or value.startswith(("\t", "\r")):
            assert cell == "'" + value  # the rule itself, not only its own implementation


def test_csv_read_back_with_pandas_equals_the_snapshot(backup_csv):
    frame, db_rows = backup_csv
    assert list(frame.columns) == ["id", "created_at", "name", "rating", "comments", "status", "reply", "reply_at"]
    expected = [[str(i), created, guard_cell(name), str(rating), guard_cell(comments), "public", "", ""]
                for i, created, name, rating, comments in db_rows]
    assert frame.values.tolist() == expected


CLOSED = "connection closed"


def post_raw(client: httpx.Client, url: str, body) -> int | str:
    """The status, or CLOSED when the server answered and closed while we were still sending
    (then httpx cannot read the answer: the server refused to read on, which is the point)."""
    try:
        return client.post(url, content=body, headers={"content-type": "application/json"}).status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return CLOSED


def chunked(body: bytes, size: int = 64 * 1024):
    """A generator body: httpx sends it without Content-Length (Transfer-Encoding: chunked)."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


def ten_mb_body(**extra) -> bytes:
    return json.dumps({"data": ["big", 3, "z" * TEN_MB], **extra}).encode()


def test_ten_megabytes_are_refused_at_the_door(app):
    pid = app.pid("web")
    before_rows, before_rss = rows(app), rss_kb(pid)
    with httpx.Client(timeout=60) as client:
        declared = client.post(f"{app.url}/gradio_api/call/add_review", content=ten_mb_body(),
                               headers={"content-type": "application/json"})
        # The page's own path (the queue), as the browser would send a 10 MB comment.
        queued = post_raw(client, f"{app.url}/gradio_api/queue/join",
                          ten_mb_body(fn_index=0, session_hash="bigbig"))
    assert declared.status_code == 413 and "too large" in declared.text.lower(), declared.text[:200]
    assert queued in (413, CLOSED)
    assert app.pid("web") == pid
    assert rss_kb(pid) - before_rss < RSS_GROWTH_LIMIT_KB
    assert rows(app) == before_rows
    r = gradio_api.add_review(app.url, "after the big one", 5, "still here")
    assert r.ok, r.error


def test_ten_megabytes_streamed_without_a_length_are_refused(app):
    """No Content-Length to refuse up front: the middleware must stop reading at the cap."""
    pid = app.pid("web")
    before_rows, before_rss = rows(app), rss_kb(pid)
    with httpx.Client(timeout=60) as client:
        for path in ("/gradio_api/call/add_review", "/gradio_api/queue/join"):
            status = post_raw(client, app.url + path, chunked(ten_mb_body(fn_index=0, session_hash="bigbig")))
            assert status in (413, CLOSED), (path, status)
    assert app.pid("web") == pid
    assert rss_kb(pid) - before_rss < RSS_GROWTH_LIMIT_KB
    assert rows(app) == before_rows


def test_a_streamed_body_over_the_cap_gets_413(app):
    body = json.dumps({"data": ["big", 3, "z" * (MAX_REQUEST_BYTES + 1024)]}).encode()
    with httpx.Client(timeout=30) as client:
        assert post_raw(client, f"{app.url}/gradio_api/call/add_review", chunked(body)) == 413


def test_a_body_just_under_the_cap_gets_the_validation_error(app):
    """Between the form's limits and the body cap, validation answers, not the door."""
    comments = "y" * (MAX_REQUEST_BYTES - 1024)
    r = gradio_api.add_review(app.url, "nearly", 3, comments)
    assert not r.ok and r.status == 200 and "too long" in r.error


def test_the_web_process_stayed_up_throughout(app, outcomes, backup_csv):
    assert app.pid("web") == app.web_pid_at_start
    status = app.ctl("status").stdout
    assert status.count("RUNNING") == 2, status
    assert gradio_api.overview(app.url).ok


def test_refused_input_leaves_no_traceback_in_the_error_log(app):
    """Our refusals (validation, rate limit, storage) are answered, not logged as crashes: a bot
    must not fill web.err.log with them. (Gradio still prints one for a request with too few
    inputs, which it refuses before our handler runs.)"""
    err_log = app.data_dir / "logs" / "web.err.log"
    text = err_log.read_text(errors="replace") if err_log.exists() else ""
    assert "gradio.exceptions.Error" not in text, text[-2000:]
    assert "shared/reviews.py" not in text and "web/app.py" not in text
