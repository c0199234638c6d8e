"""Bots kept out (web/bot_guard.py), in a real chromium on the real app: a person typing at
human speed gets through; scripted bots (the hidden field filled, a submit right after the
load, the same text again, a comment full of links) do not, each told what to do, logged and
counted on the owner's page; the API keeps its three inputs. axe stays clean with the hidden field.

One app for the module, with the checks on as shipped (apprunner turns the time and
duplicate checks off for the other suites)."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
from playwright.sync_api import Page, expect

from tests import gradio_api
from tests.apprunner import App, wait_until
from tests.browser_support import PASSWORD, db_count, db_rows, fill_review, form_error, login, open_form, submit_and_wait
from tests.test_accessibility import AXE_JS, axe_violations
from web.bot_guard import TRAP_ELEM_ID

pytestmark = pytest.mark.browser

# Wide enough that the scripted "instant" bot stays under it on a machine at load average 30
# (page load + fill + click took up to ~3 s there), and a person's typing stays over it.
MIN_SECONDS = 6
HUMAN_DELAY_MS = 80  # a quick typist: ~12 characters a second


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    env = {"ADMIN_PASSWORD": PASSWORD, "FEEDBACK_MIN_SUBMIT_SECONDS": str(MIN_SECONDS),
           "FEEDBACK_DUPLICATE_WINDOW_SECONDS": "3600", "FEEDBACK_MAX_LINKS": "2"}
    with App(tmp_path_factory.mktemp("bot-guard") / "data", env=env) as a:
        yield a


def type_review(page: Page, name: str, rating: int, comments: str) -> None:
    """As a person does: click each field and type, key by key."""
    page.locator("#name").get_by_role("textbox").click()
    page.keyboard.type(name, delay=HUMAN_DELAY_MS)
    page.locator("#rating").get_by_role("radio", name=str(rating), exact=True).check()
    page.locator("#comments").get_by_role("textbox").click()
    page.keyboard.type(comments, delay=HUMAN_DELAY_MS)


def refused(page: Page, app: App, before: int, starts: str) -> str:
    page.locator("#submit").click()
    message = form_error(page)
    assert message.startswith(starts), message
    assert db_count(app.data_dir) == before
    return message


def test_a_person_typing_gets_through(app, page):
    open_form(page, app.url)
    comment = "Found what I needed quickly, and the checkout was clear."  # ~60 keys: ~5 s at this speed
    type_review(page, "Ada Lovelace", 4, comment)
    review_id = submit_and_wait(page)
    assert db_rows(app.data_dir)[-1] == (review_id, "Ada Lovelace", 4, comment)
    # The confirmation brings a fresh token: a second review from the same page, later, works too.
    page.wait_for_timeout(MIN_SECONDS * 1000)
    type_review(page, "Ada", 5, "And the second visit was even better.")
    assert submit_and_wait(page) == review_id + 1


def test_the_hidden_field_is_hidden_from_people_and_screen_readers(app, page):
    open_form(page, app.url)
    box = page.locator(f"#{TRAP_ELEM_ID}")
    expect(box).to_have_attribute("aria-hidden", "true")
    field = box.get_by_role("textbox", include_hidden=True)
    expect(field).to_have_attribute("tabindex", "-1")
    expect(field).to_have_attribute("autocomplete", "off")
    rect = field.bounding_box()
    assert rect is not None and rect["x"] + rect["width"] <= 0  # drawn off-screen, not display:none
    assert box.evaluate("el => getComputedStyle(el).display") != "none"
    # Tab from the name field to the button never lands in it.
    page.locator("#name").get_by_role("textbox").focus()
    for _ in range(12):
        page.keyboard.press("Tab")
        assert not page.evaluate(f"() => !!document.activeElement.closest('#{TRAP_ELEM_ID}')")


def test_scripted_bots_are_refused_told_what_to_do_logged_and_counted(app, page, browser):
    before = db_count(app.data_dir)
    # 1. A bot that fills every field it finds, the hidden one included (after a human-like wait).
    open_form(page, app.url)
    page.wait_for_timeout(MIN_SECONDS * 1000)
    fill_review(page, "Bot", 5, "Best product ever, buy now")
    page.locator(f"#{TRAP_ELEM_ID}").get_by_role("textbox", include_hidden=True).fill("http://spam.example", force=True)
    assert "reload the page" in refused(page, app, before, "Your review was not saved: a field that people never see")

    # 2. A bot that submits right after the load; a person told so submits again a little later.
    open_form(page, app.url)
    fill_review(page, "Quick", 3, "typed by a script in no time")
    assert "press Submit again" in refused(page, app, before, "Your review was not saved: it was sent too soon")
    page.wait_for_timeout(MIN_SECONDS * 1000)
    submit_and_wait(page)
    before += 1

    # 3. The same text again (from another "visitor": a fresh page).
    open_form(page, app.url)
    page.wait_for_timeout(MIN_SECONDS * 1000)
    fill_review(page, "Copy", 3, "TYPED BY  a script in no time")  # case and spacing do not matter
    refused(page, app, before, "Your review was not saved: the same comment was sent in the last hour")

    # 4. A comment that is mostly links.
    open_form(page, app.url)
    page.wait_for_timeout(MIN_SECONDS * 1000)
    fill_review(page, "Links", 5, "deals at https://a.example/x and www.b.example and cheap-pills.shop now")
    assert "at most 2" in refused(page, app, before, "Your review was not saved: it has 3 links")

    logs = app.log("web")
    for reason in ("trap", "too_fast", "duplicate", "links"):
        assert f"submit refused reason={reason} via=page" in logs
    assert "Best product ever" not in logs  # a reason, never the text

    owner = browser.new_context()
    try:
        admin = owner.new_page()
        login(admin, app.url, PASSWORD)
        summary = admin.locator("#admin-refused")
        expect(summary).to_contain_text("Refused as likely spam since")
        text = summary.inner_text()
        for label in ("1 hidden field filled in", "1 sent too fast", "1 same comment again", "1 too many links"):
            assert label in text, text
    finally:
        owner.close()


def test_the_api_keeps_three_inputs_and_meets_the_content_checks(app):
    ok = gradio_api.add_review(app.url, "Script", 4, "An integration posting a review by API.")
    assert ok.ok and ok.data[0].startswith("Thank you!")
    again = gradio_api.add_review(app.url, "Script", 4, "An integration posting a review by API.")
    assert not again.ok and "same comment" in again.error
    links = gradio_api.add_review(app.url, "", 1, "http://a.example http://b.example http://c.example")
    assert not links.ok and "3 links" in links.error
    wait_until(lambda: "submit refused reason=links via=api" in app.log("web"), 5, what="the log line")


def test_axe_stays_clean_with_the_hidden_field(app, browser):
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is not installed at {AXE_JS}: run `npm ci --prefix tests` (scripts/test does)")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        open_form(page, app.url)
        expect(page.locator(f"#{TRAP_ELEM_ID}")).to_have_attribute("aria-hidden", "true")
        assert axe_violations(page, AXE_JS.read_text()) == []
    finally:
        context.close()
