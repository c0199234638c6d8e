"""What chromium shows of a name with bidi overrides: never reversed, on the public page or the owner's.

The real app under supervisord, the real browser (tests/browser_fixtures.py). The database
keeps the name exactly as sent; only what is shown drops the overrides (web/display_text.py)."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from tests import gradio_api
from tests.apprunner import App
from tests.browser_support import login, open_form, owner_rows, shown_reviews

ADMIN_PASSWORD = "owner-Bidi-pass-314"
NAME = "\u202eevil.com\u202c"  # shown reversed ("moc.live") where the override is obeyed
COMMENT = "Paid \u2066\u202e0001\u202c\u2069 euros"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-browser")
    with App(root / "data", env={"ADMIN_PASSWORD": ADMIN_PASSWORD}) as running:
        yield running


def test_bidi_overrides_in_names_and_comments_are_not_obeyed_where_shown(app, page):
    assert gradio_api.add_review(app.url, NAME, 1, COMMENT).ok
    open_form(page, app.url)
    expect(page.locator("#latest li.review .who").first).to_have_text("evil.com")
    top = shown_reviews(page)[0]
    assert top["name"] == "evil.com" and top["comments"] == "Paid 0001 euros"
    # Each name and comment is its own bidi island: a right-to-left name cannot reorder the stars or time.
    assert page.locator("#latest li.review .who").first.get_attribute("dir") == "auto"
    assert page.locator("#latest li.review .comment").first.get_attribute("dir") == "auto"
    login(page, app.url, ADMIN_PASSWORD)
    expect(page.locator("#admin-list tr[data-review] .col-name").first).to_have_text("evil.com")
    row = owner_rows(page)[0]
    assert row["name"] == "evil.com" and row["comments"] == "Paid 0001 euros"
    conn = sqlite3.connect(f"file:{app.data_dir / 'reviews.db'}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT name, comments FROM reviews ORDER BY id DESC LIMIT 1").fetchone() == (NAME, COMMENT)
    finally:
        conn.close()
