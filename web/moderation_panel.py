"""The owner's moderation tools on the owner's page: hide, unhide, approve, delete (after a
confirmation), the same in bulk over the current filter, a public reply, the moderation log,
and the request to rewrite the Hub history without the erased reviews.

Every write goes through shared.moderation. `attach` adds the panel to the owner's Blocks
(web/admin.py calls it once); `mark_rows` adds each row's status and reply to the owner's list.
The web never reaches the Hub: the history rewrite is a request recorded in SQLite, which
the worker carries out (`python -m worker erase-history`, or its loop).

Plain HTML (no Markdown, no Dataframe: the owner's page loads neither). Messages never repeat a
review's text, and every message is escaped all the same.
"""

from __future__ import annotations

import html
import logging
import shutil
import sqlite3
from typing import Any, Callable

import gradio as gr

from shared import moderation as mod
from shared.config import Config
from shared.db import read_transaction
from shared.owner_search import ReviewFilter
from shared.schema import PUBLIC
from shared.store import Store

log = logging.getLogger("web.moderation_panel")

LOG_ROWS = 50
# Buttons that delete or rewrite: a red that keeps 4.5:1 with white text (Gradio's "stop"
# variant is 3.8:1, below WCAG AA). Added to the owner page's CSS by web/admin.py.
CSS = """
button.danger { background: #b91c1c !important; border-color: #b91c1c !important; color: #ffffff !important; }
button.danger:hover { background: #991b1b !important; }
#mod-log table { width: 100%; border-collapse: collapse; }
#mod-log th, #mod-log td { text-align: start; padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary);
  color: var(--body-text-color); }
#mod-intro h2 { margin: 16px 0 4px; }
#mod-intro p, .mod-text p { margin: 0 0 8px; color: var(--body-text-color); }
"""
LOG_HEADERS = ["at (UTC)", "action", "review", "detail"]
STORAGE_ERROR = "The change could not be saved right now (storage problem). Nothing was changed; please try again."
DELETE_WARNING = ("<strong>Delete for good?</strong> The review's text is erased from this server's database now, and from "
                  "the newest backup on every target at the next backup cycle. It cannot be undone. "
                  "To take a review off the public page but keep it, use <strong>Hide</strong> instead.")
HISTORY_WARNING = ("<strong>Rewrite the Hub history without erased reviews.</strong> Every older revision of the backup "
                   "dataset is replaced by the backups rebuilt without the deleted reviews: commit ids change, "
                   "and anyone who copied the dataset keeps their copy. Point-in-time restore then offers only "
                   "the rebuilt backups. The worker does it at its next cycle.")


def mark_rows(conn: sqlite3.Connection, rows: list[tuple]) -> list[tuple]:
    """The owner's rows with their status ("public", "hidden", "pending") and reply (or None) appended,
    as web/owner_list.py's `render` takes them."""
    info = mod.statuses(conn, [r[0] for r in rows])
    return [(*r, *info.get(r[0], (PUBLIC, None))) for r in rows]


def _filter(state: dict | None) -> ReviewFilter:
    state = dict(state or {})
    state["ratings"] = tuple(state.get("ratings") or ())
    return ReviewFilter(**state)


def _ids(text: str | None) -> list[str]:
    return [p for p in (text or "").replace(",", " ").split() if p]


def _write(store: Store, work: Callable[[sqlite3.Connection], str]) -> str:
    try:
        return work(store.conn())
    except mod.ModerationError as exc:
        return str(exc)
    except sqlite3.Error as exc:
        log.error("moderation could not write error=%s", exc)
        return STORAGE_ERROR


def act(store: Store, action: str, ids_text: str | None) -> str:
    """hide / unhide / approve the reviews typed (numbers, separated by spaces or commas)."""
    def work(conn):
        n = mod.set_status(conn, action, _ids(ids_text))
        done = {"hide": "hidden", "unhide": "public again", "approve": "approved (now public)"}[action]
        return f"{n} review{'s' if n != 1 else ''} {done}." if n else "Nothing to change: already so."
    return _write(store, work)


def delete(store: Store, ids_text: str | None) -> str:
    def work(conn):
        n = mod.delete(conn, _ids(ids_text))
        remove_owner_exports(store)
        return (f"{n} review{'s' if n != 1 else ''} deleted and erased from this server's database. "
                "The newest backups lose it at the next backup cycle.")
    return _write(store, work)


def bulk(store: Store, action: str, state: dict | None) -> str:
    f = _filter(state)

    def work(conn):
        n = mod.bulk(conn, action, f)
        if action == "delete" and n:
            remove_owner_exports(store)
        verb = {"hide": "hidden", "delete": "deleted and erased", "approve": "approved"}[action]
        more = f" (at most {mod.MAX_BULK:,} at a time: apply again for the rest)" if n == mod.MAX_BULK else ""
        return f"{n:,} matching review{'s' if n != 1 else ''} {verb}{more}."
    return _write(store, work)


def bulk_preview(store: Store, action: str, state: dict | None) -> str:
    f = _filter(state)
    if not f.active:
        return "Narrow the list first (a search, dates or ratings): a bulk action never applies to every review."
    n = len(mod.filter_ids(store.conn(), f))
    verb = {"hide": "Hide", "delete": "Delete for good", "approve": "Approve"}[action]
    return f"{verb} the {n:,}{'+' if n == mod.MAX_BULK else ''} reviews matching the applied filter?"


def reply(store: Store, id_text: str | None, text: str | None) -> str:
    ids = _ids(id_text)
    if len(ids) != 1:
        return "Type one review number to reply to."

    def work(conn):
        mod.reply(conn, ids[0], text)
        return "Reply saved: it shows under the review on the public page." if (text or "").strip() else \
            "Reply removed."
    return _write(store, work)


def remove_owner_exports(store: Store) -> None:
    """CSV exports made before a delete hold the text: they go (the owner prepares a new one)."""
    from web.admin import SHARE_FOLDER_NAME, export_dir  # the folder's one home; admin imports this module first

    folder = export_dir(store.path.parent)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == SHARE_FOLDER_NAME:
            continue  # the form's QR code, no review in it
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _text(message: str, role: str = "") -> str:
    """A message as an HTML paragraph (escaped: it may quote what the owner typed)."""
    if not message:
        return ""
    attr = f' role="{role}"' if role else ""
    return f"<p{attr}>{html.escape(message)}</p>"


def log_html(store: Store) -> str:
    """The newest log entries as a table (no review text is ever logged; escaped all the same)."""
    entries = mod.log_entries(store.conn(), LOG_ROWS)
    if not entries:
        return "<p>No moderation yet.</p>"
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in LOG_HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in
                         (e.at, e.action, "" if e.review_id is None else f"#{e.review_id}", e.detail)) + "</tr>"
        for e in entries)
    return (f'<table><caption class="sr-only">Moderation log, newest first</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def overview_text(config: Config, store: Store) -> str:
    """Counts per status, and where deleted reviews may still exist."""
    conn = store.conn()
    with read_transaction(conn):
        c = mod.counts(conn)
        last = mod.last_history_rewrite(conn)
        pending_request = mod.open_history_request(conn)
        since = mod.erased_since(conn, last[0] if last else None)
    parts = [f"{c['public']:,} public, {c['hidden']:,} hidden, {c['pending']:,} waiting for approval, "
             f"{c['deleted']:,} deleted."]
    if config.premoderation:
        parts.append("Pre-moderation is on: new reviews wait here until you approve them.")
    if config.hub_enabled and since:
        parts.append(f"{since:,} deleted review{'s are' if since != 1 else ' is'} still in the older revisions "
                     "of the Hub dataset (every backup made before the delete) until the history is rewritten.")
    if pending_request:
        parts.append(f"A history rewrite was requested at {pending_request[1]} UTC: the worker will do it.")
    elif last:
        parts.append(f"Last history rewrite: {last[0]} UTC ({last[1]}).")
    return " ".join(parts)


def request_rewrite(store: Store) -> str:
    def work(conn):
        mod.request_history_rewrite(conn)
        return "Requested: the worker rewrites the Hub history at its next cycle."
    return _write(store, work)


def attach(demo: gr.Blocks, config: Config, store: Store, *, applied: gr.State, cursor: gr.State,
           refresh: Callable[[dict, dict], tuple], refresh_outputs: list) -> None:
    """Add the panel to the owner's Blocks (called inside its `with` block). After every action
    the page's list is redrawn by `refresh(applied filter, list cursor)` into `refresh_outputs`."""
    gr.HTML("<h2>Moderation</h2><p>Type the numbers of the reviews (tick <strong>Show review ids</strong> above to "
            "see them in the list), then choose an action. Hidden reviews leave the public page, its totals and "
            "chart; they stay here.</p>", elem_id="mod-intro", padding=False)
    overview = gr.HTML(elem_id="mod-overview", elem_classes=["mod-text"], padding=False)
    ids = gr.Textbox(label="Review number(s)", info="e.g. 42, or 42 43 57", max_lines=1, elem_id="mod-ids")
    with gr.Row():
        hide_b = gr.Button("Hide", elem_id="mod-hide")
        unhide_b = gr.Button("Unhide", elem_id="mod-unhide")
        approve_b = gr.Button("Approve", elem_id="mod-approve")
        delete_b = gr.Button("Delete…", elem_classes=["danger"], elem_id="mod-delete")
    with gr.Group(visible=False) as confirm_box:
        gr.HTML(f"<p>{DELETE_WARNING}</p>", elem_classes=["mod-text"])
        with gr.Row():
            confirm_b = gr.Button("Yes, delete for good", elem_classes=["danger"], elem_id="mod-delete-confirm")
            cancel_b = gr.Button("Cancel", elem_id="mod-delete-cancel")
    reply_text = gr.Textbox(label="Public reply from the owner (empty: remove the reply)", lines=3,
                            max_length=mod.MAX_REPLY_CHARS, elem_id="mod-reply")
    reply_b = gr.Button("Save reply", elem_id="mod-reply-save")
    gr.HTML("<h3>Bulk actions on the applied filter</h3>", padding=False)
    with gr.Row():
        bulk_hide = gr.Button("Hide all matching", elem_id="mod-bulk-hide")
        bulk_approve = gr.Button("Approve all matching", elem_id="mod-bulk-approve")
        bulk_delete = gr.Button("Delete all matching…", elem_classes=["danger"], elem_id="mod-bulk-delete")
    bulk_action = gr.State("")
    with gr.Group(visible=False) as bulk_box:
        bulk_question = gr.HTML(elem_id="mod-bulk-question", elem_classes=["mod-text"])
        with gr.Row():
            bulk_yes = gr.Button("Yes, apply to all matching", elem_classes=["danger"], elem_id="mod-bulk-confirm")
            bulk_no = gr.Button("Cancel", elem_id="mod-bulk-cancel")
    result = gr.HTML(elem_id="mod-result", elem_classes=["status", "mod-text"], padding=False)
    gr.HTML("<h3>Moderation log (newest first)</h3>", padding=False)
    log_table = gr.HTML(elem_id="mod-log", padding=False)
    history_b = None
    if config.hub_enabled:
        gr.HTML(f"<p>{HISTORY_WARNING}</p>", elem_classes=["mod-text"], padding=False)
        with gr.Row():
            history_b = gr.Button("Rewrite the Hub history without erased reviews…", elem_classes=["danger"],
                                  elem_id="mod-history")
            history_yes = gr.Button("Yes, rewrite the history", elem_classes=["danger"], visible=False,
                                    elem_id="mod-history-confirm")

    common: dict[str, Any] = dict(api_visibility="private", concurrency_limit=1, show_progress="minimal")
    after = [result, log_table, overview, *refresh_outputs]

    def done(message: str, state: dict, where: dict) -> tuple:
        return (_text(message, "status"), log_html(store), _text(overview_text(config, store)),
                *refresh(state, where))

    for button, action in ((hide_b, "hide"), (unhide_b, "unhide"), (approve_b, "approve")):
        button.click(lambda text, state, where, a=action: done(act(store, a, text), state, where),
                     [ids, applied, cursor], after, **common)
    delete_b.click(lambda: gr.Group(visible=True), None, confirm_box, **common)
    cancel_b.click(lambda: gr.Group(visible=False), None, confirm_box, **common)
    confirm_b.click(lambda text, state, where: (gr.Group(visible=False), *done(delete(store, text), state, where)),
                    [ids, applied, cursor], [confirm_box, *after], **common)
    reply_b.click(lambda i, t, state, where: done(reply(store, i, t), state, where),
                  [ids, reply_text, applied, cursor], after, **common)
    bulk_hide.click(lambda state, where: done(bulk(store, "hide", state), state, where), [applied, cursor], after,
                    **common)
    bulk_approve.click(lambda state, where: done(bulk(store, "approve", state), state, where), [applied, cursor],
                       after, **common)
    bulk_delete.click(lambda state: (gr.Group(visible=True), _text(bulk_preview(store, "delete", state)), "delete"),
                      [applied], [bulk_box, bulk_question, bulk_action], **common)
    bulk_no.click(lambda: gr.Group(visible=False), None, bulk_box, **common)
    bulk_yes.click(lambda state, a, where: (gr.Group(visible=False), *done(bulk(store, a, state), state, where)),
                   [applied, bulk_action, cursor], [bulk_box, *after], **common)
    if history_b is not None:
        history_b.click(lambda: gr.Button(visible=True), None, history_yes, **common)
        history_yes.click(lambda: (gr.Button(visible=False), _text(request_rewrite(store), "status"),
                                   _text(overview_text(config, store))),
                          None, [history_yes, result, overview], **common)
    # The log and counts when the page opens.
    demo.load(lambda: (log_html(store), _text(overview_text(config, store))), None, [log_table, overview], **common)
