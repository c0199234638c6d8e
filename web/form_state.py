"""Whether the public form takes reviews, and what it says while it does not.

Kept in SQLite, not in memory, so every web worker (and a restart) agrees with the owner's
switch. Two rows of the `meta` table, written only here:
- `form_closed`: 1 while the form is closed, 0 (or no row) while it is open;
- `form_closed_message`: the owner's message for visitors, as TEXT (the column is declared
  INTEGER, but `meta` is not a STRICT table, so SQLite keeps text as text).
No schema change: the rows are plain upserts on the existing table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from shared.db import transaction

CLOSED_KEY = "form_closed"
MESSAGE_KEY = "form_closed_message"
DEFAULT_MESSAGE = "The form is closed for now. Thank you for your interest."
MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class FormState:
    closed: bool
    message: str


def read_form_state(conn: sqlite3.Connection) -> FormState:
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", (CLOSED_KEY, MESSAGE_KEY)))
    message = rows.get(MESSAGE_KEY)
    return FormState(closed=bool(rows.get(CLOSED_KEY)),
                     message=message.strip() if isinstance(message, str) and message.strip() else DEFAULT_MESSAGE)


def set_form_state(conn: sqlite3.Connection, closed: bool, message: str | None = None) -> FormState:
    """Open or close the form; the message (trimmed, at most MAX_MESSAGE_CHARS) is kept for next time."""
    text = (message or "").strip()[:MAX_MESSAGE_CHARS]
    with transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (CLOSED_KEY, 1 if closed else 0))
        if text:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (MESSAGE_KEY, text))
    return read_form_state(conn)


def closed_html(state: FormState) -> str:
    """The notice visitors see instead of the form (the owner's text, escaped)."""
    from web.review_list import escape
    return (f'<div class="form-closed" role="status"><p class="form-closed-title">The form is closed</p>'
            f'<p dir="auto">{escape(state.message)}</p></div>') if state.closed else ""


CSS = """
#form-closed .form-closed { padding: 16px; border: 2px solid var(--border-color-primary); border-radius: 8px; }
#form-closed .form-closed-title { font-weight: 600; margin: 0 0 4px; }
"""
