"""The owner's page: every review, newest first, paged, searchable, and a CSV of everything.

`web.__main__` mounts it at /admin only when ADMIN_PASSWORD is set, behind
Gradio's own login (`mount_gradio_app(auth=check_password(config))`): without
the login cookie, /admin/config and every /admin/gradio_api/... route answer
401, so the page shows nothing but the login form and its endpoints cannot be
called. Names are always shown here, whatever FEEDBACK_HIDE_NAMES says.

The CSV is written from one read transaction on a read-only connection, with
the same query, formula-injection guard and format as the backup CSV
(`shared.csv_export`).
It goes to a folder of this instance's own in the data folder (0700, see
`export_dir`), which only this (logged-in) app serves (`allowed_paths`); the
public app lists it in its `blocked_paths`. Not Gradio's upload folder: that is
shared machine-wide, and one instance's clean-up deleted another's exports.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import pandas as pd

from shared.config import REVIEWS_AT_RISK_WARNING, Config
from shared.csv_export import write_reviews_csv
from shared.db import (ReviewFilter, SearchTooBroad, Store, count_reviews, filtered_ids_sql, find_reviews, read_summary,
                       read_transaction)
from web import moderation_panel, style
from web.display_text import without_bidi_controls
from web.owner_summary import RATINGS, ROLLING_DAYS, FilterError, parse_filter, summarize

log = logging.getLogger("web.admin")

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
# An export is a full copy of the reviews: keep it only as long as someone
# plausibly needs to click "Download" after preparing it.
EXPORT_KEEP_SECONDS = 15 * 60
EXPORT_KEEP_NEWEST = 2  # besides the one being written
EXPORT_FOLDER_NAME = "owner-exports"
TABLE_HEADERS = ["id", "created_at", "name", "rating", "comments", moderation_panel.STATUS_HEADER]
# Passed to mount_gradio_app in web/__main__.py (Gradio 6 takes css/js there).
# On a phone the five columns would squeeze to a letter a line ("i d"): the table keeps a
# readable width and scrolls sideways inside its own box; the page itself does not.
CSS = style.CSS + moderation_panel.CSS + """
@media (max-width: 640px) {
  #admin-table .table-wrap { overflow-x: auto; }
  #admin-table .virtual-table-viewport { min-width: 720px; }
}
"""
JS = style.JS
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


def export_dir(data_dir: Path) -> Path:
    """Where CSV exports are written: in this instance's data folder. The public app must block
    this folder (see module doc)."""
    return Path(data_dir) / EXPORT_FOLDER_NAME


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


def write_export(db_path: Path, folder: Path | None = None, f: ReviewFilter | None = None) -> Path:
    """Write every review (or those `f` matches: the owner's dates and ratings) to a new CSV file
    and return its path.

    Streamed (memory does not grow with the table), from one read
    transaction so the file is one consistent state; written under a
    temporary name and renamed, so a half-written file is never offered.
    Each export gets its own unguessable sub-folder, so the download keeps a
    readable name (`reviews-<UTC time>.csv`) without two exports colliding.
    """
    folder = folder or export_dir(Path(db_path).parent)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # mkdir's mode is cut by the umask, and an older folder may be wider
    _remove_old_exports(folder)
    target_dir = folder / secrets.token_hex(16)
    target_dir.mkdir(mode=0o700)
    target = target_dir / time.strftime("reviews-%Y%m%d-%H%M%S.csv", time.gmtime())
    partial = target.with_name(target.name + ".tmp")
    try:
        # 0600 before any byte is written: the export holds every name, like the database itself.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # arrow=False: the Arrow path opens the live database with the ADBC driver's own copy of
        # SQLite, and two SQLite libraries in one process release each other's POSIX locks when
        # either closes the file (https://www.sqlite.org/howtocorrupt.html, section 2.2): after an
        # export the web's connections kept reading an old snapshot. The worker exports from a
        # snapshot file no other connection has open, where the fast path is safe.
        write_reviews_csv(db_path, partial, only_ids=filtered_ids_sql(f) if f is not None and f.active else None,
                          arrow=False)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(target_dir, ignore_errors=True)
        raise
    return target


def shown_row(row: tuple) -> tuple:
    """A review as the owner's table shows it: name and comments without bidi overrides
    (web/display_text.py); the database and the CSV keep them."""
    return (*row[:2], without_bidi_controls(row[2]), row[3], without_bidi_controls(row[4]), *row[5:])


def _page_count(matching: int) -> int:
    return max(1, -(-matching // PAGE_SIZE))


def _count_text(first: int, shown: int, matching: int | None, exact: bool, total: int, f: ReviewFilter) -> str:
    # Never echo the search text here: this is Markdown, and it is not ours.
    narrowed = [w for w, on in (("search", bool(f.query)), ("filters", bool(f.ratings or f.first_day or f.last_day)))
                if on]
    if not shown and not matching:
        return f"No reviews match your {' and '.join(narrowed)}." if narrowed else "No reviews yet."
    if matching is None:
        of = "many"  # counting them all would take too long (see count_reviews)
    else:
        of = f"{matching:,}" if exact else f"more than {matching:,}"
    span = f"Showing {first + 1:,}–{first + shown:,} of {of}"
    if narrowed:
        return f"{span} reviews matching your {' and '.join(narrowed)} ({total:,} reviews in all)."
    return f"{span} reviews."


# applied filter, the 6 page outputs, 3 charts and the summary line (see apply_outputs below).
APPLY_OUTPUTS = 11


def _filter_state(f: ReviewFilter) -> dict:
    return dataclasses.asdict(f)


def _filter_from_state(state: dict | None) -> ReviewFilter:
    state = dict(state or {})
    state["ratings"] = tuple(state.get("ratings") or ())
    return ReviewFilter(**state)


def build_admin(config: Config, store: Store) -> gr.Blocks:
    def read(work: Callable[[sqlite3.Connection], tuple]) -> tuple:
        conn = store.conn()
        try:
            with read_transaction(conn):  # the page rows and the counts agree
                return work(conn)
        except SearchTooBroad as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except sqlite3.Error as exc:
            log.error("owner page could not read reviews error=%s", exc)
            raise gr.Error(STORAGE_ERROR_MESSAGE, print_exception=False) from None  # logged above

    def show(f: ReviewFilter, page: int, *, before_id: int | None = None, after_id: int | None = None) -> tuple:
        """One page of the filter's reviews by keyset (ids), so page 10,000 costs what page 1 does."""
        def work(conn):
            rows = find_reviews(conn, f, limit=PAGE_SIZE, before_id=before_id, after_id=after_id)
            nonlocal page
            if not rows or after_id is not None and page <= 1 or (after_id is not None and len(rows) < PAGE_SIZE):
                # Past either end (reviews were deleted, a stale page, or newer ones arrived): start over.
                rows, page = find_reviews(conn, f, limit=PAGE_SIZE), 0
            rows = moderation_panel.mark_rows(conn, rows)  # hidden / pending / replied, marked
            matching, exact = count_reviews(conn, f)
            total = read_summary(conn).total if f.active else matching
            return rows, matching, exact, total
        rows, matching, exact, total = read(work)
        pages = _page_count(matching or 0)
        cursor = {"page": page, "first": rows[0][0] if rows else None, "last": rows[-1][0] if rows else None}
        more = len(rows) == PAGE_SIZE and (page + 1 < pages or not exact)
        if matching is None:
            label = f"Page {page + 1:,}"
        else:
            label = f"Page {page + 1:,} of {pages:,}" if exact else f"Page {page + 1:,} of more than {pages:,}"
        return (
            pd.DataFrame([shown_row(r) for r in rows], columns=TABLE_HEADERS),
            _count_text(page * PAGE_SIZE, len(rows), matching, exact, total, f),
            label,
            cursor,
            gr.Button(interactive=page > 0),
            gr.Button(interactive=more),
        )

    def summary_outputs(f: ReviewFilter) -> tuple:
        data = read(lambda conn: (summarize(conn, f),))[0]
        # No reviews in the range: the sentence says so, and no empty axes (which Vega also
        # leaves as unlabelled images for a screen reader).
        shown = bool(data.per_day["reviews"].sum())
        return (gr.LinePlot(data.per_day, visible=shown), gr.LinePlot(data.per_day, visible=shown),
                gr.BarPlot(data.distribution, visible=shown), data.text)

    def apply(query: str | None, ratings: list | None, first: str | None, last: str | None) -> tuple:
        """Check the filter (a bad date range changes nothing and says why), then show page 1 and the charts."""
        try:
            f = parse_filter(query, ratings, first, last, max_query_chars=MAX_QUERY_CHARS)
        except FilterError as exc:
            # The message as a toast, and every output left as it was (gr.Error would also
            # mark each output "Error", as if the page had broken).
            gr.Warning(str(exc), duration=None)
            return tuple(gr.skip() for _ in range(APPLY_OUTPUTS))
        return (_filter_state(f), *show(f, 0), *summary_outputs(f))

    def newer_page(state: dict, cursor: dict) -> tuple:
        cursor = cursor or {}
        return show(_filter_from_state(state), max(0, cursor.get("page", 0) - 1), after_id=cursor.get("first"))

    def older_page(state: dict, cursor: dict) -> tuple:
        cursor = cursor or {}
        if cursor.get("last") is None:
            return show(_filter_from_state(state), 0)
        return show(_filter_from_state(state), cursor.get("page", 0) + 1, before_id=cursor["last"])

    def prepare_csv(state: dict) -> tuple:
        # The dates and ratings, not the search text: the search finds reviews, the CSV is for analysis.
        f = dataclasses.replace(_filter_from_state(state), query="")
        started = time.monotonic()
        try:
            path = write_export(store.path, f=f)
        except (sqlite3.Error, OSError) as exc:
            log.error("owner CSV export failed error=%s", exc)
            raise gr.Error("The CSV could not be written right now. Please try again.",
                           print_exception=False) from None  # logged above
        log.info("owner CSV export path=%s bytes=%d seconds=%.2f", path, path.stat().st_size,
                 time.monotonic() - started)
        which = ("every review in the chosen dates and ratings" if f.ratings or f.first_day or f.last_day
                 else "every review")
        return (gr.DownloadButton(label=f"Download {path.name}", value=str(path), visible=True),
                f"Ready: {path.name} ({path.stat().st_size:,} bytes), {which} as of now.")

    with gr.Blocks(title="Feedback: owner's page") as demo:
        gr.Markdown("# Owner's page\nEvery review, newest first. Names are always shown here.")
        if config.reviews_at_risk:  # the owner must see it where they look; the form keeps working
            gr.Markdown(f"**Warning: {REVIEWS_AT_RISK_WARNING}**", elem_id="admin-backup-warning")
        applied = gr.State(_filter_state(ReviewFilter()))  # the filter the pages belong to, not what is typed
        cursor = gr.State({"page": 0, "first": None, "last": None})
        with gr.Row(equal_height=True):
            first_day = gr.Textbox(label="From (YYYY-MM-DD, UTC)", placeholder="first review", max_lines=1,
                                   max_length=10, min_width=160, elem_id="admin-from")
            last_day = gr.Textbox(label="To (YYYY-MM-DD, UTC)", placeholder="latest review", max_lines=1,
                                  max_length=10, min_width=160, elem_id="admin-to")
            ratings = gr.CheckboxGroup(label="Ratings", choices=list(RATINGS), value=list(RATINGS), min_width=220,
                                       elem_id="admin-ratings")
        query = gr.Textbox(label="Search names and comments",
                           placeholder="Words from a name or comment, e.g. checkout (empty: every review)",
                           max_length=MAX_QUERY_CHARS, submit_btn="Search", elem_id="admin-query")
        apply_button = gr.Button("Apply filters", variant="primary", elem_id="admin-apply")
        gr.Markdown("## Summary\nThe charts follow the dates and ratings; the search narrows the list below.")
        summary_text = gr.Markdown(elem_id="admin-summary")
        with gr.Row():
            per_day = gr.LinePlot(x="day", y="reviews", label="Reviews per day", y_lim=[0, None],
                                  x_title="day (UTC)", height=240, elem_id="admin-per-day")
            average = gr.LinePlot(x="day", y="average", label=f"Average rating, {ROLLING_DAYS}-day rolling",
                                  y_lim=[1, 5], x_title="day (UTC)", height=240, elem_id="admin-average")
        distribution = gr.BarPlot(x="rating", y="reviews", label="Rating distribution", y_lim=[0, None], sort="x",
                                  height=220, elem_id="admin-distribution")
        gr.Markdown("## Reviews")
        counts = gr.Markdown(elem_id="admin-count")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Reviews (newest first)",
                             # "str": names and comments are shown as text, never as HTML/Markdown.
                             datatype=["number", "str", "str", "number", "str", "str"],
                             column_widths=["7%", "17%", "16%", "7%", "41%", "12%"],
                             interactive=False, wrap=True, elem_id="admin-table")
        with gr.Row(equal_height=True):
            newer = gr.Button("← Newer", interactive=False, min_width=100, elem_id="admin-newer")
            page_label = gr.Markdown(elem_id="admin-page")
            older = gr.Button("Older →", interactive=False, min_width=100, elem_id="admin-older")
        with gr.Row(equal_height=True):
            prepare = gr.Button("Prepare a CSV (the chosen dates and ratings)", elem_id="admin-prepare-csv")
            download = gr.DownloadButton("Download CSV", visible=False, variant="primary",
                                         elem_id="admin-download-csv")
        export_status = gr.Markdown(elem_id="admin-export-status")
        # The file is written straight into the export folder: no second copy in Gradio's cache.
        download.GRADIO_CACHE = str(export_dir(config.data_dir))

        page_outputs = [table, counts, page_label, cursor, newer, older]
        apply_outputs = [applied, *page_outputs, per_day, average, distribution, summary_text]
        assert len(apply_outputs) == APPLY_OUTPUTS
        common: dict[str, Any] = dict(api_visibility="private", concurrency_limit=4, show_progress="minimal")
        filter_inputs = [query, ratings, first_day, last_day]
        demo.load(apply, filter_inputs, apply_outputs, **common)
        query.submit(apply, filter_inputs, apply_outputs, **common)
        apply_button.click(apply, filter_inputs, apply_outputs, **common)
        for box in (first_day, last_day):
            box.submit(apply, filter_inputs, apply_outputs, **common)
        newer.click(newer_page, [applied, cursor], page_outputs, **common)
        older.click(older_page, [applied, cursor], page_outputs, **common)
        prepare.click(prepare_csv, [applied], [download, export_status], api_visibility="private",
                      concurrency_limit=1, show_progress="full")
        moderation_panel.attach(demo, config, store, applied=applied, table=table, refresh_outputs=page_outputs,
                                refresh=lambda state: show(_filter_from_state(state), 0))
    return demo
