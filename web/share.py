"""Sharing the form: its link, a QR code of it (PNG and SVG) and a snippet to embed it in a web page.

The link is the form's configured address (FEEDBACK_PUBLIC_URL, shared/config.py), never one
taken from a request. The embed is a plain iframe of that page: it only uses the routes the page itself uses
(web/http_limits.py), and the visitor's browser talks to this server directly.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import segno

def embed_snippet(url: str) -> str:
    src = html.escape(url, quote=True)
    return (f'<iframe src="{src}" title="Feedback form" loading="lazy" '
            f'style="width: 100%; max-width: 960px; height: 1100px; border: 0;"></iframe>')


def qr_svg_data_uri(url: str) -> str:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, dark="#000000", light="#ffffff")
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def write_qr_files(url: str, folder: Path) -> tuple[Path, Path]:
    """The QR code as PNG (for print and chat) and SVG (scales for a poster)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    code = segno.make(url, error="m")
    png, svg = folder / "feedback-form-qr.png", folder / "feedback-form-qr.svg"
    code.save(str(png), kind="png", scale=10, border=4)
    code.save(str(svg), kind="svg", scale=10, border=4)
    return png, svg


def share_html(url: str) -> str:
    return (f'<figure class="qr"><img src="{qr_svg_data_uri(url)}" width="180" height="180" '
            f'alt="QR code that opens {html.escape(url)}"><figcaption>Scan to open the form</figcaption></figure>')
