"""The CSV of every review: one query, one formula guard, one streaming writer.

Used by the worker (the CSV in every backup, from the snapshot) and by the
owner's page (a download, from the live database), so both files have the
same format:

- header `COLUMNS` (shared.db.BACKUP_COLUMNS: the review's own five, then the owner's
  status, reply and reply_at), then one row per review in id order;
- `id` bare, every other cell quoted (`csv.QUOTE_NONNUMERIC`: the guarded
  columns are strings), LF line ends: the format of every backup so far. Any CSV
  reader (pandas, Excel, `csv.reader`) reads it back to the same values.
- the guard against formula injection (OWASP: a text cell starting with
  = + - @ tab or CR gets a leading '; also after leading spaces, NBSP or
  zero-width characters, and for full-width forms: see FORMULA_STARTS) runs
  inside SQLite, in the query itself,
  on every column but `id`: a restored or hand-edited database may hold anything.

Written by `csv.writer` from a cursor, through Python's own SQLite library, in
flat memory. An Arrow path (adbc-driver-sqlite) was ~0.2 s CPU faster per
100k-row shard, the most a backup cycle writes (bench/export.py), but it loaded
a second SQLite library into the process, and two libraries release each
other's POSIX locks on a file both have open (sqlite.org/howtocorrupt.html 2.2).

A single SELECT is one read transaction in SQLite, so the file is one
consistent state of the table even when it is read from the live database.
"""

from __future__ import annotations

import csv
from pathlib import Path

from shared.db import BACKUP_COLUMNS as COLUMNS, connect
from shared.reviews import WITHHELD_NAME_CSV_SQL

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Not only the first character. Spreadsheet imports trim or normalise what comes before a
# formula: LibreOffice's "trim spaces" and Google Sheets drop leading spaces, some imports
# strip NBSP, zero-width characters and a BOM, and Excel with an East Asian IME setting turns
# full-width =+-@ into ASCII. So a cell is guarded when its first character after any of
# LEADING_IGNORED is a formula start, ASCII or full-width. The cost is a ' before a few more
# harmless cells of the CSV (" - bullet"); the database, the Parquet shards and the page keep
# the text exactly as sent. Tab and CR count only as the very first character (the OWASP rule).
#
# Which characters an import may drop or show as nothing is not a short list (a probe got
# through with \x0b, \x0c, \x1f, U+0085, U+2003, U+2028, U+200E, U+202A, U+00AD and U+3164), so
# the rule is a class: every control (Cc), format (Cf: soft hyphen, bidi marks and overrides,
# zero-width characters, BOM, tag characters) and separator (Zs, Zl, Zp: every Unicode space and
# line break) character, plus the letters and marks that exist to render as nothing (Hangul
# fillers, combining grapheme joiner, variation selectors, Mongolian selectors, Khmer inherent
# vowels, the blank Braille pattern). Derived from Python's Unicode tables at import; the SQL
# below is generated from the same set, so the two cannot disagree.
_INVISIBLE_LETTERS_AND_MARKS = ("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800"
                                + "".join(map(chr, range(0xFE00, 0xFE10)))
                                + "".join(map(chr, range(0xE0100, 0xE01F0))))
_IGNORED_CATEGORIES = ("Cc", "Cf", "Zs", "Zl", "Zp")


def _ignored_characters() -> str:
    import unicodedata

    # Not NUL: SQLite's ltrim reads its character set as a C string, and a review never holds one.
    chars = [c for c in map(chr, range(1, 0x110000))
             if not 0xD800 <= ord(c) <= 0xDFFF and unicodedata.category(c) in _IGNORED_CATEGORIES]
    return "".join(sorted(set(chars) | set(_INVISIBLE_LETTERS_AND_MARKS)))


LEADING_IGNORED = _ignored_characters()
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _sql_literal(c: str) -> str:
    return f"'{c}'" if c.isprintable() and c.isascii() and c != "'" else f"char({ord(c)})"


def _sql_chars(chars) -> str:
    # SQLite takes at most 127 arguments per function call (SQLITE_MAX_FUNCTION_ARG before 3.48).
    codes = [str(ord(c)) for c in chars]
    return " || ".join(f"char({', '.join(codes[i:i + 100])})" for i in range(0, len(codes), 100))


def _guarded(column: str) -> str:
    # Most cells start with a letter: one substr and one IN decide, as with the first-character
    # rule alone. The trim runs only for a cell that starts with an ignorable character (ltrim on
    # every cell made the whole export 5x slower).
    text = f"COALESCE(CAST({column} AS TEXT), '')"
    first = f"substr({text}, 1, 1)"
    starts = ", ".join(_sql_literal(c) for c in FORMULA_STARTS)
    ignored = ", ".join(_sql_literal(c) for c in LEADING_IGNORED)
    guarded = f"'''' || {text}"
    return (f"CASE WHEN {first} NOT IN ({starts}, {ignored}) THEN {text} "
            f"WHEN {first} IN ({starts}, char(9), char(13)) THEN {guarded} "
            f"WHEN substr(ltrim({text}, {_sql_chars(LEADING_IGNORED)}), 1, 1) IN ({starts}) THEN {guarded} "
            f"ELSE {text} END AS {column}")


# Every column but the id is guarded, also those the app fills itself.
EXPORT_SQL = (f"SELECT {COLUMNS[0]}, {', '.join(_guarded(c) for c in COLUMNS[1:])} "
              f"FROM reviews ORDER BY {COLUMNS[0]}")


def guard_cell(value: object) -> object:
    """The same rule in Python, for rows that do not come from EXPORT_SQL."""
    if isinstance(value, str) and (value.startswith(("\t", "\r"))
                                   or value.lstrip(LEADING_IGNORED).startswith(FORMULA_STARTS)):
        return "'" + value
    return value


def _write_stdlib(db_path: Path, csv_path: Path, sql: str = EXPORT_SQL, params: list | tuple = ()) -> None:
    conn = connect(db_path, readonly=True)
    try:
        with open(csv_path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
            writer.writerow(COLUMNS)
            cursor = conn.execute(sql, params)
            cursor.arraysize = 1000
            writer.writerows(cursor)
    finally:
        conn.close()


def range_sql(lo: int, hi: int, *, blank_names: bool = False) -> str:
    """EXPORT_SQL for the ids lo..hi only (one CSV shard of a backup); with blank_names,
    every name is withheld (shared.reviews.WITHHELD_NAME_CSV_SQL)."""
    cells = ", ".join(f"{WITHHELD_NAME_CSV_SQL} AS name" if blank_names and c == "name" else _guarded(c)
                      for c in COLUMNS[1:])
    return (f"SELECT {COLUMNS[0]}, {cells} FROM reviews WHERE {COLUMNS[0]} BETWEEN {int(lo)} AND {int(hi)} "
            f"ORDER BY {COLUMNS[0]}")


def write_reviews_csv(db_path: Path, csv_path: Path, only_ids: tuple[str, list] | None = None, *,
                      sql: str = EXPORT_SQL) -> None:
    """Write every review of `db_path` to `csv_path` (created or truncated; its mode is kept),
    or those `sql` selects (`range_sql`: one shard of a backup).

    `only_ids`: (a SELECT of ids, its parameters) narrows the file to those reviews (the owner's
    dates and ratings)."""
    params: list | tuple = ()
    if only_ids is not None:
        ids, params = only_ids
        sql = EXPORT_SQL.replace(" FROM reviews ORDER BY", f" FROM reviews WHERE {COLUMNS[0]} IN ({ids}) ORDER BY")
        if sql == EXPORT_SQL:
            raise RuntimeError("EXPORT_SQL changed shape: the filtered export cannot narrow it")
    _write_stdlib(db_path, csv_path, sql, params)
