"""The page-weight baseline: the smallest Gradio 6.31 app (one Textbox, one Button), defaults everywhere.

    GRADIO_SERVER_PORT=7870 .venv/bin/python bench/minimal_gradio_app.py

Served the plainest way (`gr.mount_gradio_app` on a bare FastAPI app, uvicorn's defaults), so
bench/page_weight.py compares the form with what any Gradio page costs a visitor.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build():
    import gradio as gr
    from fastapi import FastAPI

    with gr.Blocks(title="Minimal") as demo:
        box = gr.Textbox(label="Text", elem_id="text")
        button = gr.Button("Send", elem_id="send")
        button.click(lambda s: s, box, box)
    return gr.mount_gradio_app(FastAPI(), demo, path="")


def main() -> int:
    import uvicorn

    port = int(os.environ.get("GRADIO_SERVER_PORT", "7870"))
    uvicorn.run(build(), host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
