"""The public page: the form, the latest reviews, the totals and the rating bars.

Handlers only read and write the local store. Every rule about what may be
stored lives in `shared.reviews.validate`, so a call through Gradio's HTTP API
(`/gradio_api/call/add_review`) meets exactly the same checks as the page.
Spam checks are `web.bot_guard`'s: the page sends two hidden fields the API
does not have (see that module for what each path is checked for).

The page and the API are two front doors to one `submit_review`:
- the page's submit answers a refusal with one message beside the form and marks the
  field at fault, leaving every other part of the page as it was (a gr.Error would put
  an "Error" badge over every output);
- the API (`gr.api`, no components) answers a refusal as an error, as API clients expect.

The page is kept light for a cheap phone on a slow network: Textbox, Button and HTML are
the only components (no plotting library, no Markdown and its code highlighter) and the
theme uses the system's fonts (see `THEME`, bench/page_weight.py).
"""

# No `from __future__ import annotations` here: gr.api reads the API's types from the
# handlers' annotations, and the number of outputs from the return annotation as a tuple.

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import gradio as gr

from shared.config import Config
from shared.db import Store, Summary, read_transaction
from shared.logs import q
from shared.reviews import (HIGHEST, LOWEST, MAX_COMMENTS_CHARS, MAX_NAME_CHARS, RANGE_TEXT, RATINGS, InvalidReview,
                            validate)
from web import bot_guard, charts, form_state, rating as rating_control, review_list, style
from web.form_state import closed_html, read_form_state
from web.ratelimit import RateLimiter

log = logging.getLogger("web.app")

LATEST_LIMIT = 10
# Every API call is a new Gradio session, and Gradio keeps the state of the
# last 10,000 by default (~40 KB each: +41 MiB per 1000 submits, see
# bench/web_rss.py). The form keeps no per-session state worth that.
SESSION_CAPACITY = 100
NAME_LABEL = "Name (optional)"
NAME_LABEL_HIDDEN = "Name (optional, not shown publicly)"
NAME_INFO = "Leave it empty to stay anonymous."
COMMENTS_LABEL = "Comments (optional)"
COMMENTS_INFO = "What works well? What should we change?"
SAVED_MESSAGE = "Thank you! Your review #{id} was saved."
PENDING_MESSAGE = ("Thank you! Your review #{id} was received. Reviews here are checked before they are "
                   "published, so it will appear in the list once the owner has approved it.")
RATE_LIMITED_MESSAGE = "Too many reviews from you in the last minute (at most {n}). Please wait a minute and try again."
STORAGE_ERROR_MESSAGE = "Sorry, your review could not be saved right now (storage problem). Please try again later."
WRONG_INPUT_COUNT_MESSAGE = "This call needs {n} inputs (see /gradio_api/info)."
# System fonts: the default theme downloads Source Sans Pro (and IBM Plex Mono for code) on
# every cold load, 2-4 requests a phone on 3G waits for; every system has a readable sans.
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
PAGE_CSS = """
#form-message .form-error { color: #b91c1c; font-weight: 600; margin: 8px 0 0; }
.dark #form-message .form-error { color: #fca5a5; }
#form-message .form-ok { color: var(--body-text-color); margin: 8px 0 0; }
#intro h1 { font-size: 1.6em; margin: 0 0 4px; }
#intro p { margin: 0 0 8px; }
#latest-heading { font-size: 1.25em; margin: 16px 0 0; }
.totals { display: flex; gap: 24px; flex-wrap: wrap; margin-bottom: 8px; }
.totals p { margin: 0; color: var(--body-text-color); }
.totals strong { font-size: 1.3em; margin-inline-start: 6px; }
#name [aria-invalid=true], #comments [aria-invalid=true] { border-color: #b91c1c !important; }
"""
# Passed to mount_gradio_app (Gradio 6 takes theme, css and js there, not in Blocks).
CSS = style.CSS + review_list.CSS + rating_control.CSS + charts.CSS + form_state.CSS + PAGE_CSS + bot_guard.CSS
JS = f"() => {{ ({style.JS})(); ({bot_guard.JS})(); }}"


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)


class Refused(Exception):
    """A submit that is not stored; `message` is for the person, `field` the input at fault (if any)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Overview:
    latest_html: str
    summary: Summary


def quiet_input_count_check(demo: gr.Blocks) -> gr.Blocks:
    """Gradio answers a call with too few inputs by raising an error whose text holds every
    submitted value, and prints it with a traceback to web.err.log: reviews do not belong in logs.
    Same check, a message without the values, and no traceback."""
    def validate_inputs(block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            raise gr.Error(WRONG_INPUT_COUNT_MESSAGE.format(n=len(block_fn.inputs)), print_exception=False)
    demo.validate_inputs = validate_inputs  # type: ignore[method-assign]
    return demo


def average_text(summary: Summary) -> str:
    if summary.average is None:
        return "No reviews yet"
    return f"{summary.average:.2f} / {HIGHEST}"


def saved_message(config: Config, review_id: int) -> str:
    """What the visitor reads after a successful submit (pre-moderation: not public yet)."""
    return (PENDING_MESSAGE if config.premoderation else SAVED_MESSAGE).format(id=review_id)


INTRO = "<h1>Tell us what you think</h1><p>Your rating and comments help us improve.</p>"


def intro_html(notice: str = "") -> str:
    """The page's heading, and the owner's notice while the form is closed."""
    return INTRO + (f'<div id="form-closed">{notice}</div>' if notice else "")


def board_html(latest_html: str, summary: Summary | None) -> str:
    """The totals and bars, then the latest reviews (ids `overview` and `latest` for styles and tests)."""
    totals = overview_html(summary) if summary is not None else ""
    return (f'<div id="overview">{totals}</div>'
            f'<h2 id="latest-heading">Latest reviews</h2><div id="latest">{latest_html}</div>')


def overview_html(summary: Summary) -> str:
    """The totals and the five bars, as text a screen reader reads in order."""
    noun = "review" if summary.total == 1 else "reviews"
    return ('<div class="totals">'
            f'<p><span class="total-label">Total reviews</span> <strong id="total">{summary.total:,}</strong>'
            f'<span class="sr-only"> {noun}</span></p>'
            f'<p><span class="total-label">Average rating</span> <strong id="average">{average_text(summary)}</strong></p>'
            '</div>' + charts.rating_bars(summary.counts, elem_id="chart"))


def status_html(message: str, *, field: str | None = None, ok: bool = False) -> str:
    """The line beside the submit button. Only our own messages: never the person's text."""
    if ok:
        return f'<p class="form-ok">{review_list.escape(message)}</p>'
    marker = f' data-field="{field}"' if field in ("name", "rating", "comments") else ""
    return f'<p class="form-error"{marker}><span class="sr-only">Error: </span>{review_list.escape(message)}</p>'


# The status region: a polite live region that exists before its first message, so a screen
# reader announces "Thank you" as it does an error. Its JS marks the field a message is about
# (aria-invalid, aria-describedby) and moves focus there, and clears the marks on the next answer.
STATUS_TEMPLATE = '<div id="form-message" role="status" aria-live="polite" aria-atomic="true">${value}</div>'
STATUS_JS = r"""
const find = {
  name: () => document.querySelector('#name input, #name textarea'),
  comments: () => document.querySelector('#comments textarea, #comments input'),
  rating: () => document.querySelector('#rating [role=radiogroup]'),
};
function describedBy(el, on) {
  const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter((id) => id && id !== 'form-message');
  if (on) ids.push('form-message');
  if (ids.length) el.setAttribute('aria-describedby', ids.join(' ')); else el.removeAttribute('aria-describedby');
}
function mark() {
  const bad = element.querySelector('[data-field]')?.dataset.field;
  for (const [key, get] of Object.entries(find)) {
    const el = get();
    if (!el) continue;
    if (key === bad) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid');
    describedBy(el, key === bad);
  }
  if (bad === 'rating') document.querySelector('#rating input:checked, #rating input')?.focus();
  else if (bad) find[bad]()?.focus();
}
watch('value', mark);
"""


def form_inputs(config: Config) -> tuple[gr.Textbox, gr.HTML, gr.Textbox]:
    """The form's three inputs (name, rating, comments), in the order the handlers take them."""
    name = gr.Textbox(label=NAME_LABEL_HIDDEN if config.hide_names else NAME_LABEL, info=NAME_INFO,
                      lines=1, max_lines=1, max_length=MAX_NAME_CHARS, elem_id="name")
    rating = gr.HTML(None, html_template=rating_control.TEMPLATE, js_on_load=rating_control.JS,
                     elem_id="rating", padding=False, apply_default_css=False)
    comments = gr.Textbox(label=COMMENTS_LABEL, info=COMMENTS_INFO, lines=5, max_lines=12,
                          max_length=MAX_COMMENTS_CHARS, elem_id="comments")
    return name, rating, comments


def build_app(config: Config, store: Store) -> gr.Blocks:
    limiter = RateLimiter(config.rate_limit_per_minute)
    guard = bot_guard.BotGuard(config, store)  # spam checks: see web/bot_guard.py

    def read_overview() -> Overview:
        with read_transaction(store.conn()):  # the total and the list agree
            summary = store.summary().public()  # hidden and pending reviews count nowhere here
            rows = store.latest(LATEST_LIMIT)
        return Overview(review_list.render(rows, config.hide_names), summary)

    def submit_review(name, rating, comments, request: gr.Request | None,
                      page: bot_guard.PageFields | None = None) -> int:
        """Validate, rate-limit and store one review; its id, or Refused with a message."""
        state = read_form_state(store.conn())
        if state.closed:
            raise Refused(state.message)
        try:
            review = validate(name, rating, comments)
        except InvalidReview as exc:
            raise Refused(str(exc), exc.field) from None
        client = request.client.host if request is not None and request.client else "unknown"
        if not limiter.allow(client):
            log.info("rate limited client=%s", q(client))
            raise Refused(RATE_LIMITED_MESSAGE.format(n=config.rate_limit_per_minute))
        try:
            return guard.admit(review, lambda: store.add(review, pending=config.premoderation), client=client, page=page)
        except bot_guard.Refused as exc:
            raise Refused(str(exc)) from None  # logged and counted by the guard
        except sqlite3.Error as exc:
            log.error("could not store review error=%s", exc)
            raise Refused(STORAGE_ERROR_MESSAGE) from None  # logged above

    # ---- the page's handlers: answers go to the page's own outputs

    def page_board() -> str:
        data = read_overview()
        return board_html(data.latest_html, data.summary)

    def page_load() -> tuple:
        """The first draw: the list and totals, and the form or the owner's "closed" notice."""
        state = read_form_state(store.conn())
        return (page_board(), intro_html(closed_html(state)), gr.Column(visible=not state.closed), guard.issue())

    def page_submit(name, rating, comments, trap, token, request: gr.Request) -> tuple:
        try:
            review_id = submit_review(name, rating, comments, request, bot_guard.PageFields(trap, token))
        except Refused as exc:
            # Only the message changes: what was typed stays, the list and totals stay.
            return (status_html(exc.message, field=exc.field), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                    gr.skip())
        # A fresh token: one review per token (web/bot_guard.py).
        return (status_html(saved_message(config, review_id), ok=True), "", None, "", page_board(), guard.issue())

    # ---- the HTTP API: the same outputs as before the page was rebuilt, refusals as errors

    def add_review(name: str | None, rating: int | None, comments: str | None,
                   request: gr.Request) -> tuple[str, str, int | None, str, str, int, str, dict]:
        """Store one review. Returns the confirmation, the cleared form (name, rating, comments),
        the latest reviews (HTML), the total, the average and the reviews per rating."""
        try:
            review_id = submit_review(name, rating, comments, request)
        except Refused as exc:
            # Expected refusals: no traceback in web.err.log (a bot sending bad input would fill it).
            raise gr.Error(exc.message, duration=None, print_exception=False) from None
        return (saved_message(config, review_id), "", None, "", *overview())

    def overview() -> tuple[str, int, str, dict]:
        """The latest reviews (HTML), the total, the average and the reviews per rating."""
        data = read_overview()
        counts = {"columns": ["rating", "reviews"],
                  "data": [[str(r), n] for r, n in zip(RATINGS, data.summary.counts)]}
        return data.latest_html, data.summary.total, average_text(data.summary), counts

    with gr.Blocks(title="Feedback") as demo:
        # Few components, each drawn by code the page loads anyway: every gr.HTML costs a template
        # compile in the browser, which a phone's slow CPU feels (bench/page_weight.py).
        intro = gr.HTML(intro_html(), elem_id="intro", padding=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_id="form-area") as form_area:
                name, rating, comments = form_inputs(config)
                # Spam checks' hidden fields: a trap people never see, and the load-time token.
                trap = gr.Textbox(label=bot_guard.TRAP_LABEL, max_length=200, elem_id=bot_guard.TRAP_ELEM_ID)
                token = gr.Textbox(visible=False, elem_id=bot_guard.TOKEN_ELEM_ID)
                submit = gr.Button("Submit feedback", variant="primary", elem_id="submit")
                status = gr.HTML("", html_template=STATUS_TEMPLATE, js_on_load=STATUS_JS, elem_id="status",
                                 padding=False)
            with gr.Column(scale=2, min_width=300):
                # The totals, the bars and the latest reviews. review_list escapes every
                # user-supplied character on the server; the JS only rewrites the times.
                board = gr.HTML(board_html(review_list.LOADING_HTML, None), js_on_load=review_list.TIME_JS,
                                elem_id="board", padding=False)

        outputs = [status, name, rating, comments, board]
        # Progress shows on the status line only: the rest of the page stays as it is until the answer.
        page: dict[str, Any] = dict(api_visibility="private", concurrency_limit=8, concurrency_id="add_review",
                    show_progress="minimal", show_progress_on=[status])
        submit.click(page_submit, [name, rating, comments, trap, token], [*outputs, token], **page)
        # Shift+Enter in the comments sends the form (Enter there makes a new line); Enter in the
        # name does nothing (a phone's Go key must not send a half-filled form).
        comments.submit(page_submit, [name, rating, comments, trap, token], [*outputs, token], **page)
        demo.load(page_load, None, [board, intro, form_area, token], api_visibility="private",
                  concurrency_limit=8, show_progress="hidden")
        gr.api(add_review, api_name="add_review", concurrency_limit=8, concurrency_id="add_review")
        _describe_rating(demo)
        gr.api(overview, api_name="overview", concurrency_limit=8)
    demo.state_session_capacity = SESSION_CAPACITY
    return quiet_input_count_check(demo)


def _describe_rating(demo: gr.Blocks) -> None:
    """Name the API's inputs, and describe the API's rating as the integers `validate` accepts (1-5). No "enum": gradio_client
    prints any enum as quoted strings."""
    inputs: list[Any] = list(next(fn for fn in demo.fns.values() if fn.api_name == "add_review").inputs)
    for component, label in zip(inputs, ("Name", "Rating", "Comments")):
        component.label = label
    rating_input = inputs[1]
    rating_input._api_info = {"type": "integer", "minimum": LOWEST, "maximum": HIGHEST,
                              "title": "Rating", "description": f"a whole number from {RANGE_TEXT}"}
