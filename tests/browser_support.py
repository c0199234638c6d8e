"""What a person does on the form and sees on it, in Playwright terms.

Selectors rely on the elem_ids set in web/app.py and web/admin.py and on what
Gradio 6 renders for them: the public list is `#latest li.review` (web/review_list.py),
the owner's Dataframe's visible rows are `[role=row] .virtual-row` with `[role=gridcell]` cells, the bar chart's bars carry an
aria-label "rating: 3; reviews: 2", error toasts are `[data-testid=toast-text]`.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from shared.db import connect
from tests.store_support import all_rows

PASSWORD = "correct horse battery staple"
ADMIN_USER = "owner"


def db_count(data_dir: Path) -> int:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    finally:
        conn.close()


def db_rows(data_dir: Path) -> list[tuple]:
    return all_rows(data_dir / "reviews.db", ("id", "name", "rating", "comments"))


def db_created_at(data_dir: Path, review_id: int) -> str:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT created_at FROM reviews WHERE id = ?", (review_id,)).fetchone()[0]
    finally:
        conn.close()


def open_form(page: Page, url: str) -> None:
    """Open the public page and wait until the overview has loaded.

    The average is empty until the load event fills it (the total starts at 0, so it cannot tell)."""
    page.goto(url + "/")
    expect(page.locator("#average").get_by_role("textbox")).to_have_value(re.compile(r"(/ 5|No reviews yet)$"))
    expect(page.locator("#latest")).to_be_visible()


def fill_review(page: Page, name: str, rating: int | None, comments: str) -> None:
    page.locator("#name").get_by_role("textbox").fill(name)
    if rating is not None:
        page.locator("#rating").get_by_role("radio", name=str(rating), exact=True).check()
    page.locator("#comments").get_by_role("textbox").fill(comments)


def total(page: Page) -> int:
    return int(page.locator("#total input").input_value())


def average(page: Page) -> str:
    return page.locator("#average").get_by_role("textbox").input_value()


def status(page: Page) -> str:
    return page.locator("#status").inner_text().strip()


def saved_id(page: Page) -> int:
    """The review id the confirmation names, 0 when there is none."""
    m = re.search(r"review #(\d+) was saved", status(page))
    return int(m.group(1)) if m else 0


def wait_saved(page: Page, after: int = 0) -> int:
    """Wait for a confirmation naming a review newer than `after`; return its id.

    Ids only grow, and the old text can linger while Gradio shows its progress
    timer in the same element, so waiting for "the text changed" is not enough."""
    page.wait_for_function(
        """([after]) => {
               const m = document.querySelector('#status')?.innerText.match(/review #(\\d+) was saved/);
               return m && Number(m[1]) > after;
           }""", arg=[after])
    return saved_id(page)


def submit_and_wait(page: Page) -> int:
    before = saved_id(page)
    page.locator("#submit").click()
    return wait_saved(page, before)


def error_toast(page: Page) -> str:
    toast = page.locator("[data-testid=toast-text]").last
    expect(toast).to_be_visible()
    return toast.inner_text().strip()


def table_rows(page: Page, elem_id: str = "latest") -> list[list[str]]:
    """The rows the Dataframe shows, as the text a person reads."""
    return page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} [role=row].virtual-row`)].map(
               row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim()))""",
        elem_id)


def wait_top_row(page: Page, column: int, text: str, elem_id: str = "latest") -> list[str]:
    expect(page.locator(f"#{elem_id} [data-testid=cell-0-{column}]")).to_have_text(text)
    return table_rows(page, elem_id)[0]


def shown_reviews(page: Page) -> list[dict]:
    """The public list as a person reads it: name (as shown), stars (from the screen-reader text),
    comment and the time's machine-readable UTC value (the visible text is the visitor's local time)."""
    return page.evaluate("""() => [...document.querySelectorAll('#latest li.review')].map(li => ({
        created_at: li.querySelector('time').getAttribute('datetime'),
        when: li.querySelector('time').textContent,
        name: li.querySelector('.who').textContent,
        rating: Number(li.querySelector('.stars').getAttribute('aria-label').match(/Rated (\\d)/)[1]),
        comments: li.querySelector('.comment')?.textContent ?? '',
    }))""")


def wait_top_review(page: Page, data_dir: Path, review_id: int) -> dict:
    """Wait until the list's first review is `review_id` (known by its time: the page shows no ids)."""
    created_at = db_created_at(data_dir, review_id)
    expect(page.locator("#latest li.review time").first).to_have_attribute("datetime", created_at)
    return shown_reviews(page)[0]


def chart_counts(page: Page) -> dict[int, int]:
    """Reviews per rating, read from the bars' accessible labels (once the chart is drawn)."""
    expect(page.locator("#chart [aria-roledescription=bar]")).to_have_count(5)
    labels = page.locator("#chart [aria-roledescription=bar]").evaluate_all(
        "bars => bars.map(b => b.getAttribute('aria-label'))")
    counts = {}
    for label in labels:
        m = re.fullmatch(r"rating: (\d); reviews: (\d+)", label or "")
        if m:
            counts[int(m.group(1))] = int(m.group(2))
    return counts


def wait_chart(page: Page, expected: dict[int, int]) -> None:
    expect(page.locator("#chart [aria-roledescription=bar]")).to_have_count(5)
    for rating, n in expected.items():
        expect(page.locator(f'#chart [aria-label="rating: {rating}; reviews: {n}"]')).to_have_count(1)


def injected_elements(page: Page) -> dict:
    """Elements hostile text would have created, anywhere on the page, and the flag its script would set."""
    return page.evaluate("""() => ({
        pwned: window.__pwned ?? null,
        img: [...document.querySelectorAll('img')].filter(i => /(^|\\/)x$/.test(i.getAttribute('src') || '')).length,
        onerror: document.querySelectorAll('[onerror]').length,
        script: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('__pwned')).length,
        links: [...document.querySelectorAll('a')].filter(a => /evil|javascript:/i.test(a.getAttribute('href') || '')).length,
        bold: [...document.querySelectorAll('b, strong')].filter(b => /Mallory|shout/.test(b.textContent)).length,
        iframe: document.querySelectorAll('iframe').length,
    })""")


def login(page: Page, url: str, password: str, user: str = ADMIN_USER) -> None:
    """Fill Gradio's login form at /admin/ and press Login."""
    page.goto(url + "/admin/")
    page.get_by_role("textbox", name="username").fill(user)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
