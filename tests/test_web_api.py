"""The form's rules through the HTTP API, no browser: the real app under supervisord.

test_browser.py checks the same rules on the page; when one fails and not the
other, the difference says which layer broke.
"""

from __future__ import annotations

import json

import httpx
import pytest

from shared.config import DEFAULT_MAX_REQUEST_BYTES
from shared.db import connect
from shared.reviews import MAX_COMMENTS_CHARS, MAX_NAME_CHARS
from tests import gradio_api
from web.display_text import without_bidi_controls
from tests.apprunner import App

PASSWORD = "owner password for the API tests"
RATE_LIMIT = 3
HOSTILE = [
    ("<script>alert(1)</script>", '<img src=x onerror="window.__pwned=1"> [x](javascript:alert(1)) **b** <a href=//e>'),
    ("=HYPERLINK(\"http://evil\")", "@SUM(1)\n-2\t+3\r\nline two"),
    ("Zoë 🙂 \u202eRTL", "{{7*7}} ${7*7} %s %n ' OR 1=1 -- \\ \" ' `"),
]
OWNER_ROUTES = [
    ("GET", "/admin/config"),
    ("GET", "/admin/gradio_api/info"),
    ("POST", "/admin/gradio_api/queue/join"),
    ("POST", "/admin/gradio_api/call/show"),
    ("GET", "/admin/gradio_api/queue/data?session_hash=probe"),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with App(tmp_path_factory.mktemp("web-api") / "data", env={"ADMIN_PASSWORD": PASSWORD}) as a:
        yield a


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    with App(tmp_path_factory.mktemp("web-api-limited") / "data",
            env={"FEEDBACK_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}) as a:
        yield a


def db_rows(data_dir) -> list[tuple]:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT id, name, rating, comments FROM reviews ORDER BY id").fetchall()
    finally:
        conn.close()


def created_at(data_dir, review_id: int) -> str:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT created_at FROM reviews WHERE id = ?", (review_id,)).fetchone()[0]
    finally:
        conn.close()


def db_count(data_dir) -> int:
    return len(db_rows(data_dir))


def call_raw(base_url: str, body: bytes) -> gradio_api.CallResult:
    """add_review with a body as given: JSON that httpx would not produce (a lone surrogate escape)."""
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{base_url}/gradio_api/call/add_review", content=body,
                        headers={"content-type": "application/json"})
        if r.status_code != 200:
            return gradio_api.CallResult(ok=False, error=r.text, status=r.status_code)
        event = None
        with client.stream("GET", f"{base_url}/gradio_api/call/add_review/{r.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1].strip() or "null")
                    if event == "complete":
                        return gradio_api.CallResult(ok=True, data=payload)
                    return gradio_api.CallResult(ok=False, error=str(payload))
    return gradio_api.CallResult(ok=False, error="stream ended without a result")


# ---------------------------------------------------------------- validation

INVALID = {  # case: (name, rating, comments, what the message says)
    "no rating": ("Nia", None, "x", "Please choose a rating from 1 to 5."),
    "empty rating": ("Nia", "", "x", "choose a rating"),
    "rating 0": ("Nia", 0, "x", "whole number from 1 to 5"),
    "rating 6": ("Nia", 6, "x", "whole number from 1 to 5"),
    "rating 3.5": ("Nia", 3.5, "x", "whole number from 1 to 5"),
    "rating '3'": ("Nia", "3", "x", "whole number from 1 to 5"),
    "rating true": ("Nia", True, "x", "The rating must be a whole number from 1 to 5"),
    "name too long": ("n" * (MAX_NAME_CHARS + 1), 3, "", f"Name is too long: {MAX_NAME_CHARS + 1} characters"),
    "comments too long": ("Nia", 3, "c" * (MAX_COMMENTS_CHARS + 1), "Comments is too long: 5,001 characters"),
    "NUL in name": ("Ni\x00a", 3, "", "Name contains a NUL character"),
    "NUL in comments": ("Nia", 3, "a\x00b", "Comments contains a NUL character"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_is_refused_with_a_message_and_stores_nothing(app, case):
    name, rating, comments, message = INVALID[case]
    before = db_count(app.data_dir)
    r = gradio_api.add_review(app.url, name, rating, comments)
    assert not r.ok and message in (r.error or ""), r
    assert db_count(app.data_dir) == before


def test_unpaired_surrogate_is_refused_and_stores_nothing(app):
    before = db_count(app.data_dir)
    r = call_raw(app.url, b'{"data": ["Nia", 3, "broken \\ud800 text"]}')
    assert not r.ok and "unpaired surrogates" in (r.error or ""), r
    assert db_count(app.data_dir) == before


def test_limits_are_inclusive_and_names_are_trimmed(app):
    longest_name, longest_comments = "n" * MAX_NAME_CHARS, "c" * MAX_COMMENTS_CHARS
    r = gradio_api.add_review(app.url, f"  {longest_name}  ", 5, longest_comments)
    assert r.ok, r.error
    assert db_rows(app.data_dir)[-1][1:] == (longest_name, 5, longest_comments)


# ---------------------------------------------------------------- what is stored and shown


def test_hostile_text_is_stored_and_returned_exactly(app):
    for name, comments in HOSTILE:
        r = gradio_api.add_review(app.url, name, 2, comments)
        assert r.ok, r.error
        review_id = int(r.data[0].split("#")[1].split()[0])
        assert db_rows(app.data_dir)[-1] == (review_id, name.strip(), 2, comments)
        shown, tags = gradio_api.latest_reviews(r.data[4])
        assert tags <= gradio_api.LIST_TAGS, tags  # the text came back as text, not as markup
        top = shown[0]
        assert top.created_at == created_at(app.data_dir, review_id)
        # Shown as sent, but for bidi overrides, which the page drops (web/display_text.py);
        # the database above keeps them.
        assert top.name == without_bidi_controls(name.strip()) and top.comments == without_bidi_controls(comments)
    # The status line (Markdown on the page) never carries the person's text.
    assert r.data[0] == f"Thank you! Your review #{review_id} was saved."


def test_public_overview_shows_only_the_latest_ten(app):
    for i in range(12):
        assert gradio_api.add_review(app.url, f"latest-{i}", 1 + i % 5, "").ok
    latest, total = gradio_api.overview(app.url).data[:2]
    rows, _ = gradio_api.latest_reviews(latest)
    assert len(rows) == 10 and total == db_count(app.data_dir)
    assert [r.name for r in rows] == [f"latest-{i}" for i in range(11, 1, -1)]  # newest first
    assert [r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True)
    # No internal ids on the public page: a review is its time, name, stars and comment.
    assert "latest-11" in latest and not any(f">{i}<" in latest or f'"{i}"' in latest
                                             for i in range(1, db_count(app.data_dir) + 1))


def test_average_and_chart_follow_each_submit(app):
    _, total, average, chart = gradio_api.overview(app.url).data
    counts = {int(rating): n for rating, n in chart["data"]}
    assert sum(counts.values()) == total
    for rating in (5, 5, 1):
        r = gradio_api.add_review(app.url, "", rating, "")
        assert r.ok, r.error
        counts[rating] += 1
        _, total, average, chart = r.data[4:]
        assert {int(k): n for k, n in chart["data"]} == counts and total == sum(counts.values())
        assert average == f"{sum(k * n for k, n in counts.items()) / total:.2f} / 5"


# ---------------------------------------------------------------- abuse limits


def test_rate_limit_refuses_submit_after_the_limit_per_client(limited_app):
    for i in range(RATE_LIMIT):
        r = gradio_api.add_review(limited_app.url, f"fast-{i}", 4, "")
        assert r.ok, r.error
    r = gradio_api.add_review(limited_app.url, "fast-over", 4, "")
    assert not r.ok and f"Too many reviews from you in the last minute (at most {RATE_LIMIT})" in r.error
    assert db_count(limited_app.data_dir) == RATE_LIMIT
    # Another client is not affected: another address (all of 127/8 is loopback). X-Forwarded-For
    # is ignored without FEEDBACK_TRUSTED_PROXY_HOPS (tests/test_harden_web.py covers the proxy rule).
    with httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
        r = gradio_api.add_review(limited_app.url, "other-client", 4, "", client=other)
    assert r.ok, r.error
    assert db_count(limited_app.data_dir) == RATE_LIMIT + 1


def test_request_over_the_size_cap_gets_413_and_the_web_stays_up(app):
    web_pid = app.pid("web")
    before = db_count(app.data_dir)
    big = json.dumps({"data": ["big", 3, "x" * DEFAULT_MAX_REQUEST_BYTES]}).encode()
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{app.url}/gradio_api/call/add_review", content=big,
                        headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text[:200]
        # The same without a Content-Length (chunked): counted as it arrives.
        r = client.post(f"{app.url}/gradio_api/queue/join", content=iter([big[i:i + 65536]
                                                                            for i in range(0, len(big), 65536)]),
                        headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text[:200]
        # Under the cap, an over-long comment reaches validation and gets its own message.
        r2 = gradio_api.add_review(app.url, "n", 3, "y" * (MAX_COMMENTS_CHARS * 2), client=client)
        assert not r2.ok and "Comments is too long" in r2.error
        assert client.get(app.url + "/").status_code == 200
    assert gradio_api.add_review(app.url, "after-413", 3, "still here").ok
    assert app.pid("web") == web_pid and db_count(app.data_dir) == before + 1


# ---------------------------------------------------------------- the owner's page


def test_owner_page_does_not_exist_without_password(limited_app):
    with httpx.Client(timeout=10) as client:
        for path in ("/admin", "/admin/", "/admin/config", "/admin/gradio_api/info"):
            assert client.get(limited_app.url + path).status_code == 404, path


def test_owner_endpoints_refuse_calls_without_the_login(app):
    assert gradio_api.add_review(app.url, "owner-eyes-only", 4, "").ok
    body = {"data": ["", 0], "fn_index": 0, "session_hash": "probe"}
    with httpx.Client(timeout=10) as client:
        assert client.get(app.url + "/admin").status_code == 307  # to /admin/, the login form
        for method, path in OWNER_ROUTES:
            r = client.request(method, app.url + path, json=body if method == "POST" else None)
            assert r.status_code == 401 and "owner-eyes-only" not in r.text, (method, path, r.status_code)
        r = client.post(app.url + "/admin/login", data={"username": "owner", "password": PASSWORD + "x"})
        assert r.status_code == 400 and client.get(app.url + "/admin/config").status_code == 401
        # The public API offers the form's two calls and nothing of the owner's.
        assert set(client.get(app.url + "/gradio_api/info").json()["named_endpoints"]) == {"/add_review", "/overview"}
        # With the login cookie the same routes answer: the 401s above are the login, not a broken route.
        r = client.post(app.url + "/admin/login", data={"username": "anyone", "password": PASSWORD})
        assert r.status_code == 200
        assert client.get(app.url + "/admin/config").status_code == 200
        assert client.get(app.url + "/admin/gradio_api/info").json()["named_endpoints"] == {}
