"""The form as people use it: a real chromium on the real app (supervisord, both programs).

Three apps, each started once for the module:
- `app`: the defaults plus an owner's password; no rate limit so tests do not trip it.
- `private_app`: FEEDBACK_HIDE_NAMES on, with an owner's page (names shown there only).
- `limited_app`: 3 reviews per minute, no owner's password (so /admin does not exist).
The same rules are checked without a browser in test_web_api.py, so a failure
here and not there points at the page, not the server.
"""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
from playwright.sync_api import expect

from shared.db import Store, connect, transaction
from shared.reviews import validate
from tests.apprunner import App
from tests.browser_fixtures import ARTIFACTS
from tests.browser_support import (PASSWORD, chart_counts, db_count, db_rows,
                                   error_toast, fill_review, injected_elements, login, open_form,
                                   saved_id, shown_reviews, status, submit_and_wait, table_rows, total, wait_chart,
                                   wait_saved, wait_top_review, wait_top_row)

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
    expect(page.locator("#total input")).to_have_value(str(before + 1))
    # The form is cleared for the next person.
    expect(page.locator("#name").get_by_role("textbox")).to_have_value("")
    expect(page.locator("#comments").get_by_role("textbox")).to_have_value("")
    expect(page.locator("#rating input:checked")).to_have_count(0)
    assert db_rows(app.data_dir)[-1] == (review_id, "Browser Ben", 4, "Quick and clear form.")


def test_submit_without_rating_says_what_is_missing_and_stores_nothing(app, page):
    open_form(page, app.url)
    before_db, before_page = db_count(app.data_dir), total(page)
    fill_review(page, "No Rating Nora", None, "I forgot to choose.")
    page.locator("#submit").click()
    assert error_toast(page) == "Please choose a rating from 1 to 5."
    # What was typed stays, so the person only has to add the rating.
    expect(page.locator("#comments").get_by_role("textbox")).to_have_value("I forgot to choose.")
    assert db_count(app.data_dir) == before_db
    assert total(page) == before_page
    assert "was saved" not in status(page)


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
        expect(page.locator("#average").get_by_role("textbox")).to_have_value(expected_average)
        expect(page.locator("#total input")).to_have_value(str(n))


def test_keyboard_only_submit(app, page):
    open_form(page, app.url)
    name = page.locator("#name").get_by_role("textbox")
    # Tab through the form: name, the ratings (Gradio 6 makes each option its own tab stop,
    # so arrow keys do not move between them; Space chooses), comments, button, Enter.
    name.focus()
    page.keyboard.type("Keyboard Kim")
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(page.locator("#rating").get_by_role("radio", name="4", exact=True)).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#rating input:checked")).to_have_count(1)
    chosen = int(page.locator("#rating input:checked").get_attribute("value"))
    assert chosen == 4
    comments = page.locator("#comments").get_by_role("textbox")
    for _ in range(5):
        page.keyboard.press("Tab")
        if comments.evaluate("el => el === document.activeElement"):
            break
    expect(comments).to_be_focused()
    page.keyboard.type("Only the keyboard.")
    page.keyboard.press("Tab")
    expect(page.locator("#submit")).to_be_focused()
    before = saved_id(page)
    page.keyboard.press("Enter")
    review_id = wait_saved(page, after=before)
    assert db_rows(app.data_dir)[-1] == (review_id, "Keyboard Kim", chosen, "Only the keyboard.")
    # Enter in the name field sends the form too.
    fill_review(page, "Enter Eli", 3, "Sent with Enter.")
    name.press("Enter")
    second = wait_saved(page, after=review_id)
    # And Shift+Enter in the comments (Enter alone makes a new line there).
    fill_review(page, "Shift Sam", 5, "Sent with Shift+Enter.")
    page.locator("#comments").get_by_role("textbox").press("Shift+Enter")
    third = wait_saved(page, after=second)
    assert [r[1] for r in db_rows(app.data_dir) if r[0] in (second, third)] == ["Enter Eli", "Shift Sam"], (review_id, second, third, db_rows(app.data_dir)[-4:])


def test_rate_limit_message_on_submit_after_the_limit(limited_app, page):
    open_form(page, limited_app.url)
    for i in range(RATE_LIMIT):
        fill_review(page, f"Fast Fay {i}", 3, "again")
        submit_and_wait(page)
    assert db_count(limited_app.data_dir) == RATE_LIMIT
    fill_review(page, "Fast Fay over", 3, "one too many")
    page.locator("#submit").click()
    assert error_toast(page).startswith(f"Too many reviews from you in the last minute (at most {RATE_LIMIT})")
    assert db_count(limited_app.data_dir) == RATE_LIMIT
    assert total(page) == RATE_LIMIT


def test_owner_page_does_not_exist_without_password(limited_app, page):
    for path in ("/admin", "/admin/", "/admin/config"):
        response = page.goto(limited_app.url + path)
        assert response.status == 404, path
    expect(page.locator("input[type=password]")).to_have_count(0)


def test_owner_page_wrong_password_shows_nothing(app, page):
    login(page, app.url, "not the password")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    expect(page.locator("#admin-table")).to_have_count(0)
    body = page.locator("body").inner_text()
    assert "Every review, newest first" not in body
    assert not any(name and name in body for _, name, _, _ in db_rows(app.data_dir))
    assert not [c for c in page.context.cookies() if c["name"].startswith("access-token")]


def test_owner_page_lists_searches_pages_and_downloads_csv(app, page, tmp_path):
    store = Store(app.data_dir / "reviews.db")
    try:  # enough reviews for two pages, straight into the database (the form's rules apply)
        for i in range(55):
            store.add(validate(f"Paging Pat {i}", 1 + i % 5, f"bulk comment {i}" if i % 2 else "=SUM(A1:A2)"))
        hostile_id = store.add(validate(HOSTILE_NAME, 1, HOSTILE_COMMENTS))
    finally:
        store.close()
    expected = db_rows(app.data_dir)
    login(page, app.url, PASSWORD)
    expect(page.locator("#admin-count")).to_contain_text(f"of {len(expected):,} reviews")
    rows = table_rows(page, "admin-table")
    assert rows[0][0] == str(expected[-1][0])  # newest first
    assert rows[0][0] == str(hostile_id) and rows[1][2] == "Paging Pat 54"
    expect(page.locator("#admin-page")).to_contain_text(f"Page 1 of {-(-len(expected) // 50)}")
    # The next page continues where the first stopped.
    page.locator("#admin-older").click()
    expect(page.locator("#admin-page")).to_contain_text("Page 2 of")
    expect(page.locator("#admin-table [data-testid=cell-0-0]")).to_have_text(str(expected[-51][0]))
    page.locator("#admin-newer").click()
    expect(page.locator("#admin-page")).to_contain_text("Page 1 of")
    # Search: name or comments; the hostile review shows literally here too, with its name.
    page.locator("#admin-query").get_by_role("textbox").fill("Mallory")
    page.locator("#admin-query").get_by_role("textbox").press("Enter")
    expect(page.locator("#admin-count")).to_contain_text("matching your search")
    rows = table_rows(page, "admin-table")
    assert rows and all(r[2] == HOSTILE_NAME for r in rows)
    assert rows[0][4] == HOSTILE_COMMENTS
    page.wait_for_timeout(300)
    assert injected_elements(page)["pwned"] is None and injected_elements(page)["img"] == 0
    page.locator("#admin-query").get_by_role("textbox").fill("bulk comment 53")
    page.locator("#admin-query").get_by_role("button", name="Search").click()
    expect(page.locator("#admin-count")).to_contain_text("Showing 1–1 of 1 reviews matching")
    # The CSV: every review, formula-injection safe, opens with pandas.
    page.locator("#admin-prepare-csv").click()
    download_button = page.locator("#admin-download-csv")
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert re.fullmatch(r"reviews-\d{8}-\d{6}\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    df = pd.read_csv(saved, keep_default_na=False)
    assert list(df.columns) == ["id", "created_at", "name", "rating", "comments", "status", "reply", "reply_at"]
    assert df["id"].tolist() == [r[0] for r in expected]
    assert HOSTILE_NAME in df["name"].tolist() and HOSTILE_COMMENTS in df["comments"].tolist()
    assert "'=SUM(A1:A2)" in df["comments"].tolist() and "=SUM(A1:A2)" not in df["comments"].tolist()
    with open(saved, newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    # The export is the owner's only: the public app refuses the same file.
    response = page.request.get(app.url + "/gradio_api/file=" + download.url.split("/file=", 1)[1])
    assert response.status == 404  # not a route of the public app at all (web/http_limits.py)


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
    expect(page.locator("#admin-table [data-testid=cell-0-2]")).to_have_text("Secret Sue")


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)])
def test_layout_screenshots(app, browser, width, height):
    """The page fits the screen (no sideways scrolling), and the form is usable at that width."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        open_form(page, app.url)
        page.wait_for_timeout(300)  # let the chart finish drawing
        scroll_width, client_width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll_width <= client_width, f"page scrolls sideways at {width}px"
        for selector in ("#name", "#rating", "#comments", "#submit", "#chart", "#latest"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, selector
        page.screenshot(path=ARTIFACTS / f"form-{width}px.png", full_page=True)
        # Labels and placeholders say what to write.
        assert page.locator("#name").get_by_role("textbox").get_attribute("placeholder")
        assert page.locator("#comments").get_by_role("textbox").get_attribute("placeholder")
        login(page, app.url, PASSWORD)
        expect(page.locator("#admin-table")).to_be_visible()
        page.wait_for_timeout(300)
        page.screenshot(path=ARTIFACTS / f"owner-{width}px.png", full_page=True)
    finally:
        context.close()


def test_owner_filters_charts_and_csv_follow_dates_and_ratings(app, page, tmp_path):
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
    before, shown_before = page.locator("#admin-count").inner_text(), table_rows(page, "admin-table")
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
        assert table_rows(page, "admin-table") == shown_before
    page.locator("#admin-from").get_by_role("textbox").fill("")
    page.locator("#admin-to").get_by_role("textbox").fill("")
    # Only 5 stars: the list, the distribution chart and the CSV all follow.
    for rating in (1, 2, 3, 4):
        page.locator("#admin-ratings").get_by_role("checkbox", name=str(rating), exact=True).uncheck()
    page.locator("#admin-apply").click()
    expect(page.locator("#admin-count")).to_contain_text(f"of {len(fives):,} reviews matching your filters")
    assert {r[3] for r in table_rows(page, "admin-table")} == {"5"}
    expect(page.locator(f'#admin-distribution [aria-label="rating: 5; reviews: {len(fives)}"]')).to_have_count(1)
    expect(page.locator('#admin-distribution [aria-label="rating: 2; reviews: 0"]')).to_have_count(1)
    expect(page.locator("#admin-summary")).to_contain_text(f"{len(fives):,} reviews from")
    for chart in ("#admin-per-day", "#admin-average"):
        expect(page.locator(chart + " canvas, " + chart + " svg").first).to_be_visible()
    page.locator("#admin-prepare-csv").click()
    expect(page.locator("#admin-download-csv")).to_be_visible()
    with page.expect_download() as info:
        page.locator("#admin-download-csv").click()
    saved = tmp_path / "filtered.csv"
    info.value.save_as(saved)
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
            wait_top_row(page, 2, name, "admin-table")
            expect(page.locator("#admin-count")).to_contain_text("Showing 1–1 of 1 reviews matching")
        else:
            expect(page.locator("#admin-count")).to_contain_text("No reviews match your search and filters.")
    expect(page.locator("[data-testid=toast-text]")).to_have_count(0)


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
