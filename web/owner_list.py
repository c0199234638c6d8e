"""The owner's list of reviews, as HTML made for reading: a table on a laptop, a card per review on a phone.

One place builds each review's row (`review_row`), so whatever else the owner's page shows per
review (a moderation control, say) is added here once. Everything a person typed is escaped
on the server (`review_list.escape`); names and comments carry dir="auto" for right-to-left
text. Times are sent as UTC and shown in the owner's time zone by OWNER_TIME_JS. Ids are shown
only when asked for.
"""

from __future__ import annotations

from shared.db import COLUMNS
from web.display_text import without_bidi_controls
from web.review_list import escape, stars, utc_fallback

EMPTY_HTML = '<p class="empty">{text}</p>'
# The table's columns are shared.db's COLUMNS, each with its heading (also the cell's label in the
# card-per-review layout on a phone) and CSS class. A new column without a heading fails at import.
COLUMN_HEADINGS = {"id": ("Id", "col-id"), "created_at": ("When", "col-when"), "name": ("Name", "col-name"),
                   "rating": ("Rating", "col-rating"), "comments": ("Comment", "col-comment")}
TABLE_COLUMNS = [(column, *COLUMN_HEADINGS[column]) for column in COLUMNS]
TABLE_HEADERS = [heading for _, heading, _ in TABLE_COLUMNS]


# How a review that is not public is marked (the owner sees every review; the public page only public ones).
STATUS_MARKS = {"hidden": "Hidden", "pending": "Waiting for approval"}
OWNER_REPLY_LABEL = "Your public reply"


def _moderation(status: str | None, reply: str | None) -> tuple[str, str]:
    """The status mark (before the comment) and the owner's reply (after it), both as text."""
    mark = (f'<p class="mod-mark mod-{status}"><strong>{STATUS_MARKS[status]}</strong></p>'
            if status in STATUS_MARKS else "")
    answer = (f'<div class="owner-reply"><p class="reply-who">{OWNER_REPLY_LABEL}</p>'
              f'<p class="reply-text" dir="auto">{escape(without_bidi_controls(reply))}</p></div>'
              if (reply or "").strip() else "")
    return mark, answer


def review_row(review_id: int, created_at: str, name: str | None, rating: int, comments: str | None,
               show_ids: bool, status: str | None = None, reply: str | None = None) -> str:
    # Bidi overrides are dropped from what is shown (web/display_text.py); the exports keep them.
    who = (f'<span dir="auto">{escape(without_bidi_controls(name))}</span>' if (name or "").strip()
           else '<span class="anon">Anonymous</span>')
    mark, answer = _moderation(status, reply)
    content = {
        "id": str(review_id),
        "created_at": f'<time datetime="{escape(created_at)}">{utc_fallback(created_at)}</time>',
        "name": who,
        "rating": stars(rating),
        "comments": f'{mark}<p dir="auto">{escape(without_bidi_controls(comments))}</p>{answer}',
    }
    cells = [f'<td class="{css}" data-label="{heading}">{content[column]}</td>'
             for column, heading, css in TABLE_COLUMNS if show_ids or column != "id"]
    state = f' data-status="{escape(status)}"' if status else ""
    return f'<tr data-review="{review_id}" data-rating="{rating}"{state}>{"".join(cells)}</tr>'


def render(rows: list[tuple], *, show_ids: bool, empty_text: str = "No reviews yet.") -> str:
    """rows: (id, created_at, name, rating, comments[, status, reply]), newest first."""
    if not rows:
        return EMPTY_HTML.format(text=escape(empty_text))
    head = "".join(f'<th scope="col" class="{css}">{heading}</th>'
                   for column, heading, css in TABLE_COLUMNS if show_ids or column != "id")
    body = "".join(review_row(r[0], r[1], r[2], r[3], r[4], show_ids, r[5] if len(r) > 5 else None,
                              r[6] if len(r) > 6 else None) for r in rows)
    return (f'<table class="owner-reviews"><caption class="sr-only">Reviews, newest first</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


# Runs in the browser (gr.HTML js_on_load): each time in the owner's zone, as a date and time.
OWNER_TIME_JS = r"""
const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
function show() {
  element.querySelectorAll("time[datetime]").forEach((t) => {
    const when = Date.parse(t.getAttribute("datetime"));
    if (Number.isNaN(when)) return;
    t.textContent = fmt.format(when);
    t.title = full.format(when);
  });
}
show();
watch("value", show);
"""

CSS = """
#admin-list .owner-reviews { width: 100%; border-collapse: collapse; }
#admin-list th { text-align: start; font-weight: 600; padding: 8px; border-bottom: 2px solid var(--border-color-primary);
  color: var(--body-text-color); }
#admin-list td { padding: 8px; vertical-align: top; border-bottom: 1px solid var(--border-color-primary);
  color: var(--body-text-color); overflow-wrap: anywhere; }
#admin-list td p { margin: 0; white-space: pre-wrap; }
#admin-list .col-when { width: 11em; } #admin-list .col-name { width: 12em; } #admin-list .col-rating { width: 7em; }
#admin-list .col-id { width: 4em; font-variant-numeric: tabular-nums; }
#admin-list .anon { font-style: italic; }
#admin-list .stars { color: #a04a00; letter-spacing: 1px; white-space: nowrap; }
#admin-list .stars .off { color: #767676; }
.dark #admin-list .stars { color: #fbbf24; }
.dark #admin-list .stars .off { color: #8b8b8b; }
#admin-list time { color: var(--body-text-color-subdued); }
#admin-list .mod-mark { margin: 0 0 4px; }
#admin-list .mod-mark strong { display: inline-block; padding: 0 6px; border: 1px solid currentColor; border-radius: 4px;
  color: var(--body-text-color); font-size: 0.85em; text-transform: uppercase; letter-spacing: 0.5px; }
#admin-list tr[data-status=hidden] .col-comment > p[dir], #admin-list tr[data-status=pending] .col-comment > p[dir] {
  font-style: italic; }
#admin-list .owner-reply { margin: 6px 0 0 12px; padding-left: 8px; border-left: 3px solid var(--border-color-primary); }
#admin-list .owner-reply .reply-who { font-weight: 600; font-size: 0.9em; white-space: normal; }
#admin-list .empty { padding: 16px; border: 1px dashed var(--border-color-primary); border-radius: 8px; }
@media (max-width: 640px) {
  #admin-list thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0, 0, 0, 0); }
  #admin-list .owner-reviews, #admin-list tbody, #admin-list tr, #admin-list td { display: block; width: auto; }
  #admin-list tr { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px;
    margin-bottom: 12px; }
  #admin-list td { border: none; padding: 2px 0; }
  #admin-list td.col-id::before { content: "#"; }
  #admin-list td.col-name { font-weight: 600; }
}
"""
