"""The public page: the form, the latest reviews, the totals and the rating chart.

Handlers only read and write the local store. Every rule about what may be
stored lives in `shared.reviews.validate`, so a call through Gradio's HTTP API
(`/gradio_api/call/add_review`) meets exactly the same checks as the page.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TypeVar

import gradio as gr
import pandas as pd

from shared.config import Config
from shared.db import Store, Summary, read_transaction
from shared.logs import q
from shared.reviews import MAX_COMMENTS_CHARS, MAX_NAME_CHARS, InvalidReview, validate
from web import review_list, style
from web.ratelimit import RateLimiter

log = logging.getLogger("web.app")

LATEST_LIMIT = 10
# Every API call is a new Gradio session, and Gradio keeps the state of the
# last 10,000 by default (~40 KB each: +41 MiB per 1000 submits, see
# bench/web_rss.py). The form keeps no per-session state worth that.
SESSION_CAPACITY = 100
NAME_LABEL = "Name (optional)"
NAME_LABEL_HIDDEN = "Name (optional, not shown publicly)"
SAVED_MESSAGE = "Thank you! Your review #{id} was saved."
PENDING_MESSAGE = ("Thank you! Your review #{id} was received. Reviews here are checked before they are "
                   "published, so it will appear in the list once the owner has approved it.")
RATE_LIMITED_MESSAGE = "Too many reviews from you in the last minute (at most {n}). Please wait a minute and try again."
# Passed to mount_gradio_app (Gradio 6 takes css there, not in Blocks).
CSS = style.CSS + review_list.CSS
JS = style.JS
STORAGE_ERROR_MESSAGE = "Sorry, your review could not be saved right now (storage problem). Please try again later."


def _as_sent(component: _C) -> _C:
    """Hand the handler exactly what the client sent, so `validate` judges it.

    Gradio's own preprocessing would turn a JSON list or number into text
    (`str(["x"])` stored as "['x']") and answer a bad rating with its own list
    of choices. An instance attribute, not a subclass: Gradio writes a .pyi
    file next to any module that subclasses a component."""
    component.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return component


RATINGS = [1, 2, 3, 4, 5]
_C = TypeVar("_C", bound=gr.components.Component)
WRONG_INPUT_COUNT_MESSAGE = "This call needs {n} inputs (see /gradio_api/info)."


def _integer_choices(radio: gr.Radio) -> gr.Radio:
    """Describe the rating as the integers `validate` accepts: Gradio's Radio always says
    "string", so /gradio_api/info offered Literal['1'..'5'], and a client that sent "3" was refused.
    No "enum" here: gradio_client prints any enum as quoted strings again."""
    radio.api_info = lambda: {"type": "integer", "minimum": RATINGS[0], "maximum": RATINGS[-1],  # type: ignore[method-assign]
                              "title": "Rating", "description": "a whole number from 1 to 5"}
    return radio


def quiet_input_count_check(demo: gr.Blocks) -> gr.Blocks:
    """Gradio answers a call with too few inputs by raising an error whose text holds every
    submitted value, and prints it with a traceback to web.err.log: reviews do not belong in logs.
    Same check, a message without the values, and no traceback."""
    def validate_inputs(block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            raise gr.Error(WRONG_INPUT_COUNT_MESSAGE.format(n=len(block_fn.inputs)), print_exception=False)
    demo.validate_inputs = validate_inputs  # type: ignore[method-assign]
    return demo


def _chart(summary: Summary) -> pd.DataFrame:
    return pd.DataFrame({"rating": [str(r) for r in range(1, 6)], "reviews": list(summary.counts)})


def _average(summary: Summary) -> str:
    if summary.average is None:
        return "No reviews yet"
    return f"{summary.average:.2f} / 5"


def saved_message(config: Config, review_id: int) -> str:
    """What the visitor reads after a successful submit (pre-moderation: not public yet)."""
    return (PENDING_MESSAGE if config.premoderation else SAVED_MESSAGE).format(id=review_id)


def build_app(config: Config, store: Store) -> gr.Blocks:
    limiter = RateLimiter(config.rate_limit_per_minute)

    def overview() -> tuple:
        with read_transaction(store.conn()):  # the total and the list agree
            summary = store.summary().public()  # hidden and pending reviews count nowhere here
            rows = store.latest(LATEST_LIMIT)
        return (review_list.render(rows, config.hide_names), summary.total, _average(summary), _chart(summary))

    def add_review(name: str | None, rating: int | None, comments: str | None,
                   request: gr.Request) -> tuple:
        """Store one review and return the refreshed page data."""
        try:
            review = validate(name, rating, comments)
        except InvalidReview as exc:
            # Expected errors: the person sees the message; no traceback in web.err.log
            # (a bot sending bad input would otherwise fill it).
            raise gr.Error(str(exc), duration=None, print_exception=False) from None
        client = request.client.host if request is not None and request.client else "unknown"
        if not limiter.allow(client):
            log.info("rate limited client=%s", q(client))
            raise gr.Error(RATE_LIMITED_MESSAGE.format(n=config.rate_limit_per_minute), duration=None,
                           print_exception=False)
        try:
            review_id = store.add(review, pending=config.premoderation)
        except sqlite3.Error as exc:
            log.error("could not store review error=%s", exc)
            raise gr.Error(STORAGE_ERROR_MESSAGE, duration=None, print_exception=False) from None  # logged above
        # Clear the form; the outputs after it refresh the overview.
        return (saved_message(config, review_id), "", None, "", *overview())

    with gr.Blocks(title="Feedback") as demo:
        gr.Markdown("# Tell us what you think\nYour rating and comments help us improve.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                name = _as_sent(gr.Textbox(label=NAME_LABEL_HIDDEN if config.hide_names else NAME_LABEL,
                                  placeholder="e.g. Sam, or leave empty to stay anonymous",
                                  max_length=MAX_NAME_CHARS, elem_id="name"))
                rating = _integer_choices(_as_sent(gr.Radio(
                    label="How satisfied are you? (1 = not at all, 5 = very)",
                    choices=RATINGS, value=None, elem_id="rating")))
                comments = _as_sent(gr.Textbox(label="Comments (optional)", lines=6, max_length=MAX_COMMENTS_CHARS,
                                      placeholder="What works well? What should we change? "
                                                  "(Shift+Enter sends the form)",
                                      elem_id="comments"))
                submit = gr.Button("Submit feedback", variant="primary", elem_id="submit")
                status = gr.Markdown(elem_id="status")
            with gr.Column(scale=2, min_width=300):
                with gr.Row():
                    total = gr.Number(label="Total reviews", interactive=False, precision=0, elem_id="total")
                    average = gr.Textbox(label="Average rating", interactive=False, elem_id="average")
                chart = gr.BarPlot(x="rating", y="reviews", label="Reviews per rating", y_lim=[0, None],
                                   sort="x", elem_id="chart", height=220)
                gr.Markdown("## Latest reviews", elem_id="latest-heading")
                # A list, not a table: it reads on a phone. review_list escapes every
                # user-supplied character on the server; the JS only rewrites the times.
                table = gr.HTML(review_list.LOADING_HTML, js_on_load=review_list.TIME_JS,
                                elem_id="latest", padding=False)

        overview_outputs = [table, total, average, chart]
        submit.click(add_review, [name, rating, comments], [status, name, rating, comments, *overview_outputs],
                     api_name="add_review", concurrency_limit=8, concurrency_id="add_review",
                     show_progress="minimal")
        # Keyboard submit: Enter in the name field, Shift+Enter in the comments (Gradio's
        # multi-line rule), or Tab to the button and Enter/Space.
        for field in (name, comments):
            field.submit(add_review, [name, rating, comments], [status, name, rating, comments, *overview_outputs],
                         api_visibility="private", concurrency_limit=8, concurrency_id="add_review",
                         show_progress="minimal")
        demo.load(overview, None, overview_outputs, api_name="overview", concurrency_limit=8)
    demo.state_session_capacity = SESSION_CAPACITY
    return quiet_input_count_check(demo)
