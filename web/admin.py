"""The owner's page: every review, newest first, paged, searchable, and a CSV of everything.

`web.__main__` mounts it at /admin only when ADMIN_PASSWORD is set, behind
Gradio's own login (`mount_gradio_app(auth=check_password(config))`): without
the login cookie, /admin/config and every /admin/gradio_api/... route answer
401, so the page shows nothing but the login form and its endpoints cannot be
called. Names are always shown here, whatever FEEDBACK_HIDE_NAMES says.

The CSV is written from one read transaction on a read-only connection, with
the same query, formula-injection guard and format as the backup CSV
(`shared.csv_export`).
It goes to a private folder inside Gradio's upload folder, so that only this
(logged-in) app serves it; the public app lists that folder in its
`blocked_paths` (see `export_dir`), because Gradio's file route serves any
file in the upload folder to whoever knows its path.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable

import gradio as gr
import pandas as pd
from gradio.utils import get_upload_folder

from shared.config import REVIEWS_AT_RISK_WARNING, Config
from shared.csv_export import write_reviews_csv
from shared.db import Store, read_summary, read_transaction, search_reviews

log = logging.getLogger("web.admin")

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
# An export is a full copy of the reviews: keep it only as long as someone
# plausibly needs to click "Download" after preparing it.
EXPORT_KEEP_SECONDS = 15 * 60
EXPORT_KEEP_NEWEST = 2  # besides the one being written
EXPORT_FOLDER_NAME = "owner-exports"
TABLE_HEADERS = ["id", "created_at", "name", "rating", "comments"]
STORAGE_ERROR_MESSAGE = "The reviews could not be read right now (storage problem). Please try again."


def check_password(config: Config) -> Callable[[str, str], bool]:
    """Gradio's `auth` callable: any user name, the password must equal ADMIN_PASSWORD.

    Compared in constant time, as bytes (`hmac.compare_digest` refuses non-ASCII str)."""
    expected = (config.admin_password or "").encode("utf-8", "surrogatepass")

    def check(username: str, password: str) -> bool:
        if not expected:
            return False
        given = (password or "").encode("utf-8", "surrogatepass")
        # Refusals are logged (with the client's address) by web/login_throttle.py.
        return hmac.compare_digest(given, expected)

    return check


def export_dir() -> Path:
    """Where CSV exports are written. The public app must block this folder (see module doc)."""
    return Path(get_upload_folder()) / EXPORT_FOLDER_NAME


def _remove_old_exports(folder: Path, keep_seconds: float = EXPORT_KEEP_SECONDS,
                        keep_newest: int = EXPORT_KEEP_NEWEST) -> None:
    """Exports older than `keep_seconds`, and all but the newest few, go: /tmp is not a store."""
    if not folder.is_dir():
        return
    entries = []
    for entry in folder.iterdir():
        try:
            entries.append((entry.stat().st_mtime, entry))
        except FileNotFoundError:
            pass  # another export cleaned it up first
    entries.sort(reverse=True)
    cutoff = time.time() - keep_seconds
    for i, (mtime, entry) in enumerate(entries):
        if i >= keep_newest or mtime < cutoff:
            # An export being downloaded right now is not cut short: the open file stays readable.
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def write_export(db_path: Path, folder: Path | None = None) -> Path:
    """Write every review to a new CSV file and return its path.

    Streamed (memory does not grow with the table), from one read
    transaction so the file is one consistent state; written under a
    temporary name and renamed, so a half-written file is never offered.
    Each export gets its own unguessable sub-folder, so the download keeps a
    readable name (`reviews-<UTC time>.csv`) without two exports colliding.
    """
    folder = folder or export_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_old_exports(folder)
    target_dir = folder / secrets.token_hex(16)
    target_dir.mkdir(mode=0o700)
    target = target_dir / time.strftime("reviews-%Y%m%d-%H%M%S.csv", time.gmtime())
    partial = target.with_name(target.name + ".tmp")
    try:
        # 0600 before any byte is written: the export holds every name, like the database itself.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        write_reviews_csv(db_path, partial)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(target_dir, ignore_errors=True)
        raise
    return target


def _page_count(matching: int) -> int:
    return max(1, -(-matching // PAGE_SIZE))


def _count_text(first: int, shown: int, matching: int, total: int, searching: bool) -> str:
    # Never echo the search text here: this is Markdown, and it is not ours.
    if not matching:
        return "No reviews match your search." if searching else "No reviews yet."
    span = f"Showing {first + 1:,}–{first + shown:,} of {matching:,}"
    if searching:
        return f"{span} reviews matching your search ({total:,} reviews in all)."
    return f"{span} reviews."


def build_admin(config: Config, store: Store) -> gr.Blocks:
    def show(query: str | None, page: int | None) -> tuple:
        """One page of reviews for the search in effect; the page number is clamped."""
        query = (query or "").strip()[:MAX_QUERY_CHARS]
        page = max(0, int(page or 0))
        conn = store.conn()
        try:
            with read_transaction(conn):  # the page rows and the counts agree
                rows, matching = search_reviews(conn, query=query, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
                if not rows and page > 0:  # past the end (reviews were deleted, or a stale page)
                    page = _page_count(matching) - 1
                    rows, matching = search_reviews(conn, query=query, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
                total = read_summary(conn).total if query else matching
        except sqlite3.Error as exc:
            log.error("owner page could not read reviews error=%s", exc)
            raise gr.Error(STORAGE_ERROR_MESSAGE, print_exception=False) from None  # logged above
        pages = _page_count(matching)
        return (
            pd.DataFrame(rows, columns=TABLE_HEADERS),
            _count_text(page * PAGE_SIZE, len(rows), matching, total, bool(query)),
            f"Page {page + 1:,} of {pages:,}",
            page,
            gr.Button(interactive=page > 0),
            gr.Button(interactive=page + 1 < pages),
        )

    def search(query: str | None) -> tuple:
        query = (query or "").strip()[:MAX_QUERY_CHARS]
        return (query, *show(query, 0))

    def newer_page(query: str | None, page: int | None) -> tuple:
        return show(query, (page or 0) - 1)

    def older_page(query: str | None, page: int | None) -> tuple:
        return show(query, (page or 0) + 1)

    def prepare_csv() -> tuple:
        started = time.monotonic()
        try:
            path = write_export(store.path)
        except (sqlite3.Error, OSError) as exc:
            log.error("owner CSV export failed error=%s", exc)
            raise gr.Error("The CSV could not be written right now. Please try again.",
                           print_exception=False) from None  # logged above
        log.info("owner CSV export path=%s bytes=%d seconds=%.2f", path, path.stat().st_size,
                 time.monotonic() - started)
        return (gr.DownloadButton(label=f"Download {path.name}", value=str(path), visible=True),
                f"Ready: {path.name} ({path.stat().st_size:,} bytes), every review as of now.")

    with gr.Blocks(title="Feedback: owner's page") as demo:
        gr.Markdown("# Owner's page\nEvery review, newest first. Names are always shown here.")
        if config.reviews_at_risk:  # the owner must see it where they look; the form keeps working
            gr.Markdown(f"**Warning: {REVIEWS_AT_RISK_WARNING}**", elem_id="admin-backup-warning")
        applied_query = gr.State("")  # the search the pages belong to, not what is typed
        page = gr.State(0)
        query = gr.Textbox(label="Search names and comments",
                           placeholder="Part of a name or comment, e.g. checkout (empty: every review)",
                           max_length=MAX_QUERY_CHARS, submit_btn="Search", elem_id="admin-query")
        counts = gr.Markdown(elem_id="admin-count")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Reviews (newest first)",
                             # "str": names and comments are shown as text, never as HTML/Markdown.
                             datatype=["number", "str", "str", "number", "str"],
                             column_widths=["7%", "19%", "18%", "8%", "48%"],
                             interactive=False, wrap=True, elem_id="admin-table")
        with gr.Row(equal_height=True):
            newer = gr.Button("← Newer", interactive=False, min_width=100, elem_id="admin-newer")
            page_label = gr.Markdown(elem_id="admin-page")
            older = gr.Button("Older →", interactive=False, min_width=100, elem_id="admin-older")
        with gr.Row(equal_height=True):
            prepare = gr.Button("Prepare a CSV of all reviews", elem_id="admin-prepare-csv")
            download = gr.DownloadButton("Download CSV", visible=False, variant="primary",
                                         elem_id="admin-download-csv")
        export_status = gr.Markdown(elem_id="admin-export-status")
        # The file is written straight into the export folder: no second copy in Gradio's cache.
        download.GRADIO_CACHE = str(export_dir())

        page_outputs = [table, counts, page_label, page, newer, older]
        common = dict(api_visibility="private", concurrency_limit=4, show_progress="minimal")
        demo.load(show, [applied_query, page], page_outputs, **common)
        query.submit(search, [query], [applied_query, *page_outputs], **common)
        newer.click(newer_page, [applied_query, page], page_outputs, **common)
        older.click(older_page, [applied_query, page], page_outputs, **common)
        prepare.click(prepare_csv, None, [download, export_status], api_visibility="private",
                      concurrency_limit=1, show_progress="full")
    return demo
