"""What a person does on the form and sees on it, in Playwright terms.

Selectors rely on the elem_ids set in web/app.py and web/admin.py and on what
Gradio 6 renders for them: the public list is `#latest li.review` (web/review_list.py),
the rating is a native radio group in `#rating`, the totals are `#total` and `#average`, the bars are
`#chart .bar-row[data-rating][data-count]`, a refused submit's message is `#form-message .form-error`
(the owner's page still uses toasts: `[data-testid=toast-text]`).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from shared.db import connect

PASSWORD = "correct horse battery staple"


def db_count(data_dir: Path) -> int:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    finally:
        conn.close()


def db_rows(data_dir: Path) -> list[tuple]:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT id, name, rating, comments FROM reviews ORDER BY id").fetchall()
    finally:
        conn.close()


def db_created_at(data_dir: Path, review_id: int) -> str:
    conn = connect(data_dir / "reviews.db", readonly=True)
    try:
        return conn.execute("SELECT created_at FROM reviews WHERE id = ?", (review_id,)).fetchone()[0]
    finally:
        conn.close()


def open_form(page: Page, url: str) -> None:
    """Open the public page and wait until the overview has loaded.

    The list says "Loading" until the load event fills it."""
    page.goto(url + "/")
    # A cold Gradio page on a busy machine (7 suites on 2 cores) can take more than expect's 5 s.
    expect(page.locator("#latest li.review, #latest .empty").first).to_be_visible(timeout=20_000)
    expect(page.locator("#average")).to_have_text(re.compile(r"(/ 5|No reviews yet)$"))


def fill_review(page: Page, name: str, rating: int | None, comments: str) -> None:
    name_box(page).fill(name)
    if rating is not None:
        page.locator("#rating").get_by_role("radio", name=str(rating), exact=True).check()
    page.locator("#comments").get_by_role("textbox").fill(comments)


def name_box(page: Page):
    return page.locator("#name").get_by_role("textbox")


def comments_box(page: Page):
    return page.locator("#comments").get_by_role("textbox")


def total(page: Page) -> int:
    return int(page.locator("#total").inner_text().replace(",", ""))


def average(page: Page) -> str:
    return page.locator("#average").inner_text()


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


def form_error(page: Page) -> str:
    """The message a refused submit shows beside the form (without the screen-reader prefix)."""
    message = page.locator("#form-message .form-error")
    expect(message).to_be_visible()
    return message.inner_text().replace("Error:", "", 1).strip()


def error_toast(page: Page) -> str:
    toast = page.locator("[data-testid=toast-text]").last
    expect(toast).to_be_visible()
    return toast.inner_text().strip()


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


def chart_counts(page: Page, chart: str = "#chart") -> dict[int, int]:
    """Reviews per rating, read from the bars' rows (the count is the text beside each bar)."""
    expect(page.locator(f"{chart} .bar-row")).to_have_count(5)
    rows = page.locator(f"{chart} .bar-row").evaluate_all(
        "rows => rows.map(r => [r.dataset.rating, r.querySelector('.bar-count').firstChild.textContent])")
    return {int(rating): int(n.replace(",", "")) for rating, n in rows}


def wait_chart(page: Page, expected: dict[int, int], chart: str = "#chart") -> None:
    for rating, n in expected.items():
        expect(page.locator(f'{chart} .bar-row[data-rating="{rating}"] .bar-count')).to_have_text(
            re.compile(rf"^{n:,}\b"))


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


def login(page: Page, url: str, password: str, *, wait: bool = True) -> None:
    """Fill the owner's login form at /admin/ (a password, nothing else) and press Log in;
    with `wait`, until the owner's list has loaded (a cold Gradio page on a busy machine: 20 s)."""
    page.goto(url + "/admin/")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if wait:
        expect(page.locator("#admin-list [data-review], #admin-list .empty").first).to_be_visible(timeout=20_000)


def owner_rows(page: Page) -> list[dict]:
    """The owner's list as a person reads it (table or cards): id (if shown), time text, name, stars, comment."""
    return page.evaluate("""() => [...document.querySelectorAll('#admin-list tr[data-review]')].map(tr => ({
        id: tr.querySelector('.col-id')?.textContent ?? null,
        review: Number(tr.dataset.review),
        when: tr.querySelector('time').textContent,
        created_at: tr.querySelector('time').getAttribute('datetime'),
        name: tr.querySelector('.col-name').textContent,
        rating: Number(tr.querySelector('.stars').getAttribute('aria-label').match(/Rated (\\d)/)[1]),
        comments: tr.querySelector('.col-comment p').textContent,
    }))""")


def wait_owner_count(page: Page, text: str) -> None:
    expect(page.locator("#admin-count")).to_contain_text(text)
