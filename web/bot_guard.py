"""Bots kept out of the public form, without a third party (no CAPTCHA service, no network).

On the page, two hidden fields travel with every submit:
- a trap: a text field moved off-screen, hidden from screen readers (aria-hidden), out of the
  tab order (tabindex=-1) and from auto-fill (autocomplete=off). People never see it; form
  bots fill every field they find. Not `display:none`: many bots skip those.
- a token issued when the page loads: its issue time, a nonce and an HMAC over both with a key
  kept in the data folder (0600), so a restart of the web keeps the open pages working. A
  submit sooner than FEEDBACK_MIN_SUBMIT_SECONDS after the load is faster than people type;
  a token is good for one review (the page gets a fresh one with each confirmation), and for
  TOKEN_MAX_AGE_SECONDS.
For every submit, page or API:
- the same comment again within FEEDBACK_DUPLICATE_WINDOW_SECONDS (comments of at least
  DUPLICATE_MIN_CHARS, compared case- and space-insensitively, from anyone: a spam wave
  comes from many addresses). An in-process cache, filled at the first check from the
  window's reviews (the created_at index), so a restart does not open the window again;
- at most FEEDBACK_MAX_LINKS links in the name and comment together.

API calls (`/gradio_api/call/add_review`, gradio_client) keep their three inputs (name,
rating 1-5 as an integer, comments): a script has no page load to time and no hidden field
to leave empty, so it meets the duplicate and link checks and the per-client rate limit.

Each refusal says what a person can do, is logged (`submit refused reason=...`) and counted.
The counts are the web's: kept in memory and added to the database's `meta` table (keys
`refused:<reason>` and `refused:since`) at most every FLUSH_SECONDS, in one short
transaction. Those writes touch no review, so the backup change counter (`meta.changes`,
kept by triggers on `reviews`) does not move and no backup is made for them; a crash loses
at most the last FLUSH_SECONDS of counts.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from shared import utc
from shared.config import Config
from shared.db import Store, connect, transaction
from web.capped_table import CappedTable
from shared.logs import q
from shared.reviews import Review

log = logging.getLogger("web.bot_guard")

TRAP_ELEM_ID = "extra-field"
TOKEN_ELEM_ID = "form-token"
TRAP_LABEL = "Leave this field empty"
TOKEN_MAX_AGE_SECONDS = 86400.0
DUPLICATE_MIN_CHARS = 20  # "Great!" twice in an hour is two happy people, not a bot
MAX_TRACKED = 50_000  # nonces used, and comment fingerprints in the window: bounded memory
FLUSH_SECONDS = 30.0
KEY_BYTES = 32
REASONS = ("trap", "too_fast", "stale_page", "duplicate", "links")
REASON_LABELS = {"trap": "hidden field filled in", "too_fast": "sent too fast after the page opened",
                 "stale_page": "page out of date or token reused", "duplicate": "same comment again",
                 "links": "too many links"}

# A link: a scheme, "www.", or a bare domain of a common spam TLD ("cheap-pills.shop/x").
_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+"
                   r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|info|biz|ru|cn|xyz|top|io|co|shop|site|"
                   r"online|click|link|store|app)\b(?:/\S*)?")

# Off-screen, not display:none (bots skip hidden fields), not zero-size (some skip those too).
CSS = f"""
#{TRAP_ELEM_ID} {{ position: absolute !important; left: -10000px !important; top: auto !important;
  width: 1px !important; height: 1px !important; overflow: hidden !important; }}
"""
# Gradio draws the field after load: mark it hidden from screen readers, out of the tab order
# and from auto-fill once it exists.
JS = f"""
() => {{
  const hide = (tries) => {{
    const box = document.getElementById("{TRAP_ELEM_ID}");
    const input = box && box.querySelector("input, textarea");
    if (!input) {{ if (tries > 0) setTimeout(() => hide(tries - 1), 100); return; }}
    box.setAttribute("aria-hidden", "true");
    box.querySelectorAll("input, textarea, button, a").forEach((el) => el.setAttribute("tabindex", "-1"));
    input.setAttribute("autocomplete", "off");
  }};
  hide(100);
}}
"""

MESSAGES = {
    "trap": ("Your review was not saved: a field that people never see was filled in, which is what spam "
             "robots do. If you are a person, reload the page and send your review again (with your "
             "browser's auto-fill off for this page)."),
    "too_fast": ("Your review was not saved: it was sent too soon after the page opened, faster than people "
                 "write. Please check it and press Submit again in a few seconds."),
    "stale_page": ("Your review was not saved: this page is out of date. Copy your comment, reload the page "
                   "and send it again."),
    "duplicate": ("Your review was not saved: the same comment was sent in the last {window}. If it was yours, "
                  "it is saved already; otherwise please write your review in your own words."),
    "links": ("Your review was not saved: it has {n} links, and at most {max} are allowed (spam is mostly "
              "links). Please remove some and send it again."),
}


class Refused(Exception):
    """A submit the guard turned away; the message is shown to the person as is."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def count_links(*texts: str) -> int:
    return sum(len(_LINK.findall(t or "")) for t in texts)


def fingerprint(comments: str) -> str | None:
    """The comment as compared for duplicates (None: too short to compare)."""
    flat = " ".join(comments.casefold().split())
    if len(flat) < DUPLICATE_MIN_CHARS:
        return None
    return hashlib.sha256(flat.encode("utf-8")).hexdigest()


def _window_text(seconds: float) -> str:
    if seconds >= 3600:
        hours = seconds / 3600
        return "hour" if hours == 1 else f"{hours:g} hours"
    return "minute" if seconds == 60 else f"{seconds / 60:g} minutes"


def load_key(path: Path) -> bytes:
    """The signing key, made once (0600, created exclusively so two starts agree on one)."""
    try:
        key = path.read_bytes()
        if len(key) >= KEY_BYTES:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process made the key first: use theirs
    except FileExistsError:
        key = path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return key


class RefusalCounter:
    """Refusals per reason: in memory, added to `meta` at most every FLUSH_SECONDS."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic):
        self.store, self.clock = store, clock
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._flushed_at = clock()

    def add(self, reason: str) -> None:
        with self._lock:
            self._pending[reason] = self._pending.get(reason, 0) + 1
        if self.clock() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = self.clock()
        if not pending or not self.store.path.is_file():
            return
        try:
            # Its own connection: the last flush runs at exit, after the store's are closed.
            conn = connect(self.store.path)
            try:
                with transaction(conn):
                    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('refused:since', ?)",
                                 (int(time.time()),))
                    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                                     "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                                     [(f"refused:{r}", n) for r, n in pending.items()])
            finally:
                conn.close()
        except sqlite3.Error as exc:  # counted again at the next flush
            log.warning("could not save refusal counts error=%s", exc)
            with self._lock:
                for reason, n in pending.items():
                    self._pending[reason] = self._pending.get(reason, 0) + n

    def counts(self) -> tuple[dict[str, int], int | None]:
        """Refusals per reason (saved + pending) and since when (epoch seconds; None: none yet)."""
        rows = dict(self.store.conn().execute("SELECT key, value FROM meta WHERE key LIKE 'refused:%'").fetchall())
        since = rows.pop("refused:since", None)
        counts = {r: int(rows.get(f"refused:{r}", 0)) for r in REASONS}
        with self._lock:
            for reason, n in self._pending.items():
                counts[reason] = counts.get(reason, 0) + n
            if since is None and self._pending:
                since = int(time.time())
        return counts, since


_COUNTERS: dict[Path, RefusalCounter] = {}
_COUNTERS_LOCK = threading.Lock()


def counter_for(store: Store) -> RefusalCounter:
    """One counter per database in this process: the form counts, the owner's page reads."""
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(store.path)
        if counter is None or counter.store is not store:
            counter = _COUNTERS[store.path] = RefusalCounter(store)
            atexit.register(counter.flush)
        return counter


def refusal_summary(store: Store) -> str:
    """One line for the owner's page (HTML: only numbers and our own words, so nothing to escape;
    not Markdown, whose renderer the owner's page no longer loads)."""
    counts, since = counter_for(store).counts()
    if not sum(counts.values()):
        return "<p><strong>Refused as likely spam:</strong> none so far.</p>"
    when = utc.readable(since)
    parts = [f"{counts[r]:,} {REASON_LABELS[r]}" for r in REASONS if counts.get(r)]
    return f"<p><strong>Refused as likely spam since {when}:</strong> {sum(counts.values()):,} ({'; '.join(parts)}).</p>"


@dataclass(frozen=True)
class PageFields:
    """What the page sends besides the review: the trap's value and the load-time token."""
    trap: object
    token: object


class BotGuard:
    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.time):
        self.config, self.store, self.clock = config, store, clock
        self.key = load_key(config.bot_guard_key_path)
        self.counter = counter_for(store)
        self._used: CappedTable[str, float] = CappedTable(MAX_TRACKED)  # nonce -> time used
        self._recent: CappedTable[str, float] = CappedTable(MAX_TRACKED)  # comment fingerprint -> time stored
        self._seeded = False
        self._lock = threading.Lock()

    # --- the load-time token ---
    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        body = f"{int(self.clock() * 1000)}.{secrets.token_hex(8)}"
        return f"{body}.{self._sign(body)}"

    def _check_token(self, token: object) -> tuple[str, float]:
        """(nonce, age in seconds) of a genuine token, or Refused."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or not hmac.compare_digest(self._sign(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise self._refuse("stale_page")
        age = self.clock() - int(parts[0]) / 1000
        if age > TOKEN_MAX_AGE_SECONDS or age < -60:
            raise self._refuse("stale_page")
        if age < self.config.min_submit_seconds:
            raise self._refuse("too_fast")
        with self._lock:
            if parts[1] in self._used:
                raise self._refuse("stale_page")
        return parts[1], age

    # --- duplicates ---
    def _seed(self) -> None:
        """The window's comments from the database, once: a restart must not reopen the window."""
        since = utc.db_time(self.clock() - self.config.duplicate_window_seconds)
        rows = self.store.conn().execute(
            "SELECT comments, created_at FROM reviews WHERE created_at >= ? ORDER BY id DESC LIMIT ?",
            (since, MAX_TRACKED)).fetchall()
        for comments, created_at in reversed(rows):
            key = fingerprint(comments or "")
            if key:
                try:
                    at = utc.parse_db(created_at)
                except ValueError:
                    continue
                self._recent.put(key, at)
        self._seeded = True

    def _is_duplicate(self, key: str | None, now: float) -> bool:
        if key is None or not self.config.duplicate_window_seconds:
            return False
        with self._lock:
            if not self._seeded:
                self._seed()
            while (oldest := self._recent.oldest()) is not None:
                if now - oldest[1] < self.config.duplicate_window_seconds:
                    break
                self._recent.drop_oldest()
            return key in self._recent

    # --- the one call from the submit handler ---
    def admit(self, review: Review, store_review: Callable[[], int], *, client: str,
              page: PageFields | None) -> int:
        """Run the checks, then `store_review()`; returns its id, or raises Refused (nothing stored).

        `page` is None for an API call (see the module's doc)."""
        via = "page" if page is not None else "api"
        try:
            nonce = None
            if page is not None:
                if page.trap not in (None, ""):
                    raise self._refuse("trap")
                nonce, _ = self._check_token(page.token)
            n_links = count_links(review.name, review.comments)
            if n_links > self.config.max_links:
                raise self._refuse("links", n=n_links, max=self.config.max_links)
            now = self.clock()
            key = fingerprint(review.comments)
            if self._is_duplicate(key, now):
                raise self._refuse("duplicate", window=_window_text(self.config.duplicate_window_seconds))
        except Refused as refusal:
            # The reason in the template: the log's repeat filter then limits a flood per reason,
            # and one reason's flood does not hide the others.
            log.info(f"submit refused reason={refusal.reason} via=%s client=%s", via, q(client))
            self.counter.add(refusal.reason)
            raise
        review_id = store_review()  # a storage error propagates: nothing was recorded
        with self._lock:
            if nonce is not None:
                self._used.put(nonce, now)
            if key is not None and self.config.duplicate_window_seconds:
                self._recent.put(key, now)
        return review_id

    def _refuse(self, reason: str, **values) -> Refused:
        return Refused(reason, MESSAGES[reason].format(**values))
