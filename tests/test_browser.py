"""The form as people use it: a real chromium on the real app (supervisord, both programs).

Three apps, each started once for the module:
- `app`: the defaults plus an owner's password; no rate limit so tests do not trip it.
- `private_app`: FEEDBACK_HIDE_NAMES on, with an owner's page (names shown there only).
- `limited_app`: 3 reviews per minute, no owner's password (so /admin does not exist).
The same rules are checked without a browser in test_web_api.py, so a failure
here and not there points at the page, not the server.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from shared.db import Store, connect, transaction
from shared.reviews import validate
from tests.apprunner import App
from tests.browser_fixtures import ARTIFACTS
from tests.browser_support import (PASSWORD, chart_counts, comments_box, db_count,
                                   db_rows, error_toast, fill_review, form_error, injected_elements, login,
                                   name_box, open_form, owner_rows, saved_id, shown_reviews, status,
                                   submit_and_wait, total, wait_chart, wait_saved, wait_top_review)

RATE_LIMIT = 3
HOSTILE_NAME = "<b>Mallory</b> [shout](https://evil.example)"
HOSTILE_COMMENTS = ('<img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> '
                    '[click me](javascript:window.__pwned=1) <a href="https://evil.example">link</a> '
                    '**shout** <iframe src="https://evil.example"></iframe> =1+1')


def _app(tmp_path_factory, name: str, env: dict[str, str]) -> App:
    """An app in its own data folder; `with` starts and stops it."""
    return App(tmp_path_factory.mktemp(name) / "data", env=env)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with _app(tmp_path_factory, "browser", {"ADMIN_PASSWORD": PASSWORD}) as a:
        yield a


@pytest.fixture(scope="module")
def private_app(tmp_path_factory):
    env = {"ADMIN_PASSWORD": PASSWORD, "FEEDBACK_HIDE_NAMES": "1"}
    with _app(tmp_path_factory, "browser-private", env) as a:
        yield a


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    with _app(tmp_path_factory, "browser-limited", {"FEEDBACK_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}) as a:
        yield a


def test_submit_shows_confirmation_new_row_on_top_and_count_up(app, page):
    open_form(page, app.url)
    before = total(page)
    fill_review(page, "Browser Ben", 4, "Quick and clear form.")
    review_id = submit_and_wait(page)
    assert status(page) == f"Thank you! Your review #{review_id} was saved."
    top = wait_top_review(page, app.data_dir, review_id)
    assert (top["name"], top["rating"], top["comments"]) == ("Browser Ben", 4, "Quick and clear form.")
    assert top["when"] == "just now"  # in the visitor's terms, not an ISO timestamp
    expect(page.locator("#total")).to_have_text(str(before + 1))
    # The form is cleared for the next person.
    expect(name_box(page)).to_have_value("")
    expect(comments_box(page)).to_have_value("")
    expect(page.locator("#rating input:checked")).to_have_count(0)
    assert db_rows(app.data_dir)[-1] == (review_id, "Browser Ben", 4, "Quick and clear form.")


def test_refused_submit_shows_one_message_beside_the_form_and_keeps_the_page(app, page):
    """No error wall: one message under the button, the rating marked as the field at fault, what was
    typed kept, the list and totals untouched, the earlier "Thank you" gone, no toast, no error badges."""
    open_form(page, app.url)
    fill_review(page, "First Fran", 5, "A first review.")
    submit_and_wait(page)
    before_db, before_page, before_list = db_count(app.data_dir), total(page), shown_reviews(page)
    fill_review(page, "No Rating Nora", None, "I forgot to choose.")
    page.locator("#submit").click()
    assert form_error(page) == "Please choose a rating from 1 to 5."
    assert "was saved" not in status(page)  # the old confirmation is replaced, not left under a badge
    group = page.locator("#rating").get_by_role("radiogroup")
    expect(group).to_have_attribute("aria-invalid", "true")
    assert "form-message" in group.get_attribute("aria-describedby").split()
    expect(page.locator("#rating input[type=radio]").first).to_be_focused()  # straight to what is missing
    # What was typed stays, so the person only has to add the rating.
    expect(name_box(page)).to_have_value("No Rating Nora")
    expect(comments_box(page)).to_have_value("I forgot to choose.")
    expect(page.locator("[data-testid=toast-text]")).to_have_count(0)
    expect(page.locator(".error")).to_have_count(0)  # Gradio's per-output "Error" badge
    assert db_count(app.data_dir) == before_db
    assert total(page) == before_page and shown_reviews(page) == before_list
    # Fixing it and sending again clears the mark.
    page.keyboard.press("ArrowRight")
    review_id = submit_and_wait(page)
    expect(group).not_to_have_attribute("aria-invalid", "true")
    assert db_rows(app.data_dir)[-1] == (review_id, "No Rating Nora", 2, "I forgot to choose.")


def test_too_long_comment_marks_the_comments_field(app, page):
    open_form(page, app.url)
    before = db_count(app.data_dir)
    fill_review(page, "Long Lou", 3, "")
    # The page's own maxlength stops typing at the limit; a pasted-in value past it reaches the server.
    comments_box(page).evaluate("(el, n) => { el.removeAttribute('maxlength'); }", None)
    comments_box(page).fill("c" * 5001)
    page.locator("#submit").click()
    assert form_error(page).startswith("Comments is too long: 5,001 characters")
    expect(comments_box(page)).to_have_attribute("aria-invalid", "true")
    expect(comments_box(page)).to_be_focused()
    expect(page.locator("#rating").get_by_role("radiogroup")).not_to_have_attribute("aria-invalid", "true")
    assert db_count(app.data_dir) == before


def test_hostile_text_is_shown_literally_and_never_runs(app, page):
    open_form(page, app.url)
    fill_review(page, HOSTILE_NAME, 2, HOSTILE_COMMENTS)
    review_id = submit_and_wait(page)
    top = wait_top_review(page, app.data_dir, review_id)
    assert top["name"] == HOSTILE_NAME and top["comments"] == HOSTILE_COMMENTS
    page.wait_for_timeout(300)  # an <img onerror> would have fired by now
    assert injected_elements(page) == {"pwned": None, "img": 0, "onerror": 0, "script": 0, "links": 0,
                                       "bold": 0, "iframe": 0}
    # The other way the text reaches the page: the first render, from the load event.
    open_form(page, app.url)
    top = wait_top_review(page, app.data_dir, review_id)
    assert top["name"] == HOSTILE_NAME and top["comments"] == HOSTILE_COMMENTS
    page.wait_for_timeout(300)
    assert injected_elements(page)["pwned"] is None and injected_elements(page)["img"] == 0
    assert db_rows(app.data_dir)[-1] == (review_id, HOSTILE_NAME, 2, HOSTILE_COMMENTS)


def test_chart_and_average_follow_each_submit(app, page):
    open_form(page, app.url)
    counts = chart_counts(page)
    assert set(counts) == {1, 2, 3, 4, 5} and sum(counts.values()) == total(page)
    for rating in (5, 1):
        fill_review(page, "", rating, f"rating {rating}")
        submit_and_wait(page)
        counts[rating] += 1
        wait_chart(page, counts)
        n = sum(counts.values())
        expected_average = f"{sum(r * c for r, c in counts.items()) / n:.2f} / 5"
        expect(page.locator("#average")).to_have_text(expected_average)
        expect(page.locator("#total")).to_have_text(f"{n:,}")


def test_keyboard_only_submit(app, page):
    """The rating is one Tab stop (the ARIA radio-group pattern): arrows move and select, Enter
    selects and never sends; Enter in the name does not send; the button and Shift+Enter do."""
    open_form(page, app.url)
    before_db = db_count(app.data_dir)
    name = name_box(page)
    name.focus()
    page.keyboard.type("Keyboard Kim")
    page.keyboard.press("Enter")  # a phone's Go key in the name: nothing is sent
    page.keyboard.press("Tab")
    first = page.locator("#rating").get_by_role("radio", name="1", exact=True)
    expect(first).to_be_focused()
    expect(page.locator("#rating input:checked")).to_have_count(0)  # Tab alone chooses nothing
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    four = page.locator("#rating").get_by_role("radio", name="4", exact=True)
    expect(four).to_be_focused()
    expect(four).to_be_checked()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#rating").get_by_role("radio", name="3", exact=True)).to_be_checked()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # chooses (already chosen), never sends
    page.keyboard.press("Space")
    expect(four).to_be_checked()
    page.keyboard.press("Tab")  # one stop: the next Tab leaves the group
    expect(comments_box(page)).to_be_focused()
    page.keyboard.type("Only the keyboard.")
    page.keyboard.press("Tab")
    expect(page.locator("#submit")).to_be_focused()
    page.wait_for_timeout(300)
    assert db_count(app.data_dir) == before_db and "was saved" not in status(page)  # neither Enter sent it
    before = saved_id(page)
    page.keyboard.press("Enter")
    review_id = wait_saved(page, after=before)
    assert db_rows(app.data_dir)[-1] == (review_id, "Keyboard Kim", 4, "Only the keyboard.")
    # Shift-Tab back into the cleared group lands on the first option; with a choice, on the chosen one.
    page.locator("#rating").get_by_role("radio", name="5", exact=True).check()
    comments_box(page).focus()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#rating").get_by_role("radio", name="5", exact=True)).to_be_focused()
    # Shift+Enter in the comments sends the form (Enter alone makes a new line there).
    fill_review(page, "Shift Sam", 5, "Sent with Shift+Enter.")
    comments_box(page).press("Shift+Enter")
    second = wait_saved(page, after=review_id)
    assert db_rows(app.data_dir)[-1] == (second, "Shift Sam", 5, "Sent with Shift+Enter.")


def test_rating_targets_are_big_and_on_one_row_on_a_phone(app, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_form(page, app.url)
        boxes = page.locator("#rating .rating-option").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })")
        assert len(boxes) == 5
        assert all(w >= 44 and h >= 44 for _, _, w, h in boxes), boxes
        assert len({round(y) for _, y, _, _ in boxes}) == 1, boxes  # one row
        assert max(x + w for x, _, w, _ in boxes) <= 390, boxes
        # The name is a single-line input; no field carries its instructions in a placeholder.
        assert name_box(page).evaluate("el => el.tagName") == "INPUT"
        assert page.locator("input[placeholder]:not([placeholder='']), textarea[placeholder]:not([placeholder=''])"
                            ).count() == 0
        # Right-to-left text lays itself out: every field that takes text has dir=auto.
        assert name_box(page).get_attribute("dir") == "auto" and comments_box(page).get_attribute("dir") == "auto"
    finally:
        context.close()


def test_rate_limit_message_on_submit_after_the_limit(limited_app, page):
    open_form(page, limited_app.url)
    for i in range(RATE_LIMIT):
        fill_review(page, f"Fast Fay {i}", 3, "again")
        submit_and_wait(page)
    assert db_count(limited_app.data_dir) == RATE_LIMIT
    fill_review(page, "Fast Fay over", 3, "one too many")
    page.locator("#submit").click()
    assert form_error(page).startswith(f"Too many reviews from you in the last minute (at most {RATE_LIMIT})")
    expect(comments_box(page)).to_have_value("one too many")
    assert db_count(limited_app.data_dir) == RATE_LIMIT
    assert total(page) == RATE_LIMIT


def test_owner_page_does_not_exist_without_password(limited_app, page):
    for path in ("/admin", "/admin/", "/admin/config"):
        response = page.goto(limited_app.url + path)
        assert response.status == 404, path
    expect(page.locator("input[type=password]")).to_have_count(0)


def test_owner_page_wrong_password_shows_nothing(app, page):
    login(page, app.url, "not the password", wait=False)
    expect(page.locator("#login-message")).to_have_text("Wrong password.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#admin-list")).to_have_count(0)
    body = page.locator("body").inner_text()
    assert "Every review, newest first" not in body
    assert not any(name and name in body for _, name, _, _ in db_rows(app.data_dir))
    assert not [c for c in page.context.cookies() if c["name"].startswith("access-token")]
    # The login asks for nothing the check ignores: one password field, no user name.
    expect(page.locator("input:not([type=hidden])")).to_have_count(1)
    assert page.title() == "Log in: owner's page"


def _download(page, button: str, tmp_path, name: str):
    page.locator(button).click()
    download_button = page.locator("#admin-download")
    expect(download_button).to_be_visible()
    expect(download_button).to_contain_text(name.rsplit(".", 1)[1])
    with page.expect_download() as info:
        download_button.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    return saved, info.value


def test_owner_page_lists_searches_pages_and_exports_what_it_shows(app, browser, tmp_path):
    store = Store(app.data_dir / "reviews.db")
    try:  # enough reviews for two pages, straight into the database (the form's rules apply)
        for i in range(55):
            store.add(validate(f"Paging Pat {i}", 1 + i % 5, f"bulk comment {i}" if i % 2 else "=SUM(A1:A2)"))
        hostile_id = store.add(validate(HOSTILE_NAME, 1, HOSTILE_COMMENTS))
        rtl_id = store.add(validate("דנה", 4, "שירות מצוין"))
    finally:
        store.close()
    expected = db_rows(app.data_dir)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                  timezone_id="Asia/Tokyo", locale="en-GB")
    page = context.new_page()
    try:
        login(page, app.url, PASSWORD)
        expect(page.locator("#admin-count")).to_contain_text(f"of {len(expected):,} reviews")
        rows = owner_rows(page)
        assert [r["review"] for r in rows[:2]] == [rtl_id, hostile_id]  # newest first
        # Made for reading: no ids unless asked, stars, the time in the owner's zone (Tokyo is UTC+9).
        assert all(r["id"] is None for r in rows)
        expect(page.locator("#admin-list th")).to_have_text(["When", "Name", "Rating", "Comment"])
        assert rows[1]["rating"] == 1 and rows[0]["name"] == "דנה" and rows[0]["comments"] == "שירות מצוין"
        assert page.locator(f'#admin-list tr[data-review="{rtl_id}"] .col-name span').get_attribute("dir") == "auto"
        assert page.locator(f'#admin-list tr[data-review="{rtl_id}"] .col-comment p').get_attribute("dir") == "auto"
        local = page.evaluate("""(iso) => new Intl.DateTimeFormat(undefined, {dateStyle: 'medium',
                                    timeStyle: 'short'}).format(Date.parse(iso))""", rows[0]["created_at"])
        assert rows[0]["when"] == local and "T" not in local
        page.locator("#admin-show-ids").get_by_role("checkbox").check()
        expect(page.locator("#admin-list th").first).to_have_text("Id")
        assert owner_rows(page)[0]["id"] == str(rtl_id)
        expect(page.locator("#admin-page")).to_contain_text(f"Page 1 of {-(-len(expected) // 50)}")
        # The next page continues where the first stopped (ids still shown: the choice stays).
        page.locator("#admin-older").click()
        expect(page.locator("#admin-page")).to_contain_text("Page 2 of")
        expect(page.locator("#admin-list tr[data-review] .col-id").first).to_have_text(str(expected[-51][0]))
        page.locator("#admin-newer").click()
        expect(page.locator("#admin-page")).to_contain_text("Page 1 of")
        # Search: name or comments; the hostile review shows literally here too, with its name.
        query = page.locator("#admin-query").get_by_role("textbox")
        query.fill("Mallory")
        query.press("Enter")
        expect(page.locator("#admin-count")).to_contain_text("matching your search")
        rows = owner_rows(page)
        assert rows and all(r["name"] == HOSTILE_NAME for r in rows) and rows[0]["comments"] == HOSTILE_COMMENTS
        page.wait_for_timeout(300)
        assert injected_elements(page)["pwned"] is None and injected_elements(page)["img"] == 0
        query.fill("bulk comment")
        page.locator("#admin-apply").click()  # one apply action: the same as Enter
        matching = [r for r in expected if "bulk comment" in r[3]]
        expect(page.locator("#admin-count")).to_contain_text(f"of {len(matching)} reviews matching your search")
        shown_ids = {r["review"] for r in owner_rows(page)}
        # The CSV holds what the list shows (the search included), formula-safe, times in UTC and Tokyo.
        saved, download = _download(page, "#admin-prepare-csv", tmp_path, "x.csv")
        assert re.fullmatch(r"reviews-\d{8}T\d{6}Z\.csv", download.suggested_filename)
        df = pd.read_csv(saved, keep_default_na=False)
        assert list(df.columns) == ["id", "created_at_utc", "created_at_local", "time_zone", "name", "rating",
                                    "comments", "status", "reply", "reply_at"]
        assert df["id"].tolist() == [r[0] for r in matching] and shown_ids <= set(df["id"])
        assert set(df["time_zone"]) == {"Asia/Tokyo"} and all(t.endswith("+09:00") for t in df["created_at_local"])
        assert all(t.endswith("Z") and "T" in t for t in df["created_at_utc"])
        # Without the search: every review, and the formula guard on the text cells.
        query.fill("")
        query.press("Enter")
        expect(page.locator("#admin-count")).not_to_contain_text("matching")
        saved, _ = _download(page, "#admin-prepare-xlsx", tmp_path, "x.xlsx")
        xl = pd.read_excel(saved, engine="openpyxl", keep_default_na=False)
        assert xl["id"].tolist() == [r[0] for r in expected]
        assert HOSTILE_NAME in xl["name"].tolist() and HOSTILE_COMMENTS in xl["comments"].tolist()
        assert "'=SUM(A1:A2)" in xl["comments"].tolist() and "=SUM(A1:A2)" not in xl["comments"].tolist()
        from openpyxl import load_workbook
        sheet = load_workbook(saved, read_only=True).active
        assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)  # no formula cell at all
        # The exports are the owner's only: the public app refuses the same file.
        response = page.request.get(app.url + "/gradio_api/file=" + download.url.split("/file=", 1)[1])
        assert response.status == 404  # not a route of the public app at all (web/http_limits.py)
    finally:
        context.close()


def test_hidden_names_in_public_list_but_shown_to_owner(private_app, page):
    store = Store(private_app.data_dir / "reviews.db")
    try:
        store.add(validate("Secret Sue", 5, "Please keep my name private."))
    finally:
        store.close()
    open_form(page, private_app.url)
    expect(page.locator("#name")).to_contain_text("not shown publicly")
    expect(page.locator("#latest li.review .comment").first).to_have_text("Please keep my name private.")
    assert shown_reviews(page)[0]["name"] == "Anonymous"
    assert "Secret Sue" not in page.locator("body").inner_text()
    login(page, private_app.url, PASSWORD)
    expect(page.locator("#admin-list tr[data-review] .col-name").first).to_have_text("Secret Sue")


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)])
def test_layout_screenshots(app, browser, width, height):
    """The pages fit the screen (no sideways scrolling); on a phone the owner reads a card per review."""
    ARTIFACTS.mkdir(exist_ok=True)
    store = Store(app.data_dir / "reviews.db")
    try:
        store.add(validate("Layout Lee", 4, "A comment long enough to wrap on a phone. " * 8))
    finally:
        store.close()
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        open_form(page, app.url)
        scroll_width, client_width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll_width <= client_width, f"page scrolls sideways at {width}px"
        for selector in ("#name", "#rating", "#comments", "#submit", "#overview", "#latest"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, selector
        page.screenshot(path=ARTIFACTS / f"form-{width}px.png", full_page=True)
        login(page, app.url, PASSWORD)
        first = page.locator("#admin-list tr[data-review]").first
        expect(first).to_be_visible()
        scroll_width, client_width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll_width <= client_width, f"owner's page scrolls sideways at {width}px"
        for part in (".col-when", ".col-name", ".col-rating .stars", ".col-comment p"):
            box = first.locator(part).bounding_box()  # every part of a review in view: nothing cut off
            assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, part
        if width < 640:  # a card: the parts stacked, each the card's width; the whole comment shown
            assert first.evaluate("el => getComputedStyle(el).display") == "block"
            comment = first.locator(".col-comment p")
            assert comment.evaluate("el => el.scrollHeight <= el.clientHeight + 2 && el.scrollWidth <= el.clientWidth + 2")
        page.screenshot(path=ARTIFACTS / f"owner-{width}px.png", full_page=True)
    finally:
        context.close()


def test_owner_filters_charts_presets_and_exports_follow_dates_and_ratings(app, page, tmp_path):
    store = Store(app.data_dir / "reviews.db")
    try:
        for i in range(6):
            store.add(validate(f"Filter Fin {i}", 5 if i % 2 else 2, f"filter comment {i}"))
    finally:
        store.close()
    rows = db_rows(app.data_dir)
    fives = [r for r in rows if r[2] == 5]
    login(page, app.url, PASSWORD)
    expect(page.locator("#admin-count")).to_contain_text(f"of {len(rows):,} reviews")
    before, shown_before = page.locator("#admin-count").inner_text(), owner_rows(page)
    # Bad date ranges: a clear message, and nothing on the page changes.
    for first, last, message in (("2026-12-31", "2026-01-01", "The date range is reversed"),
                                 ("31/12/2026", "", "is not a date"), ("1970-01-01", "", "is out of range")):
        page.locator("#admin-from").get_by_role("textbox").fill(first)
        page.locator("#admin-to").get_by_role("textbox").fill(last)
        page.locator("#admin-apply").click()
        assert message in error_toast(page)
        page.locator("[data-testid=toast-close]").last.click()
        expect(page.locator("[data-testid=toast-text]")).to_have_count(0)  # the next message is a new one
        expect(page.locator("#admin-count")).to_have_text(before)
        assert owner_rows(page) == shown_before
    # A preset fills the dates and applies them: every review here is from today (UTC).
    page.locator("#admin-preset-today").click()
    today = page.evaluate("new Date().toISOString().slice(0, 10)")
    expect(page.locator("#admin-from").get_by_role("textbox")).to_have_value(today)
    expect(page.locator("#admin-to").get_by_role("textbox")).to_have_value(today)
    expect(page.locator("#admin-count")).to_contain_text("matching your filters")
    # One day of reviews: a point on each chart, not empty axes.
    for chart in ("#admin-per-day", "#admin-average"):
        expect(page.locator(chart + " svg circle")).to_have_count(1)
        expect(page.locator(chart + " svg")).to_have_attribute("aria-label", re.compile(r"1 day from"))
    page.locator("#admin-preset-all").click()
    expect(page.locator("#admin-from").get_by_role("textbox")).to_have_value("")
    expect(page.locator("#admin-count")).not_to_contain_text("matching")
    # Only 5 stars: the list, the distribution chart and the export all follow.
    for rating in (1, 2, 3, 4):
        page.locator("#admin-ratings").get_by_role("checkbox", name=str(rating), exact=True).uncheck()
    page.locator("#admin-apply").click()
    expect(page.locator("#admin-count")).to_contain_text(f"of {len(fives):,} reviews matching your filters")
    assert {r["rating"] for r in owner_rows(page)} == {5}
    assert chart_counts(page, "#admin-distribution") == {5: len(fives), 4: 0, 3: 0, 2: 0, 1: 0}
    expect(page.locator("#admin-summary")).to_contain_text(f"{len(fives):,} reviews from")
    saved, _ = _download(page, "#admin-prepare-csv", tmp_path, "x.csv")
    df = pd.read_csv(saved, keep_default_na=False)
    assert df["id"].tolist() == [r[0] for r in fives] and set(df["rating"]) == {5}
    # FTS syntax in the search is plain text: an answer, never an error. (Each search waits for
    # its own answer: Gradio ignores a second Enter while the first search is still running.)
    search = page.locator("#admin-query").get_by_role("textbox")
    search.fill('"NEAR* -')
    search.press("Enter")
    expect(page.locator("#admin-count")).to_contain_text("No reviews match your search and filters.")
    for text, name in (("filter comment 5", "Filter Fin 5"), ('"filter" -comment* NEAR 3', None),
                       ('"filter comment" 3*', "Filter Fin 3")):
        search.fill(text)
        search.press("Enter")
        if name:
            expect(page.locator("#admin-list tr[data-review] .col-name").first).to_have_text(name)
            expect(page.locator("#admin-count")).to_contain_text("Showing 1–1 of 1 reviews matching")
        else:
            expect(page.locator("#admin-count")).to_contain_text("No reviews match your search and filters.")
    expect(page.locator("[data-testid=toast-text]")).to_have_count(0)


@pytest.fixture
def other_origin():
    """A web page on another origin (another port of 127.0.0.1) that embeds whatever HTML it is given."""
    import http.server
    import threading

    from tests.apprunner import free_port

    holder = {"html": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<!doctype html><html lang=en><title>Owner's site</title><h1>Our shop</h1>{holder['html']}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_share_the_form_embedded_on_another_origin_and_close_it(app, page, other_origin, tmp_path):
    """The owner copies the link and the embed snippet, downloads the QR code; the snippet on the
    owner's own site (another origin) is a working form that uses only the allowlisted routes; the
    owner closes the form with a message (the page and the API refuse) and reopens it."""
    from web.http_limits import PUBLIC_ROUTES, _matches

    login(page, app.url, PASSWORD)
    page.get_by_role("button", name=re.compile("Share the form")).click()
    link = page.locator("#admin-share-link").get_by_role("textbox")
    expect(link).to_have_value(app.url + "/")
    snippet = page.locator("#admin-embed").get_by_role("textbox").input_value()
    assert snippet.startswith(f'<iframe src="{app.url}/"') and 'title="Feedback form"' in snippet
    expect(page.locator("#admin-qr img")).to_have_attribute("alt", f"QR code that opens {app.url}/")
    for button, magic in (("#admin-qr-png", b"\x89PNG"), ("#admin-qr-svg", b"<?xml")):
        with page.expect_download() as info:
            page.locator(button).click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert saved.read_bytes().startswith(magic), button

    # The owner's site, on another origin, with the snippet pasted in.
    holder, site = other_origin
    holder["html"] = snippet
    visitor = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        seen: list[tuple[str, str, int]] = []
        vpage = visitor.new_page()
        vpage.on("response", lambda r: seen.append((r.request.method, r.url, r.status)))
        vpage.goto(site + "/")
        frame = vpage.frame_locator("iframe[title='Feedback form']")
        expect(frame.locator("#latest li.review, #latest .empty").first).to_be_visible(timeout=20_000)
        frame.locator("#name").get_by_role("textbox").fill("Embedded Emma")
        frame.locator("#rating").get_by_role("radio", name="4", exact=True).check()
        frame.locator("#comments").get_by_role("textbox").fill("Sent from the shop's page.")
        frame.locator("#submit").click()
        expect(frame.locator("#form-message")).to_contain_text("was saved", timeout=20_000)
        assert db_rows(app.data_dir)[-1][1:] == ("Embedded Emma", 4, "Sent from the shop's page.")
        ours = [(m, u[len(app.url):].split("?")[0], st) for m, u, st in seen if u.startswith(app.url)]
        assert ours and all(st < 400 for _, _, st in ours), ours
        assert all(_matches(PUBLIC_ROUTES, m, path) for m, path, _ in ours), ours
    finally:
        visitor.close()

    # Close the form with a message: the page shows it instead of the form, the API refuses.
    page.get_by_role("button", name=re.compile("Open or close the form")).click()
    expect(page.locator("#admin-form-state")).to_contain_text("The form is open")
    page.locator("#admin-closed-message").get_by_role("textbox").fill("Closed for the holidays, back on 5 January.")
    page.locator("#admin-form-toggle").click()
    expect(page.locator("#admin-form-state")).to_contain_text("The form is closed")
    expect(page.locator("#admin-form-toggle")).to_have_text("Reopen the form")
    before = db_count(app.data_dir)
    public = page.context.new_page()
    try:
        public.goto(app.url + "/")
        expect(public.locator("#form-closed")).to_contain_text("Closed for the holidays, back on 5 January.",
                                                               timeout=20_000)
        expect(public.locator("#submit")).to_be_hidden()
        expect(public.locator("#latest li.review").first).to_be_visible()  # the reviews still show
        from tests import gradio_api
        r = gradio_api.add_review(app.url, "Too Late", 3, "")
        assert not r.ok and "Closed for the holidays" in r.error
        assert db_count(app.data_dir) == before
        page.locator("#admin-form-toggle").click()
        expect(page.locator("#admin-form-state")).to_contain_text("The form is open")
        public.reload()
        expect(public.locator("#submit")).to_be_visible(timeout=20_000)
        expect(public.locator("#form-closed")).to_have_count(0)
        assert gradio_api.add_review(app.url, "Back Again", 3, "").ok
    finally:
        public.close()
        from shared.db import connect as open_db
        from web.form_state import set_form_state
        conn = open_db(app.data_dir / "reviews.db")
        try:
            set_form_state(conn, False)  # whatever happened above, the other tests get an open form
        finally:
            conn.close()


@pytest.mark.parametrize("zone,expected", [("Europe/Berlin", "2 Mar 2024"), ("UTC", "1 Mar 2024 UTC")])
def test_older_reviews_show_a_date_in_the_visitors_time_zone(app, browser, zone, expected):
    """23:30 UTC on 1 March is already 2 March in Berlin; where the zone is UTC (or unknown) the page says so."""
    conn = connect(app.data_dir / "reviews.db")
    try:
        with transaction(conn):
            conn.execute("INSERT INTO reviews (created_at, name, rating, comments) "
                         "VALUES ('2024-03-01T23:30:00.000Z', 'Old Olga', 4, 'From long ago.')")
    finally:
        conn.close()
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id=zone, locale="en-GB")
    try:
        page = context.new_page()
        open_form(page, app.url)
        expect(page.locator("#latest li.review time").first).to_have_text(expected)
        assert shown_reviews(page)[0]["name"] == "Old Olga"
    finally:
        context.close()
