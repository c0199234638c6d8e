"""The owner's moderation: hide, unhide, approve, reply, delete, and the log of every action.

Used by the owner's page (web/moderation_panel.py) and by tests and benches; the
worker only reads what it leaves (tombstones, the log, erase requests).

- Status: a review is public, hidden (taken down, kept) or pending (pre-moderation:
  waiting for approval). Only public reviews are on the public page and in its figures
  (the trigger-kept review_stats.public_n, see shared/db.py migration 4).
- Every action writes one moderation_log row per review: what, when, which review and
  a short detail (the status change, "bulk"); never the review's text, so the log of a
  delete holds nothing the delete meant to remove.
- Delete is an erasure. In ONE transaction the row goes and a tombstone (id, time, no
  content) takes its place; the tombstone is what stops a merge, a restore or a backup
  cycle from bringing the review back (worker/merge.py, worker/restore.py, worker/backup.py).
  Then the text is removed from every byte of the database files (`erase_traces`):
    * PRAGMA secure_delete on the deleting connection: SQLite overwrites the deleted
      cells and freed pages with zeros instead of leaving them in free space;
    * the FTS5 index is external content: a delete only appends a "delete" marker in a new
      segment, the old segment still holds the words until the segments are merged, so an
      'optimize' merges them all into one (`merge_fts_segments`; cost: the whole index, ~1 s at
      1M reviews, see bench/moderation.py);
    * a WAL checkpoint(TRUNCATE) writes the zeroed pages into the main file and empties
      the -wal, which otherwise keeps the old page images until it is overwritten.
  tests/test_moderation.py checks that the text is in no byte of reviews.db, -wal or -shm.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Iterable

from shared import utc
from shared.db import HIDDEN, PENDING, PUBLIC, ReviewFilter, filtered_ids_sql, transaction

log = logging.getLogger("shared.moderation")

MAX_REPLY_CHARS = 2000
# A bulk action over a filter touches at most this many reviews at once (a wave of spam is
# hundreds, a mistake with an empty filter would be the whole table): the owner repeats it.
MAX_BULK = 5_000
CHECKPOINT_TRIES = 50
MERGE_LOCKED_RETRIES = 5
CHECKPOINT_PAUSE_SECONDS = 0.1

# Which status each action moves a review from, and to.
_MOVES = {
    "hide": ((PUBLIC, PENDING), HIDDEN),
    "unhide": ((HIDDEN,), PUBLIC),
    "approve": ((PENDING,), PUBLIC),
}


class ModerationError(ValueError):
    """The action cannot be done as asked; the message says why (nothing was changed)."""


class ErasePending(ModerationError):
    """The reviews were deleted, but the database was too busy to finish erasing their traces."""

    def __init__(self, count: int):
        super().__init__(f"{count} review{'s' if count != 1 else ''} deleted. The server was too busy to erase "
                         "every trace from its search index: delete any other review later, or it happens "
                         "at the next erasure; backups never carry the text.")
        self.count = count


@dataclass(frozen=True)
class LogEntry:
    at: str
    action: str
    review_id: int | None
    detail: str


def _ids(ids: Iterable[int]) -> list[int]:
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            try:
                i = int(str(i).strip().lstrip("#"))
            except ValueError:
                raise ModerationError("A review number is a whole number, e.g. 42.") from None
        out.append(i)
    if not out:
        raise ModerationError("No review chosen.")
    return sorted(set(out))


def _chunks(ids: list[int], n: int = 500):
    for k in range(0, len(ids), n):
        yield ids[k:k + n]


def _missing(conn: sqlite3.Connection, ids: list[int]) -> list[int]:
    have: set[int] = set()
    for part in _chunks(ids):
        have.update(r[0] for r in conn.execute(
            f"SELECT id FROM reviews WHERE id IN ({', '.join('?' * len(part))})", part))
    return [i for i in ids if i not in have]


def _log(conn: sqlite3.Connection, action: str, review_ids: Iterable[int | None], detail: str = "") -> None:
    conn.executemany("INSERT INTO moderation_log (action, review_id, detail) VALUES (?, ?, ?)",
                     [(action, i, detail) for i in review_ids])


def set_status(conn: sqlite3.Connection, action: str, ids: Iterable[int], *, bulk: bool = False) -> int:
    """hide / unhide / approve the reviews `ids`; returns how many changed. Reviews already in
    the target status are left alone (and not logged); an unknown id changes nothing at all."""
    if action not in _MOVES:
        raise ModerationError(f"Unknown action {action!r}.")
    wanted = _ids(ids)
    froms, to = _MOVES[action]
    with transaction(conn):
        missing = _missing(conn, wanted)
        if missing:
            raise ModerationError(f"No review #{missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                                else "") + ": nothing was changed.")
        changed: list[tuple[int, str]] = []
        for part in _chunks(wanted):
            marks = ", ".join("?" * len(part))
            rows = conn.execute(f"SELECT id, status FROM reviews WHERE id IN ({marks}) AND status IN "
                                f"({', '.join('?' * len(froms))})", [*part, *froms]).fetchall()
            changed.extend(rows)
            if rows:
                ch = [r[0] for r in rows]
                conn.execute(f"UPDATE reviews SET status = ? WHERE id IN ({', '.join('?' * len(ch))})", [to, *ch])
        for old in {s for _, s in changed}:
            _log(conn, action, [i for i, s in changed if s == old], f"{old}->{to}" + (" bulk" if bulk else ""))
    return len(changed)


def hide(conn: sqlite3.Connection, ids: Iterable[int], *, bulk: bool = False) -> int:
    return set_status(conn, "hide", ids, bulk=bulk)


def unhide(conn: sqlite3.Connection, ids: Iterable[int]) -> int:
    return set_status(conn, "unhide", ids)


def approve(conn: sqlite3.Connection, ids: Iterable[int], *, bulk: bool = False) -> int:
    return set_status(conn, "approve", ids, bulk=bulk)


def reply(conn: sqlite3.Connection, review_id: int, text: str | None) -> None:
    """Set (or, with an empty text, remove) the owner's public reply under a review."""
    text = (text or "").strip()
    if len(text) > MAX_REPLY_CHARS:
        raise ModerationError(f"A reply is at most {MAX_REPLY_CHARS:,} characters (this one has {len(text):,}).")
    if "\x00" in text:
        raise ModerationError("The reply holds a character that cannot be stored (NUL).")
    (rid,) = _ids([review_id])
    with transaction(conn):
        if _missing(conn, [rid]):
            raise ModerationError(f"No review #{rid}: nothing was changed.")
        if text:
            conn.execute(f"UPDATE reviews SET reply = ?, reply_at = {utc.SQL_NOW} "
                         "WHERE id = ?", (text, rid))
            _log(conn, "reply", [rid], f"{len(text)} characters")
        else:
            conn.execute("UPDATE reviews SET reply = NULL, reply_at = NULL WHERE id = ?", (rid,))
            _log(conn, "reply-removed", [rid])


def delete(conn: sqlite3.Connection, ids: Iterable[int], *, bulk: bool = False, erase: bool = True) -> int:
    """Delete the reviews for good: rows out, tombstones and log rows in, one transaction;
    then (`erase`) their text out of every byte of the database files. Returns how many."""
    wanted = _ids(ids)
    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")  # the deleted cells and freed pages are zeroed
    try:
        with transaction(conn):
            missing = _missing(conn, wanted)
            if missing:
                raise ModerationError(f"No review #{missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                    if len(missing) > 1 else "")
                                      + ": nothing was deleted.")
            for part in _chunks(wanted):
                marks = ", ".join("?" * len(part))
                conn.execute(f"DELETE FROM reviews WHERE id IN ({marks})", part)
            conn.executemany("INSERT OR REPLACE INTO tombstones (review_id) VALUES (?)", [(i,) for i in wanted])
            _log(conn, "delete", wanted, "bulk" if bulk else "")
        if erase:
            try:
                erase_traces(conn)
            except sqlite3.OperationalError as exc:
                # The review is deleted (committed above); its words may remain in an FTS segment of
                # this file until the next erasure. Backups never carry them: the worker merges the
                # segments of its own copy (worker.mirror) before it makes any backup file.
                log.warning("reviews deleted, erasing their traces did not finish error=%s", exc)
                raise ErasePending(len(wanted)) from exc
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    log.info("reviews deleted count=%d first_id=%d", len(wanted), wanted[0])
    return len(wanted)


def erase_traces(conn: sqlite3.Connection) -> None:
    """Leave no byte of deleted rows in the files: merge the FTS segments (the old ones hold
    the words of deleted rows until then), zeroing freed pages, and checkpoint the WAL."""
    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        merge_fts_segments(conn)
        checkpoint_truncate(conn)
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")


def merge_fts_segments(conn: sqlite3.Connection) -> None:
    """Merge every FTS5 segment into one ('optimize'), in one write transaction (~1 s at 1M
    reviews, bench/moderation.py; a submit meanwhile waits, within the busy timeout). Not FTS5's
    incremental 'merge' with a negative page count: interleaved with other connections' inserts at
    1M reviews it reported "database disk image is malformed" (SQLite 3.40). A step refused as
    locked past the busy timeout is retried a few times."""
    for attempt in range(MERGE_LOCKED_RETRIES + 1):
        try:
            with transaction(conn):
                conn.execute("INSERT INTO reviews_fts (reviews_fts) VALUES ('optimize')")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == MERGE_LOCKED_RETRIES:
                raise
            time.sleep(CHECKPOINT_PAUSE_SECONDS)


def checkpoint_truncate(conn: sqlite3.Connection) -> bool:
    """Copy every page of the -wal into the database and truncate the -wal to 0 bytes. A reader
    in the middle of a read holds its snapshot's frames: wait for it (a few seconds at most)."""
    for _ in range(CHECKPOINT_TRIES):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        time.sleep(CHECKPOINT_PAUSE_SECONDS)
    log.warning("the WAL could not be truncated after an erasure (a long reader); the next checkpoint will")
    return False


def filter_ids(conn: sqlite3.Connection, f: ReviewFilter, *, limit: int = MAX_BULK) -> list[int]:
    """The ids the owner's filter matches, newest first, at most `limit` (a bulk action's reach)."""
    sql, params = filtered_ids_sql(f)
    return [r[0] for r in conn.execute(f"SELECT id FROM ({sql}) ORDER BY id DESC LIMIT ?", [*params, limit])]


def bulk(conn: sqlite3.Connection, action: str, f: ReviewFilter, *, limit: int = MAX_BULK) -> int:
    """hide / delete / approve every review the filter matches (at most `limit`)."""
    if not f.active:
        raise ModerationError("Narrow the list first (a search, dates or ratings): a bulk action never "
                              "applies to every review.")
    ids = filter_ids(conn, f, limit=limit)
    if not ids:
        return 0
    if action == "delete":
        return delete(conn, ids, bulk=True)
    if action in ("hide", "approve", "unhide"):
        return set_status(conn, action, ids, bulk=True)
    raise ModerationError(f"Unknown bulk action {action!r}.")


def statuses(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """status and reply of each of `ids` (the owner's table marks hidden and pending rows)."""
    wanted = [int(i) for i in ids]
    out: dict[int, tuple[str, str | None]] = {}
    for part in _chunks(wanted):
        for rid, status, rep in conn.execute(
                f"SELECT id, status, reply FROM reviews WHERE id IN ({', '.join('?' * len(part))})", part):
            out[rid] = (status, rep)
    return out


def log_entries(conn: sqlite3.Connection, limit: int = 100) -> list[LogEntry]:
    return [LogEntry(*r) for r in conn.execute(
        "SELECT at, action, review_id, detail FROM moderation_log ORDER BY id DESC LIMIT ?", (limit,))]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Reviews per status, and tombstones (deleted reviews)."""
    out = {PUBLIC: 0, HIDDEN: 0, PENDING: 0}
    out[PUBLIC] = conn.execute("SELECT COALESCE(SUM(public_n), 0) FROM review_stats").fetchone()[0]
    for status, n in conn.execute("SELECT status, COUNT(*) FROM reviews WHERE status <> 'public' GROUP BY status"):
        out[status] = n
    out["deleted"] = conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0]
    return out


def request_history_rewrite(conn: sqlite3.Connection) -> int:
    """Record the owner's request that the worker rewrite the Hub history without the erased
    reviews (the web never reaches the Hub). One open request at a time."""
    with transaction(conn):
        open_id = conn.execute("SELECT id FROM erase_requests WHERE done_at IS NULL").fetchone()
        if open_id:
            return int(open_id[0])
        cur = conn.execute("INSERT INTO erase_requests DEFAULT VALUES")
        _log(conn, "history-rewrite-requested", [None])
    assert cur.lastrowid is not None  # always set after an INSERT
    return cur.lastrowid


def open_history_request(conn: sqlite3.Connection) -> tuple[int, str] | None:
    row = conn.execute("SELECT id, requested_at FROM erase_requests WHERE done_at IS NULL ORDER BY id LIMIT 1"
                       ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def last_history_rewrite(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """(done_at, result) of the last finished request."""
    row = conn.execute("SELECT done_at, result FROM erase_requests WHERE done_at IS NOT NULL "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else (row[0], row[1])


def finish_history_request(conn: sqlite3.Connection, request_id: int, result: str) -> None:
    with transaction(conn):
        conn.execute(f"UPDATE erase_requests SET done_at = {utc.SQL_NOW}, result = ? "
                     "WHERE id = ?", (result, request_id))
        _log(conn, "history-rewritten", [None], result[:200])


def erased_since(conn: sqlite3.Connection, at: str | None) -> int:
    """Tombstones newer than `at` (None: all): reviews deleted since the last history rewrite."""
    if at is None:
        return conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM tombstones WHERE deleted_at > ?", (at,)).fetchone()[0]
