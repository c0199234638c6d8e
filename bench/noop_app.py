"""A no-op twin of the form, the floor for bench/load.py: same add_review API, no database.

    GRADIO_SERVER_PORT=7861 .venv/bin/python bench/noop_app.py

Same inputs and outputs as web/app.py's add_review event (Textbox, Radio 1-5, Textbox ->
status Markdown, name, rating, comments, Dataframe, Number, Textbox, BarPlot), api_name
"add_review", concurrency_limit=8, launched like web/__main__.py (FastAPI +
gr.mount_gradio_app + uvicorn, the same body-size middleware). The handler does all the
real handler's work except the database: it validates the input and builds the two
DataFrames (10 fixed rows, 5 fixed bars) per call, so the difference to the real app is
the cost of the database (and of the rate limiter, off in the benchmarks).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402  (module level: the handler's `gr.Request` hint must resolve)
import pandas as pd  # noqa: E402

CONCURRENCY_LIMIT = int(os.environ.get("NOOP_CONCURRENCY_LIMIT", "8"))  # web/app.py uses 8
TABLE_HEADERS = ["id", "created_at", "name", "rating", "comments"]
ROWS = [(1000 - i, f"2025-01-01T12:00:{i:02d}.000Z", f"Person {i}", 1 + i % 5,
         "A fixed comment, about as long as a real one, so the payload has a realistic size.")
        for i in range(10)]
COUNTS = (80, 70, 150, 300, 400)


def build_app():
    from shared.reviews import InvalidReview, validate

    def add_review(name, rating, comments, request: gr.Request):
        try:
            validate(name, rating, comments)
        except InvalidReview as exc:
            raise gr.Error(str(exc), duration=None) from None
        table = pd.DataFrame(ROWS, columns=TABLE_HEADERS)
        chart = pd.DataFrame({"rating": [str(r) for r in range(1, 6)], "reviews": list(COUNTS)})
        total = sum(COUNTS)
        average = sum(r * n for r, n in zip(range(1, 6), COUNTS)) / total
        return ("Thank you! Your review #1000 was saved.", "", None, "", table, total, f"{average:.2f} / 5", chart)

    with gr.Blocks(title="Feedback (no-op)") as demo:
        gr.Markdown("# No-op twin of the feedback form (benchmark floor)")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                name = gr.Textbox(label="Name (optional)", max_length=100, elem_id="name")
                rating = gr.Radio(label="How satisfied are you?", choices=[1, 2, 3, 4, 5], value=None,
                                  elem_id="rating")
                comments = gr.Textbox(label="Comments (optional)", lines=6, max_length=5000, elem_id="comments")
                submit = gr.Button("Submit feedback", variant="primary", elem_id="submit")
                status = gr.Markdown(elem_id="status")
            with gr.Column(scale=2, min_width=300):
                with gr.Row():
                    total = gr.Number(label="Total reviews", interactive=False, precision=0, elem_id="total")
                    average = gr.Textbox(label="Average rating", interactive=False, elem_id="average")
                chart = gr.BarPlot(x="rating", y="reviews", label="Reviews per rating", y_lim=[0, None],
                                   sort="x", elem_id="chart", height=220)
                table = gr.Dataframe(headers=TABLE_HEADERS, label="Latest 10 reviews (newest first)",
                                     datatype=["number", "str", "str", "number", "str"],
                                     interactive=False, wrap=True, elem_id="latest")
        submit.click(add_review, [name, rating, comments], [status, name, rating, comments, table, total, average, chart],
                     api_name="add_review", concurrency_limit=CONCURRENCY_LIMIT, show_progress="minimal")
    return demo


def main() -> int:
    import uvicorn
    from fastapi import FastAPI

    from web.http_limits import BodySizeLimit

    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7861"))
    app = gr.mount_gradio_app(FastAPI(), build_app(), path="", footer_links=["api"])
    app.add_middleware(BodySizeLimit, max_bytes=256 * 1024)
    print(f"no-op app on http://{host}:{port} concurrency_limit={CONCURRENCY_LIMIT}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
