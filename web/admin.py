"""The owner's page: every review, newest first, paged, searchable; charts, exports, sharing the form.

`web.__main__` mounts it at /admin only when ADMIN_PASSWORD is set, behind
Gradio's own login (`mount_gradio_app(auth=check_password(config))`): without
the login cookie, /admin/config and every /admin/gradio_api/... route answer
401, so the page shows nothing but the login form and its endpoints cannot be
called. Names are always shown here, whatever FEEDBACK_HIDE_NAMES says.

Made for reading: times in the owner's zone, stars, a card per review on a phone
(web/owner_list.py), charts as HTML/SVG with their numbers as text (web/charts.py).
The exports (CSV, XLSX: web/owner_export.py) hold what the list shows, search included.
They go to a folder of this instance's own in the data folder (0700, see
`export_dir`), which only this (logged-in) app serves (`allowed_paths`); the
public app lists it in its `blocked_paths`. Not Gradio's upload folder: that is
shared machine-wide, and one instance's clean-up deleted another's exports.
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from shared import utc
from shared.config import REVIEWS_AT_RISK_WARNING, Config
from shared.reviews import RATINGS
from shared.db import ReviewFilter, SearchTooBroad, Store, count_reviews, find_reviews, read_summary, read_transaction
from web import bot_guard, charts, moderation_panel, owner_list, share, style
from web.form_state import MAX_MESSAGE_CHARS, read_form_state, set_form_state
from web.owner_export import owner_zone, write_owner_export, zone_name
from web.owner_summary import ROLLING_DAYS, FilterError, parse_filter, summarize
from web.share import write_qr_files

log = logging.getLogger("web.admin")

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200
# An export is a full copy of the reviews: keep it only as long as someone
# plausibly needs to click "Download" after preparing it.
EXPORT_KEEP_SECONDS = 15 * 60
EXPORT_KEEP_NEWEST = 2  # besides the one being written
EXPORT_FOLDER_NAME = "owner-exports"
SHARE_FOLDER_NAME = "share"
# Date presets: how many UTC days back from today (None: every date).
PRESETS = {"Today": 1, "Last 7 days": 7, "Last 30 days": 30, "All dates": None}
# applied filter, the 6 page outputs and the charts (see OwnerPage.apply_outputs).
APPLY_OUTPUTS = 8
# Passed to mount_gradio_app in web/__main__.py (Gradio 6 takes css/js there).
CSS = style.CSS + owner_list.CSS + charts.CSS + moderation_panel.CSS + """
#admin-intro h1 { font-size: 1.6em; margin: 0 0 4px; }
#admin-presets { gap: 8px; flex-wrap: wrap; }
#admin-presets button { min-height: 44px; }
#admin-count p, #admin-page p { margin: 0; color: var(--body-text-color); }
#admin-page { text-align: center; align-self: center; }
.admin-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
#admin-qr img { background: #ffffff; padding: 4px; }
#admin-qr figure { margin: 0; }
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
        if entry.name == SHARE_FOLDER_NAME:
            continue  # the QR code's files, rewritten each time the page loads (not an export)
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


def write_export(db_path: Path, folder: Path | None = None, f: ReviewFilter | None = None, *, fmt: str = "csv",
                 zone: str | None = None) -> Path:
    """Write the reviews `f` matches (every filter, the search included; all without one) to a new
    CSV or XLSX file in the export folder and return its path (see web/owner_export.py)."""
    return write_owner_export(db_path, folder or export_dir(Path(db_path).parent), f or ReviewFilter(), fmt=fmt,
                              zone_name_sent=zone, remove_old=_remove_old_exports)


def _page_count(matching: int) -> int:
    return max(1, -(-matching // PAGE_SIZE))


def _count_text(first: int, shown: int, matching: int | None, exact: bool, total: int, f: ReviewFilter) -> str:
    # Never echo the search text here: it is not ours.
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


def _filter_state(f: ReviewFilter) -> dict:
    return dataclasses.asdict(f)


def _filter_from_state(state: dict | None) -> ReviewFilter:
    state = dict(state or {})
    state["ratings"] = tuple(state.get("ratings") or ())
    return ReviewFilter(**state)


def preset_days(preset: str, today: date | None = None) -> tuple[str, str]:
    """(From, To) for a date preset, as UTC days (the days the filter and charts count in)."""
    today = today or utc.today()
    span = PRESETS[preset]
    if span is None:
        return "", ""
    return (today - timedelta(days=span - 1)).isoformat(), today.isoformat()


def summary_html(data) -> str:
    """The summary sentence and the three charts (each with its numbers as text)."""
    parts = [f'<p id="admin-summary">{html.escape(data.text)}</p>']
    if int(data.per_day["reviews"].sum()):
        days = [d.date() for d in data.per_day["day"]]
        averages = [None if v != v else float(v) for v in data.per_day["average"]]
        parts.append('<div class="admin-charts">')
        parts.append(charts.day_series(days, [int(v) for v in data.per_day["reviews"]], title="Reviews per day",
                                       unit="reviews", elem_id="admin-per-day"))
        parts.append(charts.day_series(days, averages, title=f"Average rating, {ROLLING_DAYS}-day rolling",
                                       unit="stars", y_min=1, y_max=5, elem_id="admin-average", digits=1))
        parts.append(charts.rating_bars([int(v) for v in data.distribution["reviews"]], title="Rating distribution",
                                        elem_id="admin-distribution"))
        parts.append("</div>")
    return "".join(parts)


@dataclass
class OwnerPage:
    """The owner's page's components, so each part's handlers can be wired (or extended) by name."""
    applied: gr.State
    cursor: gr.State
    zone: gr.Textbox
    first_day: gr.Textbox
    last_day: gr.Textbox
    ratings: gr.CheckboxGroup
    query: gr.Textbox
    show_ids: gr.Checkbox
    presets: dict
    apply_button: gr.Button
    summary: gr.HTML
    counts: gr.HTML
    reviews: gr.HTML
    newer: gr.Button
    page_label: gr.HTML
    older: gr.Button
    export_buttons: dict
    download: gr.DownloadButton
    export_status: gr.HTML
    share: dict
    form_switch: dict

    @property
    def filter_inputs(self) -> list:
        return [self.query, self.ratings, self.first_day, self.last_day, self.show_ids]

    @property
    def page_outputs(self) -> list:
        return [self.reviews, self.counts, self.page_label, self.cursor, self.newer, self.older]

    @property
    def apply_outputs(self) -> list:
        return [self.applied, *self.page_outputs, self.summary]


class OwnerHandlers:
    """What the owner's page does, one method per action; all reads from one read transaction."""

    def __init__(self, config: Config, store: Store):
        self.config, self.store = config, store

    def read(self, work: Callable[[sqlite3.Connection], tuple]) -> tuple:
        conn = self.store.conn()
        try:
            with read_transaction(conn):  # the page rows and the counts agree
                return work(conn)
        except SearchTooBroad as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except sqlite3.Error as exc:
            log.error("owner page could not read reviews error=%s", exc)
            raise gr.Error(STORAGE_ERROR_MESSAGE, print_exception=False) from None  # logged above

    def show(self, f: ReviewFilter, page: int, show_ids: bool, *, before_id: int | None = None,
             after_id: int | None = None) -> tuple:
        """One page of the filter's reviews by keyset (ids), so page 10,000 costs what page 1 does."""
        def work(conn):
            rows = find_reviews(conn, f, limit=PAGE_SIZE, before_id=before_id, after_id=after_id)
            nonlocal page
            if not rows or after_id is not None and page <= 1 or (after_id is not None and len(rows) < PAGE_SIZE):
                # Past either end (reviews were deleted, a stale page, or newer ones arrived): start over.
                rows, page = find_reviews(conn, f, limit=PAGE_SIZE), 0
            rows = moderation_panel.mark_rows(conn, rows)  # each row's status and the owner's reply
            matching, exact = count_reviews(conn, f)
            total = read_summary(conn).total if f.active else matching
            return rows, matching, exact, total
        rows, matching, exact, total = self.read(work)
        pages = _page_count(matching or 0)
        cursor = {"page": page, "first": rows[0][0] if rows else None, "last": rows[-1][0] if rows else None,
                  "show_ids": show_ids}
        more = len(rows) == PAGE_SIZE and (page + 1 < pages or not exact)
        if matching is None:
            label = f"Page {page + 1:,}"
        else:
            label = f"Page {page + 1:,} of {pages:,}" if exact else f"Page {page + 1:,} of more than {pages:,}"
        count_text = _count_text(page * PAGE_SIZE, len(rows), matching, exact, total, f)
        return (
            owner_list.render(rows, show_ids=show_ids, empty_text=count_text),
            f'<p id="admin-count-text" role="status">{html.escape(count_text)}</p>',
            f'<p class="page-label">{label}</p>',
            cursor,
            gr.Button(interactive=page > 0),
            gr.Button(interactive=more),
        )

    def apply(self, query: str | None, ratings: list | None, first: str | None, last: str | None,
              show_ids: bool | None = False) -> tuple:
        """Check the filter (a bad date range changes nothing and says why), then show page 1 and the charts."""
        try:
            f = parse_filter(query, ratings, first, last, max_query_chars=MAX_QUERY_CHARS)
        except FilterError as exc:
            # The message as a toast, and every output left as it was (gr.Error would also
            # mark each output "Error", as if the page had broken).
            gr.Warning(str(exc), duration=None)
            return tuple(gr.skip() for _ in range(APPLY_OUTPUTS))
        data = self.read(lambda conn: (summarize(conn, f),))[0]
        return (_filter_state(f), *self.show(f, 0, bool(show_ids)), summary_html(data))

    def newer_page(self, state: dict, cursor: dict) -> tuple:
        cursor = cursor or {}
        return self.show(_filter_from_state(state), max(0, cursor.get("page", 0) - 1), bool(cursor.get("show_ids")),
                         after_id=cursor.get("first"))

    def older_page(self, state: dict, cursor: dict) -> tuple:
        cursor = cursor or {}
        if cursor.get("last") is None:
            return self.show(_filter_from_state(state), 0, bool(cursor.get("show_ids")))
        return self.show(_filter_from_state(state), cursor.get("page", 0) + 1, bool(cursor.get("show_ids")),
                         before_id=cursor["last"])

    def prepare_export(self, fmt: str, state: dict, zone: str | None) -> tuple:
        f = _filter_from_state(state)
        started = time.monotonic()
        try:
            path = write_export(self.store.path, export_dir(self.config.data_dir), f=f, fmt=fmt, zone=zone)
        except (sqlite3.Error, OSError) as exc:
            log.error("owner export failed format=%s error=%s", fmt, exc)
            raise gr.Error(f"The {fmt.upper()} could not be written right now. Please try again.",
                           print_exception=False) from None  # logged above
        log.info("owner export format=%s path=%s bytes=%d seconds=%.2f", fmt, path, path.stat().st_size,
                 time.monotonic() - started)
        which = "the reviews matching your search and filters" if f.active else "every review"
        return (gr.DownloadButton(label=f"Download {path.name}", value=str(path), visible=True),
                f'<p role="status">Ready: {html.escape(path.name)} ({path.stat().st_size:,} bytes), {which}, '
                f'times in UTC and in {html.escape(zone_name(owner_zone(zone)))}.</p>')

    def share_info(self) -> tuple:
        url = self.config.public_url.rstrip("/") + "/"
        png, svg = write_qr_files(url, export_dir(self.config.data_dir) / SHARE_FOLDER_NAME)
        return url, share.embed_snippet(url), share.share_html(url), str(png), str(svg)

    def form_state(self) -> tuple:
        state = read_form_state(self.store.conn())
        return self._switch_outputs(state)

    def toggle_form(self, message: str | None) -> tuple:
        current = read_form_state(self.store.conn())
        try:
            state = set_form_state(self.store.conn(), not current.closed, message)
        except sqlite3.Error as exc:
            log.error("could not change the form's state error=%s", exc)
            raise gr.Error("The form's state could not be saved right now. Please try again.",
                           print_exception=False) from None
        log.info("public form closed=%s", state.closed)
        return self._switch_outputs(state)

    @staticmethod
    def _switch_outputs(state) -> tuple:
        text = ("<p role=\"status\"><strong>The form is closed.</strong> Visitors see your message instead of "
                "the form.</p>" if state.closed else
                "<p role=\"status\"><strong>The form is open</strong> and takes reviews.</p>")
        return (text, gr.Button(value="Reopen the form" if state.closed else "Close the form"),
                state.message if state.closed else gr.skip())


# The owner's browser's time zone, sent with each export (the page shows times in it too).
ZONE_JS = "(state, zone) => [state, Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC']"


def build_filters() -> dict:
    """The filter inputs: dates (free, or a preset), ratings, the search, ids on or off, ONE apply."""
    with gr.Row(equal_height=False):
        first_day = gr.Textbox(label="From", info="A UTC day, YYYY-MM-DD", max_lines=1, max_length=10,
                               min_width=160, elem_id="admin-from")
        last_day = gr.Textbox(label="To", info="A UTC day, YYYY-MM-DD", max_lines=1, max_length=10,
                              min_width=160, elem_id="admin-to")
        ratings = gr.CheckboxGroup(label="Ratings", choices=list(RATINGS), value=list(RATINGS), min_width=220,
                                   elem_id="admin-ratings")
    with gr.Row(elem_id="admin-presets"):
        presets = {name: gr.Button(name, size="sm", min_width=90, elem_id=f"admin-preset-{slug}")
                   for name, slug in (("Today", "today"), ("Last 7 days", "7"), ("Last 30 days", "30"),
                                      ("All dates", "all"))}
    query = gr.Textbox(label="Search names and comments", info="Words from a name or comment; empty for every review",
                       max_lines=1, max_length=MAX_QUERY_CHARS, elem_id="admin-query")
    with gr.Row(equal_height=True):
        show_ids = gr.Checkbox(label="Show review ids", value=False, elem_id="admin-show-ids")
        apply_button = gr.Button("Apply", variant="primary", elem_id="admin-apply")
    return dict(first_day=first_day, last_day=last_day, ratings=ratings, presets=presets, query=query,
                show_ids=show_ids, apply_button=apply_button)


def build_exports(data_dir: Path) -> dict:
    with gr.Row(equal_height=True):
        csv_button = gr.Button("Prepare a CSV", elem_id="admin-prepare-csv")
        xlsx_button = gr.Button("Prepare an XLSX (Excel)", elem_id="admin-prepare-xlsx")
        download = gr.DownloadButton("Download", visible=False, variant="primary", elem_id="admin-download")
    export_status = gr.HTML(elem_id="admin-export-status", padding=False)
    # The file is written straight into the export folder: no second copy in Gradio's cache.
    download.GRADIO_CACHE = str(export_dir(data_dir))
    return dict(export_buttons={"csv": csv_button, "xlsx": xlsx_button}, download=download,
                export_status=export_status)


def build_share(data_dir: Path) -> dict:
    with gr.Accordion("Share the form", open=False, elem_id="admin-share"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                link = gr.Textbox(label="Link to the form", buttons=["copy"], interactive=False,
                                  elem_id="admin-share-link")
                embed = gr.Textbox(label="Embed it in your website (HTML)", buttons=["copy"], interactive=False,
                                   lines=3, elem_id="admin-embed")
            with gr.Column(scale=1, min_width=200):
                qr = gr.HTML(elem_id="admin-qr", padding=False)
                png = gr.DownloadButton("QR code (PNG)", size="sm", elem_id="admin-qr-png")
                svg = gr.DownloadButton("QR code (SVG)", size="sm", elem_id="admin-qr-svg")
        for button in (png, svg):
            button.GRADIO_CACHE = str(export_dir(data_dir))
    return dict(link=link, embed=embed, qr=qr, png=png, svg=svg)


def build_form_switch() -> dict:
    with gr.Accordion("Open or close the form", open=False, elem_id="admin-form-switch"):
        state_text = gr.HTML(elem_id="admin-form-state", padding=False)
        message = gr.Textbox(label="Message for visitors while the form is closed", max_lines=3,
                             max_length=MAX_MESSAGE_CHARS, elem_id="admin-closed-message")
        toggle = gr.Button("Close the form", elem_id="admin-form-toggle")
    return dict(state=state_text, message=message, toggle=toggle)


def build_layout(config: Config) -> OwnerPage:
    intro = ("<h1>Owner's page</h1><p>Every review, newest first. Names are always shown here. "
             "Times are in your time zone.</p>")
    if config.reviews_at_risk:  # the owner must see it where they look; the form keeps working
        intro += f'<p id="admin-backup-warning"><strong>Warning: {html.escape(REVIEWS_AT_RISK_WARNING)}</strong></p>'
    gr.HTML(intro, elem_id="admin-intro", padding=False)
    applied = gr.State(_filter_state(ReviewFilter()))  # the filter the pages belong to, not what is typed
    cursor = gr.State({"page": 0, "first": None, "last": None, "show_ids": False})
    zone = gr.Textbox(visible=False, elem_id="admin-zone")
    filters = build_filters()
    gr.HTML("<h2>Summary</h2><p>The charts follow the dates and ratings; the search narrows the list and "
            "the exports.</p>", padding=False)
    summary = gr.HTML(elem_id="admin-charts", padding=False)
    gr.HTML("<h2>Reviews</h2>", padding=False)
    counts = gr.HTML(elem_id="admin-count", padding=False)
    reviews = gr.HTML(owner_list.EMPTY_HTML.format(text="Loading the reviews…"), js_on_load=owner_list.OWNER_TIME_JS,
                      elem_id="admin-list", padding=False)
    with gr.Row(equal_height=True):
        newer = gr.Button("← Newer", interactive=False, min_width=100, elem_id="admin-newer")
        page_label = gr.HTML(elem_id="admin-page", padding=False)
        older = gr.Button("Older →", interactive=False, min_width=100, elem_id="admin-older")
    gr.HTML("<h2>Export</h2><p>The reviews matching the search and filters above, with times in UTC and in "
            "your time zone.</p>", padding=False)
    exports = build_exports(config.data_dir)
    share_parts = build_share(config.data_dir)
    switch = build_form_switch()
    return OwnerPage(applied=applied, cursor=cursor, zone=zone, summary=summary, counts=counts, reviews=reviews,
                     newer=newer, page_label=page_label, older=older, share=share_parts, form_switch=switch,
                     **filters, **exports)


def wire(page: OwnerPage, h: OwnerHandlers, demo: gr.Blocks) -> None:
    common: dict[str, Any] = dict(api_visibility="private", concurrency_limit=4, show_progress="minimal")
    assert len(page.apply_outputs) == APPLY_OUTPUTS
    demo.load(h.apply, page.filter_inputs, page.apply_outputs, **common)
    # One apply action: the button, Enter in a text field, a preset, or the ids switch.
    page.apply_button.click(h.apply, page.filter_inputs, page.apply_outputs, **common)
    for box in (page.query, page.first_day, page.last_day):
        box.submit(h.apply, page.filter_inputs, page.apply_outputs, **common)
    page.show_ids.input(h.apply, page.filter_inputs, page.apply_outputs, **common)
    for name, button in page.presets.items():
        button.click(lambda name=name: preset_days(name), None, [page.first_day, page.last_day],
                     api_visibility="private", queue=False).then(h.apply, page.filter_inputs, page.apply_outputs,
                                                                 **common)
    page.newer.click(h.newer_page, [page.applied, page.cursor], page.page_outputs, **common)
    page.older.click(h.older_page, [page.applied, page.cursor], page.page_outputs, **common)
    for fmt, button in page.export_buttons.items():
        button.click(lambda state, zone, fmt=fmt: h.prepare_export(fmt, state, zone), [page.applied, page.zone],
                     [page.download, page.export_status], js=ZONE_JS, api_visibility="private",
                     concurrency_limit=1, show_progress="full")
    s = page.share
    demo.load(h.share_info, None, [s["link"], s["embed"], s["qr"], s["png"], s["svg"]], api_visibility="private")
    sw = page.form_switch
    demo.load(h.form_state, None, [sw["state"], sw["toggle"], sw["message"]], api_visibility="private")
    sw["toggle"].click(h.toggle_form, [sw["message"]], [sw["state"], sw["toggle"], sw["message"]],
                       api_visibility="private", concurrency_limit=1)


def build_admin(config: Config, store: Store) -> gr.Blocks:
    with gr.Blocks(title="Feedback: owner's page") as demo:
        page = build_layout(config)
        handlers = OwnerHandlers(config, store)
        wire(page, handlers, demo)
        # The public form's spam refusals (web/bot_guard.py), counted by the web.
        refused = gr.HTML(elem_id="admin-refused")
        demo.load(lambda: bot_guard.refusal_summary(store), None, refused, api_visibility="private",
                  concurrency_limit=4)
        moderation_panel.attach(
            demo, config, store, applied=page.applied, cursor=page.cursor, refresh_outputs=page.page_outputs,
            refresh=lambda state, cursor: handlers.show(_filter_from_state(state), 0,
                                                        bool((cursor or {}).get("show_ids"))))
    return demo
