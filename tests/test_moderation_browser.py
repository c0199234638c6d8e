"""Moderation as the owner and a visitor see it: a real chromium on the real app (supervisord),
pre-moderation on. One app for the module; the steps build on each other in one test."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
from playwright.sync_api import expect

from shared.db import connect
from tests.apprunner import App
from tests.hub_fixtures import HUB_TOKEN, hub_client_env, hub_server  # noqa: F401
from tests.browser_support import PASSWORD, fill_review, login, open_form, status, total

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path, hub_server):  # noqa: F811
    # A Hub target (the tests' server): the owner's page then offers the history rewrite.
    env = {k: v for k, v in hub_client_env(hub_server.endpoint, token=HUB_TOKEN, base={}).items()
           if k.startswith("HF_")}
    env.update({"ADMIN_PASSWORD": PASSWORD, "FEEDBACK_PREMODERATION": "1", "HF_DATASET_REPO": "alice/feedback",
                "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0", "BACKUP_INTERVAL_SECONDS": "3600"})
    with App(tmp_path / "data", env=env) as a:
        yield a


def db(app, sql, *args):
    conn = connect(app.data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def public_texts(page) -> list[str]:
    return page.locator("#latest li.review .comment").all_inner_texts()


def owner_act(owner, button: str, review_id: int, expect_text: str) -> None:
    owner.locator("#mod-ids").get_by_role("textbox").fill(str(review_id))
    owner.locator(f"#{button}").click()
    expect(owner.locator("#mod-result")).to_contain_text(expect_text)


def test_premoderation_approve_hide_reply_and_delete(app, page, browser):
    # A visitor submits: told it waits for approval; the public list and total do not show it.
    open_form(page, app.url)
    fill_review(page, "Vera", 2, "my phone is 0176 5551234, call me")
    page.locator("#submit").click()
    expect(page.locator("#status")).to_contain_text("once the owner has approved it")
    assert "checked before they are published" in status(page)
    review_id = db(app, "SELECT id FROM reviews")[0][0]
    assert db(app, "SELECT status FROM reviews")[0][0] == "pending"
    assert total(page) == 0 and public_texts(page) == []

    owner_context = browser.new_context()
    owner = owner_context.new_page()
    try:
        login(owner, app.url, PASSWORD)
        # The owner's page loads its list, charts and log at once: generous on a busy machine.
        row = owner.locator(f'#admin-list tr[data-review="{review_id}"]')
        expect(row).to_have_attribute("data-status", "pending", timeout=30_000)
        expect(row.locator(".mod-mark")).to_have_text("Waiting for approval")
        expect(owner.locator("#mod-overview")).to_contain_text("1 waiting for approval")
        # The owner asks for the ids and types the one to act on.
        owner.locator("#admin-show-ids").get_by_role("checkbox").check()
        expect(row.locator(".col-id")).to_have_text(str(review_id))
        owner_act(owner, "mod-approve", review_id, "approved")
        expect(row).to_have_attribute("data-status", "public")
        expect(row.locator(".mod-mark")).to_have_count(0)
        expect(row.locator(".col-id")).to_have_text(str(review_id))  # the redraw keeps the ids shown
        open_form(page, app.url)
        assert total(page) == 1 and public_texts(page) == ["my phone is 0176 5551234, call me"]

        # Hide: gone from the public page at once, still on the owner's page, marked.
        owner_act(owner, "mod-hide", review_id, "1 review hidden")
        expect(row).to_have_attribute("data-status", "hidden")
        expect(row.locator(".mod-mark")).to_have_text("Hidden")
        open_form(page, app.url)
        assert total(page) == 0 and public_texts(page) == []
        owner_act(owner, "mod-unhide", review_id, "public again")

        # The owner's reply shows under the review, as the owner's, as text.
        owner.locator("#mod-reply").get_by_role("textbox").fill("We called you back <b>today</b>.")
        owner.locator("#mod-reply-save").click()
        expect(owner.locator("#mod-result")).to_contain_text("Reply saved")
        # The owner's list shows it under the review too, as text.
        expect(row.locator(".owner-reply .reply-text")).to_have_text("We called you back <b>today</b>.")
        open_form(page, app.url)
        expect(page.locator("#latest .reply")).to_contain_text("Reply from the owner")
        expect(page.locator("#latest .reply-text")).to_have_text("We called you back <b>today</b>.")

        # Delete asks first; Cancel changes nothing; the confirmation deletes for good.
        owner.locator("#mod-ids").get_by_role("textbox").fill(str(review_id))
        owner.locator("#mod-delete").click()
        expect(owner.locator("#mod-delete-confirm")).to_be_visible()
        owner.locator("#mod-delete-cancel").click()
        expect(owner.locator("#mod-delete-confirm")).to_be_hidden()
        assert db(app, "SELECT COUNT(*) FROM reviews")[0][0] == 1
        owner.locator("#mod-delete").click()
        owner.locator("#mod-delete-confirm").click()
        expect(owner.locator("#mod-result")).to_contain_text("deleted and erased")
        assert db(app, "SELECT COUNT(*) FROM reviews")[0][0] == 0
        assert db(app, "SELECT review_id FROM tombstones") == [(review_id,)]
        # The log: every action, newest first; the Hub note says where it still exists.
        expect(owner.locator("#mod-log tbody tr").first.locator("td").nth(1)).to_have_text("delete")
        actions = owner.locator("#mod-log").inner_text()
        for action in ("approve", "hide", "unhide", "reply"):
            assert action in actions
        assert "0176" not in actions
        expect(owner.locator("#mod-overview")).to_contain_text("still in the older revisions of the Hub dataset")
        # The history rewrite: a clear warning, a confirmation, a request the worker will act on.
        owner.locator("#mod-history").click()
        owner.locator("#mod-history-confirm").click()
        expect(owner.locator("#mod-result")).to_contain_text("Requested")
        assert db(app, "SELECT COUNT(*) FROM erase_requests WHERE done_at IS NULL")[0][0] == 1
        open_form(page, app.url)
        assert total(page) == 0 and public_texts(page) == []
    finally:
        owner_context.close()
