"""Accessibility of both pages, checked in a real chromium: axe-core plus what axe cannot see.

axe-core is the npm package (tests/package.json, pinned; `scripts/test` installs it into
tests/node_modules), injected into the page by Playwright. Every page (public, owner's, login),
light and dark, at 390 px (a phone) and 1280 px, must have no serious or critical violation.
Beyond axe: the public page's tab order, a visible focus on every stop, the live region, the
empty state, the clamped long comment and its toggle, and the phone layout of the list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shared import moderation
from shared.db import connect, transaction
from shared.store import Store
from shared.reviews import validate
from tests.apprunner import App
from tests.browser_fixtures import ARTIFACTS
from tests.browser_support import PASSWORD, login, open_form, shown_reviews

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
LONG_COMMENT = ("The checkout was fine. " * 20 + "\n") * 3 + "THE END OF THE LONG COMMENT"
WIDTHS = [(390, 844), (1280, 900)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with App(tmp_path_factory.mktemp("a11y") / "data", env={"ADMIN_PASSWORD": PASSWORD}) as a:
        yield a


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is not installed at {AXE_JS}: run `npm ci --prefix tests` (scripts/test does)")
    return AXE_JS.read_text()


def add_reviews(app: App, reviews: list[tuple[str, int, str]]) -> None:
    store = Store(app.data_dir / "reviews.db")
    try:
        for name, rating, comments in reviews:
            store.add(validate(name, rating, comments))
    finally:
        store.close()


def add_moderated(app: App) -> None:
    """A hidden review, one waiting for approval and an owner's reply: their marks on the owner's
    page and the reply on both pages are checked by axe too."""
    store = Store(app.data_dir / "reviews.db")
    try:
        hidden = store.add(validate("Hal", 1, "Hidden from the public page."))
        store.add(validate("Pia", 4, "Waiting for approval."), pending=True)
        moderation.hide(store.conn(), [hidden])
        first = store.conn().execute("SELECT MIN(id) FROM reviews").fetchone()[0]
        moderation.reply(store.conn(), first, "Thank you, we are glad it was quick.")
    finally:
        store.close()


def axe_violations(page: Page, axe_source: str) -> list[dict]:
    """Run axe-core on the whole page (WCAG 2.x A/AA and best practices); the serious and critical ones."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]


@pytest.fixture
def no_reviews(app):
    """The shared app's store emptied for this test, whichever test ran before (the later ones add
    the reviews they need); the delete triggers keep the totals and the index in step."""
    conn = connect(app.data_dir / "reviews.db")
    try:
        with transaction(conn):
            conn.execute("DELETE FROM reviews")
    finally:
        conn.close()


def test_empty_list_invites_the_first_review(app, page, no_reviews):
    """Before any review: an invitation, not an empty table."""
    open_form(page, app.url)
    empty = page.locator("#latest .empty")
    expect(empty).to_contain_text("No reviews yet")
    link = empty.get_by_role("link", name="choose a rating")
    expect(link).to_be_visible()
    expect(page.locator("#latest li.review")).to_have_count(0)


def _open(page: Page, app: App, which: str) -> None:
    """Open one of the three pages, drawn and filled with its data."""
    if which == "public":
        open_form(page, app.url)
        expect(page.locator("#latest li.review").first).to_be_visible()
    elif which == "login":
        page.goto(app.url + "/admin/")
        expect(page.get_by_label("Password")).to_be_visible()
    else:
        login(page, app.url, PASSWORD)
        expect(page.locator("#admin-list tr[data-review]").first).to_be_visible()
        expect(page.locator("#admin-distribution .bar-row")).to_have_count(5)
        for section in ("Share the form", "Open or close the form"):  # the closed parts too
            page.get_by_role("button", name=re.compile(section)).click()
        expect(page.locator("#admin-qr img")).to_be_visible()
        expect(page.locator("#admin-form-state")).to_contain_text("The form is")


@pytest.mark.parametrize("which", ["public", "owner", "login"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width,height", WIDTHS)
def test_every_page_has_no_serious_axe_violations(app, browser, axe_source, which, scheme, width, height):
    """Public page, owner's page and login, in light and dark mode, on a phone and a laptop; each
    screenshot lands in test-artifacts/ (a11y-<page>-<scheme>-<width>px.png)."""
    if not shown_reviews_count(app):
        add_reviews(app, [("Ada", 5, "Clear and quick."), ("", 2, LONG_COMMENT), ("Bo", 3, ""),
                          ("דנה", 4, "שירות מצוין, תודה")])
        add_moderated(app)
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        _open(page, app, which)
        if which == "owner":  # the moderation marks and the reply are on the page axe checks
            expect(page.locator("#admin-list .mod-mark")).to_have_count(2)
            expect(page.locator("#admin-list .owner-reply")).to_have_count(1)
            expect(page.locator("#mod-ids")).to_be_visible()
        elif which == "public":
            expect(page.locator("#latest .reply")).to_have_count(1)
        if which != "login":  # Gradio follows the system's scheme with a "dark" class
            assert page.evaluate("!!document.querySelector('.dark')") == (scheme == "dark")
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"a11y-{which}-{scheme}-{width}px.png", full_page=True)
        violations = axe_violations(page, axe_source)
        assert not violations, json.dumps(violations, indent=1)
    finally:
        context.close()


def test_success_is_announced_by_a_polite_live_region(app, page):
    """The status line is a polite live region from the start (so "Thank you" is announced like an
    error), as the accessibility tree shows it."""
    open_form(page, app.url)
    expect(page.locator("#form-message")).to_have_attribute("aria-live", "polite")
    assert page.locator("#status").aria_snapshot().strip() == "- status"  # empty, but already there
    page.get_by_label("Name (optional)").fill("Live Lia")
    page.locator("#rating").get_by_role("radio", name="5", exact=True).check()
    page.locator("#submit").click()
    expect(page.locator("#form-message")).to_contain_text("was saved")
    snapshot = page.locator("#status").aria_snapshot()
    assert re.fullmatch(r'- status:\s*- paragraph: "?Thank you! Your review #\d+ was saved\."?\s*', snapshot.strip()), snapshot
    # A refusal is announced by the same region, and names the field at fault.
    page.locator("#submit").click()
    expect(page.locator("#form-message")).to_contain_text("choose a rating")
    assert "Error: Please choose a rating from 1 to 5." in page.locator("#status").aria_snapshot()


def shown_reviews_count(app: App) -> int:
    store = Store(app.data_dir / "reviews.db")
    try:
        return store.summary().total
    finally:
        store.close()


def test_tab_order_follows_the_form_and_focus_is_visible(app, page):
    """Name, the rating group, comments, the button: in reading order, each with a visible focus."""
    open_form(page, app.url)
    page.locator("#name").get_by_role("textbox").focus()
    stops = []
    for _ in range(4):
        stops.append(page.evaluate("""() => {
            const el = document.activeElement;
            const s = getComputedStyle(el);
            const labelled = el.labels?.[0]?.innerText || el.getAttribute('aria-label') || el.innerText;
            return {id: el.closest('#name, #rating, #comments, #submit')?.id, tag: el.tagName,
                    name: (labelled || '').trim().split('\\n')[0],
                    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
                    shadow: s.boxShadow !== 'none', border: s.borderColor};
        }"""))
        page.keyboard.press("Tab")
    ids = [s["id"] for s in stops[:4]]
    # The rating is one stop (its first option while none is chosen), as the radio-group pattern says.
    assert ids == ["name", "rating", "comments", "submit"], stops
    assert stops[1]["name"] == "1", stops
    # Every stop has a focus indicator: an outline or a focus ring (box-shadow).
    assert all(s["outline"] or s["shadow"] for s in stops), stops


def test_every_field_has_a_label(app, page):
    open_form(page, app.url)
    expect(page.get_by_label("Name (optional)")).to_be_editable()
    expect(page.get_by_label("Comments (optional)")).to_be_editable()
    # The five ratings are one group named by its question (web/style.py names it for Gradio).
    group = page.get_by_role("radiogroup", name="How satisfied are you?")
    expect(group).to_have_count(1)
    expect(group.get_by_role("radio")).to_have_count(5)
    expect(page.get_by_role("button", name="Submit feedback")).to_be_enabled()


def test_long_comment_is_clamped_with_a_way_to_read_the_rest(app, browser):
    if not shown_reviews_count(app):
        add_reviews(app, [("", 2, LONG_COMMENT)])
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_form(page, app.url)
        long = page.locator("#latest li.review", has=page.locator("details.more")).first
        comment = long.locator(".comment")
        expect(comment).to_be_visible()
        clamped = comment.evaluate("el => el.scrollHeight > el.clientHeight + 2")
        assert clamped, "a long comment takes the whole screen"
        assert comment.evaluate("el => el.textContent") == LONG_COMMENT  # clamped for the eye only
        long.get_by_text("Read the whole comment").click()
        expect(long.get_by_text("Show less")).to_be_visible()
        assert comment.evaluate("el => el.scrollHeight <= el.clientHeight + 2"), "the toggle shows the rest"
    finally:
        context.close()


def test_phone_list_has_no_narrow_columns_and_no_sideways_scroll(app, browser):
    if not shown_reviews_count(app):
        add_reviews(app, [("Ada", 5, "Clear and quick.")])
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_form(page, app.url)
        expect(page.locator("#latest li.review").first).to_be_visible()
        scroll_width, client_width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll_width <= client_width, "the page scrolls sideways at 390 px"
        widths = page.locator("#latest li.review").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
        # One column, the width of the screen less the page margins: a word always fits.
        assert widths and min(widths) >= 300, widths
        # Times read as people read them, not as an ISO timestamp; no internal ids.
        for review in shown_reviews(page):
            assert "T" not in review["when"] and "Z" not in review["when"], review
        page.screenshot(path=ARTIFACTS / "list-390px.png", full_page=True) if ARTIFACTS.exists() else None
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_filled_stars_stand_out_from_empty_ones_in_both_schemes(app, browser, scheme):
    """Filled stars contrast with the page and are brighter (dark) or darker (light) than the empty ones;
    names and comments lay out right-to-left text by themselves (dir=auto)."""
    if not shown_reviews_count(app):
        add_reviews(app, [("Ada", 3, "Clear and quick.")])
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    try:
        page = context.new_page()
        open_form(page, app.url)
        review = page.locator("#latest li.review", has=page.locator(".stars .off")).first
        colours = review.evaluate("""li => {
            const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
            const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                                         return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
            let bg = null;
            for (let el = li; el && !bg; el = el.parentElement) {
                const c = getComputedStyle(el).backgroundColor;
                if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') bg = c;
            }
            bg = bg || 'rgb(255, 255, 255)';
            const on = lum(rgb(getComputedStyle(li.querySelector('.stars')).color));
            const off = lum(rgb(getComputedStyle(li.querySelector('.stars .off')).color));
            const back = lum(rgb(bg));
            const ratio = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            return {on, off, back, filled_vs_page: ratio(on, back), empty_vs_page: ratio(off, back)};
        }""")
        assert colours["filled_vs_page"] >= 3 and colours["empty_vs_page"] >= 3, colours
        if scheme == "dark":
            assert colours["on"] > colours["off"], colours  # filled brighter than empty
        else:
            assert colours["on"] < colours["off"], colours  # filled darker than empty
        for part in (".comment", ".who:not(.anon)"):
            for el in page.locator(f"#latest li.review {part}").all():
                assert el.get_attribute("dir") == "auto", part
    finally:
        context.close()
