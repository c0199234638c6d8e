"""CSV export of a snapshot, streamed, safe to open in a spreadsheet.

The guard against formula injection (OWASP: a cell starting with = + - @ tab
or CR gets a leading ') runs inside SQLite, so rows go from the cursor to
`csv.writer.writerows` without a Python function per row: the export stays
close to `sqlite3 -csv` speed and memory does not grow with the table.
"""

from __future__ import annotations

import csv
from pathlib import Path

from shared.db import COLUMNS, connect

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _guarded(column: str) -> str:
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "char(9)", "char(13)"])
    return (f"CASE WHEN typeof({column}) = 'text' AND substr({column}, 1, 1) IN ({starts}) "
            f"THEN '''' || {column} ELSE {column} END")


EXPORT_SQL = (f"SELECT id, created_at, {_guarded('name')}, review, {_guarded('comments')} "
              "FROM reviews ORDER BY id")


def guard_cell(value: object) -> object:
    """The same rule in Python, for exports that do not come from SQL (the owner's page)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_csv(db_path: Path, csv_path: Path) -> None:
    """Write every review of `db_path` (a snapshot, never the live db) to `csv_path`."""
    conn = connect(db_path, readonly=True)
    try:
        with open(csv_path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            cursor = conn.execute(EXPORT_SQL)
            cursor.arraysize = 1000
            writer.writerows(cursor)
    finally:
        conn.close()
