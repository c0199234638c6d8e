"""The public list of the latest reviews, as HTML that reads like a list on a phone.

Everything a person typed is escaped here, on the server, before it reaches
the page: `html.escape` for the markup characters, plus `$`, `{`, `}` and the
backtick, because gr.HTML fills its template as a JS template string and a
Handlebars template (a comment such as "${...}" or "{{...}}" must stay text).

No internal ids: a review is its time, its name, its stars and its comment.
Times are sent as UTC (`<time datetime=...>` with a readable UTC fallback);
`TIME_JS` rewrites them in the visitor's time zone ("3 minutes ago" for recent
ones, a date for older ones) and says "UTC" when the browser cannot tell.
"""

from __future__ import annotations

import html

from shared import utc
from shared.reviews import HIGHEST
from web.display_text import without_bidi_controls

ANONYMOUS = "Anonymous"
EMPTY_HTML = ('<div class="empty" role="status"><p class="empty-title">No reviews yet.</p>'
              '<p>Be the first: <a href="#rating">choose a rating</a> and tell us what you think.</p></div>')
LOADING_HTML = '<p class="loading">Loading the latest reviews…</p>'
# Longer comments are clamped to a few lines with a "Read the whole comment" toggle.
CLAMP_CHARS = 280
CLAMP_LINES = 4
_EXTRA_ESCAPES = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})


def escape(text: str | None) -> str:
    return html.escape(text or "", quote=True).translate(_EXTRA_ESCAPES)


def utc_fallback(created_at: str) -> str:
    """'2026-11-25T21:04:47.535Z' -> '25 Nov 2026, 21:04 UTC' (what shows without JavaScript)."""
    try:
        return utc.readable(utc.parse_db(created_at))
    except ValueError:
        return escape(created_at)


def stars(rating: int) -> str:
    """Filled and empty stars for the eye, "Rated 4 out of 5" for screen readers."""
    rating = max(0, min(HIGHEST, int(rating or 0)))
    return (f'<span class="stars" role="img" aria-label="Rated {rating} out of {HIGHEST}">'
            f'{"★" * rating}<span class="off">{"★" * (HIGHEST - rating)}</span></span>')


OWNER_REPLY_LABEL = "Reply from the owner"


def _reply(reply: str | None) -> str:
    """The owner's public answer, marked as theirs, escaped like every other text."""
    if not (reply or "").strip():
        return ""
    return (f'<div class="reply"><p class="reply-who">{OWNER_REPLY_LABEL}</p>'
            f'<p class="reply-text" dir="auto">{escape(without_bidi_controls(reply))}</p></div>')


def _item(created_at: str, name: str | None, rating: int, comments: str | None, hide_names: bool,
          reply: str | None = None) -> str:
    anonymous = hide_names or not (name or "").strip()
    who = (f'<span class="who anon">{ANONYMOUS}</span>' if anonymous
           else f'<span class="who" dir="auto">{escape(without_bidi_controls(name))}</span>')
    parts = [f'<li class="review"><div class="meta">{who}{stars(rating)}'
             f'<time datetime="{escape(created_at)}">{utc_fallback(created_at)}</time></div>']
    text = comments or ""
    if text:
        long = len(text) > CLAMP_CHARS or text.count("\n") >= CLAMP_LINES
        parts.append(f'<p class="comment{" clamp" if long else ""}" dir="auto">'
                     f'{escape(without_bidi_controls(text))}</p>')
        if long:
            parts.append(('<details class="more"><summary><span class="closed-text">Read the whole comment</span>'
                         '<span class="open-text">Show less</span></summary></details>'))
    parts.append(_reply(reply))
    parts.append("</li>")
    return "".join(parts)


def render(rows: list[tuple], hide_names: bool) -> str:
    """rows: (id, created_at, name, rating, comments[, reply, reply_at]), newest first. The id is not shown."""
    if not rows:
        return EMPTY_HTML
    items = "".join(_item(r[1], r[2], r[3], r[4], hide_names, r[5] if len(r) > 5 else None) for r in rows)
    return f'<ol class="reviews">{items}</ol>'


# Runs once per page in the browser (gr.HTML's js_on_load), then after every re-render.
TIME_JS = r"""
const zone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; } })();
const known = zone && zone !== "UTC" && zone !== "Etc/UTC" && zone !== "Etc/Unknown";
const opts = known ? {} : { timeZone: "UTC" };
const suffix = known ? "" : " UTC";
const rel = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", ...opts });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short", ...opts });
function show() {
  const now = Date.now();
  element.querySelectorAll("time[datetime]").forEach((t) => {
    const when = Date.parse(t.getAttribute("datetime"));
    if (Number.isNaN(when)) return;
    const s = Math.round((now - when) / 1000);
    let text;
    if (s < 45) text = "just now";
    else if (s < 3600) text = rel.format(-Math.max(1, Math.round(s / 60)), "minute");
    else if (s < 86400) text = rel.format(-Math.round(s / 3600), "hour");
    else if (s < 7 * 86400) text = rel.format(-Math.round(s / 86400), "day");
    else text = dateFmt.format(when) + suffix;
    t.textContent = text;
    t.title = fullFmt.format(when) + suffix;
  });
}
show();
watch("value", show);
setInterval(show, 30000);
"""

CSS = """
#latest .reviews { list-style: none; margin: 0; padding: 0; }
#latest .review { padding: 12px 0; border-bottom: 1px solid var(--border-color-primary); overflow-wrap: anywhere; }
#latest .review:last-child { border-bottom: none; }
#latest .meta { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; }
#latest .who { font-weight: 600; color: var(--body-text-color); }
#latest .who.anon { font-weight: 400; font-style: italic; }
#latest .stars { color: #a04a00; letter-spacing: 1px; font-size: 1.05em; }
#latest .stars .off { color: #767676; }
/* Dark mode: the filled stars brighter than the empty ones, both readable on the dark page. */
.dark #latest .stars { color: #fbbf24; }
.dark #latest .stars .off { color: #8b8b8b; }
#latest time { color: var(--body-text-color-subdued); font-size: 0.9em; }
#latest .comment { margin: 6px 0 0; white-space: pre-wrap; color: var(--body-text-color); }
#latest .comment.clamp { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 4; overflow: hidden; }
#latest .review:has(details[open]) .comment.clamp { display: block; -webkit-line-clamp: unset; overflow: visible; }
#latest details.more summary { cursor: pointer; margin-top: 4px; color: var(--link-text-color); text-decoration: underline; }
#latest details.more .open-text, #latest details.more[open] .closed-text { display: none; }
#latest details.more[open] .open-text { display: inline; }
#latest .empty { padding: 16px; border: 1px dashed var(--border-color-primary); border-radius: 8px; }
#latest .empty-title { font-weight: 600; margin: 0 0 4px; }
#latest h2 { font-size: 1.1em; margin: 0 0 4px; }
#latest .reply { margin: 8px 0 0 16px; padding-left: 10px; border-left: 3px solid var(--border-color-primary); }
#latest .reply-who { margin: 0; font-weight: 600; font-size: 0.9em; color: var(--body-text-color); }
#latest .reply-text { margin: 2px 0 0; white-space: pre-wrap; color: var(--body-text-color); }
"""
