"""The owner's exports: the reviews the page shows (every filter, the search included) as CSV or XLSX.

Both are streamed from one read transaction on a read-only connection (memory does not grow
with the table; the file is one consistent state). Times are ISO 8601 twice: UTC as stored,
and in the owner's time zone (the browser's, sent with the request) with its offset. Every
text cell goes through the backup CSV's formula-injection guard (`shared.csv_export.guard_cell`),
in the XLSX too: a spreadsheet opened from it must not run a reviewer's "=HYPERLINK(...)".
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared import utc
from shared.csv_export import guard_cell
from shared.db import ReviewFilter, connect, filtered_ids_sql, read_transaction

FORMATS = ("csv", "xlsx")
# After the review: the owner's moderation (public / hidden / pending) and public reply, as in the backup CSV.
HEADERS = ["id", "created_at_utc", "created_at_local", "time_zone", "name", "rating", "comments", "status", "reply",
           "reply_at"]
MAX_ZONE_CHARS = 64


def owner_zone(name: str | None) -> ZoneInfo | timezone:
    """The browser's IANA zone, or UTC when it sent none or one this machine does not know."""
    name = (name or "").strip()[:MAX_ZONE_CHARS]
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return timezone.utc


def zone_name(zone: ZoneInfo | timezone) -> str:
    return getattr(zone, "key", "UTC")


def _local_iso(created_at: str, zone) -> str:
    try:
        at = utc.parse_db(created_at)
    except ValueError:
        return str(guard_cell(created_at or ""))
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def _rows(db_path: Path, f: ReviewFilter, zone) -> Iterator[list]:
    conn = connect(db_path, readonly=True)
    try:
        with read_transaction(conn):
            sql = "SELECT id, created_at, name, rating, comments, status, reply, reply_at FROM reviews"
            params: list = []
            if f.active:
                ids_sql, params = filtered_ids_sql(f)
                sql += f" WHERE id IN ({ids_sql})"
            label = zone_name(zone)
            for review_id, created_at, name, rating, comments, status, reply, reply_at in conn.execute(
                    sql + " ORDER BY id", params):
                yield [review_id, guard_cell(created_at), _local_iso(created_at, zone), label,
                       guard_cell(name or ""), rating, guard_cell(comments or ""), status, guard_cell(reply or ""),
                       guard_cell(reply_at or "")]
    finally:
        conn.close()


def _write_csv(target: Path, rows: Iterator[list]) -> None:
    with open(target, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADERS)
        writer.writerows(rows)


def _write_xlsx(target: Path, rows: Iterator[list]) -> None:
    import xlsxwriter

    # constant_memory: rows are flushed as they are written (one row in memory at a time).
    # strings_to_formulas/urls off: a cell is always the text as stored, never a formula or link.
    book = xlsxwriter.Workbook(str(target), {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
    try:
        sheet = book.add_worksheet("reviews")
        bold = book.add_format({"bold": True})
        sheet.write_row(0, 0, HEADERS, bold)
        sheet.set_column(1, 2, 26)
        sheet.set_column(4, 4, 24)
        sheet.set_column(6, 6, 80)
        for i, row in enumerate(rows, start=1):
            for j, value in enumerate(row):
                if isinstance(value, str):
                    sheet.write_string(i, j, value)
                else:
                    sheet.write_number(i, j, value)
    finally:
        book.close()


def write_owner_export(db_path: Path, folder: Path, f: ReviewFilter, *, fmt: str = "csv",
                       zone_name_sent: str | None = None, remove_old=None) -> Path:
    """Write the filter's reviews to a new file in its own unguessable sub-folder of `folder`.

    Written under a temporary name (0600 before the first byte) and renamed, so a half-written
    file is never offered."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # mkdir's mode is cut by the umask, and an older folder may be wider
    if remove_old is not None:
        remove_old(folder)
    target_dir = folder / secrets.token_hex(16)
    target_dir.mkdir(mode=0o700)
    target = target_dir / f"reviews-{utc.stamp()}.{fmt}"
    partial = target.with_name(target.name + ".tmp")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        rows = _rows(db_path, f, owner_zone(zone_name_sent))
        (_write_csv if fmt == "csv" else _write_xlsx)(partial, rows)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(target_dir, ignore_errors=True)
        raise
    return target
