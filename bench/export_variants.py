"""CSV export variants, stdlib only, for bench/export.py.

Each candidate keeps the formula guard (a text cell starting with = + - @ tab or CR
gets a leading ') and must write the same bytes as `reference()`: csv.writer
(default dialect: QUOTE_MINIMAL, CRLF) with the guard applied in Python.

Run one in a fresh process:  .venv/bin/python bench/export_variants.py VARIANT DB CSV
(prints its in-process seconds on stdout).
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.db import COLUMNS, connect

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER_LINE = ",".join(COLUMNS) + "\r\n"
SELECT_ALL = "SELECT id, created_at, name, rating, comments FROM reviews"


def _guard_py(row) -> list:
    return ["'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v for v in row]


# ---------------------------------------------------------------- the definition of correct
def reference(db: Path, out_path: Path) -> None:
    """Plain SELECT, guard in Python per cell, csv.writer. Slow, obviously right."""
    conn = connect(db, readonly=True)
    try:
        with open(out_path, "w", newline="", encoding="utf-8") as out:
            w = csv.writer(out)
            w.writerow(COLUMNS)
            for row in conn.execute(f"{SELECT_ALL} ORDER BY id"):
                w.writerow(_guard_py(row))
    finally:
        conn.close()


# ---------------------------------------------------------------- the project as it is
def project(db: Path, out_path: Path) -> None:
    from shared.csv_export import write_reviews_csv as export_csv

    export_csv(db, out_path)


def project_stdlib(db: Path, out_path: Path) -> None:
    """The project's csv-module fallback path (shared.csv_export._write_stdlib), when it has one."""
    from shared import csv_export

    fallback = getattr(csv_export, "_write_stdlib", None)
    if fallback is None:
        raise NotImplementedError("shared.csv_export has no _write_stdlib")
    fallback(db, out_path)


# ---------------------------------------------------------------- guard in SQL, csv.writer in Python
_STARTS = "'=', '+', '-', '@', char(9), char(13)"


def _guard_substr(c: str) -> str:  # shared/csv_export.py without typeof(): substr(NULL) is NULL
    return f"CASE WHEN substr({c}, 1, 1) IN ({_STARTS}) THEN '''' || {c} ELSE {c} END"


def _writerows(db: Path, out_path: Path, sql: str, *, buffering: int = -1, batch: int = 0) -> None:
    conn = connect(db, readonly=True)
    try:
        with open(out_path, "w", newline="", encoding="utf-8", buffering=buffering) as out:
            w = csv.writer(out)
            w.writerow(COLUMNS)
            cur = conn.execute(sql)
            if batch:
                while rows := cur.fetchmany(batch):
                    w.writerows(rows)
            else:
                w.writerows(cur)
    finally:
        conn.close()


def sql_substr_bigbuf(db: Path, out_path: Path) -> None:
    """The project's approach minus typeof(), 1 MiB write buffer, fetchmany(10000)."""
    sql = f"SELECT id, created_at, {_guard_substr('name')}, rating, {_guard_substr('comments')} FROM reviews ORDER BY id"
    _writerows(db, out_path, sql, buffering=1 << 20, batch=10_000)


def plain_noguard(db: Path, out_path: Path) -> None:
    """NOT a candidate (no guard): the floor of cursor -> csv.writer."""
    _writerows(db, out_path, f"{SELECT_ALL} ORDER BY id", buffering=1 << 20)


def python_guard(db: Path, out_path: Path) -> None:
    """Plain SELECT; one cheap test per row, the guard only on the rows that need it."""
    conn = connect(db, readonly=True)
    prefixes = FORMULA_PREFIXES
    try:
        with open(out_path, "w", newline="", encoding="utf-8", buffering=1 << 20) as out:
            w = csv.writer(out)
            w.writerow(COLUMNS)
            cur = conn.execute(f"{SELECT_ALL} ORDER BY id")
            while rows := cur.fetchmany(10_000):
                for i, (a, b, c, d, e) in enumerate(rows):
                    if ((c.__class__ is str and c.startswith(prefixes))
                            or (e.__class__ is str and e.startswith(prefixes))
                            or (b.__class__ is str and b.startswith(prefixes))
                            or (d.__class__ is str and d.startswith(prefixes))):
                        rows[i] = _guard_py(rows[i])
                w.writerows(rows)
    finally:
        conn.close()


# ---------------------------------------------------------------- CSV lines built by SQLite itself
# csv.writer alone costs ~2.5 s per 1M rows here (plus ~0.9 s to build the row tuples), so no
# variant that hands every row to Python can come near `sqlite3 -csv`. These let SQLite format
# each line (printf) with exactly csv.writer's QUOTE_MINIMAL rule:
#   - a text cell holding , " CR or LF is quoted, " doubled (printf's %w doubles ");
#   - the guard comes first, so a guarded CR cell is quoted with its ' inside;
#   - NULL -> empty, INTEGER -> its decimal text (= str(int)).
# LIKE '%c%' is the cheapest containment test SQLite offers here (instr() costs ~4x more per call,
# GLOB '*[,"]*' more still). A row holding a REAL or a BLOB (the app never writes one: validate()
# gives str/int) makes its line NULL, and that chunk is redone with the Python reference, so the
# output is the reference's for any database. Text holding a NUL (refused by validate()) would be
# cut at the NUL by printf: not handled.
_GUARD_CODES = "(61, 43, 45, 64, 9, 13)"  # = + - @ TAB CR


def _g(c: str) -> str:
    return f"CASE WHEN unicode({c}) IN {_GUARD_CODES} AND typeof({c}) = 'text' THEN '''' || {c} ELSE {c} END"


def _q(c: str) -> str:
    return (f"CASE WHEN {c} LIKE '%,%' OR {c} LIKE '%\"%' OR {c} LIKE '%' || char(10) || '%' "
            f"OR {c} LIKE '%' || char(13) || '%' THEN printf('\"%w\"', {_g(c)}) ELSE {_g(c)} END")


_ODD = ("typeof(created_at) IN ('real', 'blob') OR typeof(rating) IN ('real', 'blob') "
        "OR typeof(name) IN ('real', 'blob') OR typeof(comments) IN ('real', 'blob')")
LINE_SQL = (f"CASE WHEN {_ODD} THEN NULL ELSE printf('%d,%s,%s,%s,%s', id, {_q('created_at')}, {_q('name')}, "
            f"CASE WHEN typeof(rating) = 'integer' THEN rating ELSE {_q('rating')} END, {_q('comments')}) END")
CHUNK_ROWS = 2_000  # ~0.3 MB per chunk here; ~40 MB at worst (2000 comments of 5000 4-byte characters)
_AGG_ORDER = " ORDER BY id" if sqlite3.sqlite_version_info >= (3, 44, 0) else ""  # explicit where supported
CHUNK_SQL = (f"SELECT max(id), count(*), count(line), group_concat(line, char(13, 10){_AGG_ORDER}) FROM "
             f"(SELECT id, {LINE_SQL} AS line FROM reviews WHERE id > ?1 AND id <= ?2 "
             f"ORDER BY id LIMIT {CHUNK_ROWS})")
MAX_ID = 2 ** 63 - 1


def _reference_chunk(conn: sqlite3.Connection, after: int, upto: int) -> bytes:
    """The slow exact path, for a chunk that holds an odd-typed cell."""
    buf = io.StringIO()
    w = csv.writer(buf)
    conn.text_factory = str
    try:
        for row in conn.execute(f"{SELECT_ALL} WHERE id > ? AND id <= ? ORDER BY id LIMIT {CHUNK_ROWS}",
                                (after, upto)):
            w.writerow(_guard_py(row))
    finally:
        conn.text_factory = bytes
    return buf.getvalue().encode("utf-8")


def _export_range(db: Path, out, after: int, upto: int) -> None:
    """Write the lines of the ids in (after, upto] to the binary file `out`, chunk by chunk."""
    conn = connect(db, readonly=True)
    conn.text_factory = bytes
    try:
        conn.execute("BEGIN")  # one read transaction: one consistent state even on a live database
        while True:
            top, n, n_lines, blob = conn.execute(CHUNK_SQL, (after, upto)).fetchone()
            if top is None:
                break
            if n_lines != n:
                out.write(_reference_chunk(conn, after, upto))
            else:
                out.write(blob)
                out.write(b"\r\n")
            after = top
        conn.execute("COMMIT")
    finally:
        conn.close()


def sql_chunks(db: Path, out_path: Path) -> None:
    """Lines formatted by SQLite, CHUNK_ROWS of them joined per fetch (keyset on id): one Python
    object per chunk, written as bytes (no decode/encode in Python)."""
    with open(out_path, "wb") as out:
        out.write(HEADER_LINE.encode())
        _export_range(db, out, -MAX_ID - 1, MAX_ID)


def sql_chunks_2threads(db: Path, out_path: Path) -> None:
    """sql_chunks on two threads, one per half of the id range (sqlite3 releases the GIL while
    SQLite computes a chunk); the second half goes to a side file appended at the end. For a
    snapshot only (nobody writes it): the two connections must see the same data."""
    conn = connect(db, readonly=True)
    try:
        lo, hi = conn.execute("SELECT min(id), max(id) FROM reviews").fetchone()
    finally:
        conn.close()
    side = out_path.with_name(out_path.name + ".part2")
    with open(out_path, "wb") as out:
        out.write(HEADER_LINE.encode())
        if lo is None:
            return
        mid = (lo + hi) // 2
        errors: list[BaseException] = []

        def second_half() -> None:
            try:
                with open(side, "wb") as f:
                    _export_range(db, f, mid, MAX_ID)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        thread = threading.Thread(target=second_half, name="export-2nd-half")
        thread.start()
        try:
            _export_range(db, out, -MAX_ID - 1, mid)
        finally:
            thread.join()
        try:
            if errors:
                raise errors[0]
            with open(side, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        finally:
            side.unlink(missing_ok=True)


def sql_lines(db: Path, out_path: Path) -> None:
    """The same SQL line, fetched row by row (no group_concat): shows what the chunks save."""
    conn = connect(db, readonly=True)
    conn.text_factory = bytes
    try:
        with open(out_path, "wb", buffering=1 << 20) as out:
            out.write(HEADER_LINE.encode())
            cur = conn.execute(f"SELECT {LINE_SQL} FROM reviews ORDER BY id")
            while rows := cur.fetchmany(10_000):
                if any(r[0] is None for r in rows):
                    raise NotImplementedError("odd-typed cell: not handled by this variant")
                out.write(b"\r\n".join([r[0] for r in rows]) + b"\r\n")
    finally:
        conn.close()


# ---------------------------------------------------------------- the seed
def pandas_seed(db: Path, out_path: Path) -> None:
    """The seed's approach (no guard; pandas' own header and index column): time and memory only."""
    import pandas as pd

    conn = sqlite3.connect(db)
    try:
        pd.DataFrame(conn.execute("SELECT * FROM reviews").fetchall()).to_csv(out_path)
    finally:
        conn.close()


VARIANTS = {
    "reference": reference,
    "project": project,
    "project_stdlib": project_stdlib,
    "sql_substr_bigbuf": sql_substr_bigbuf,
    "python_guard": python_guard,
    "plain_noguard": plain_noguard,
    "sql_lines": sql_lines,
    "sql_chunks": sql_chunks,
    "sql_chunks_2threads": sql_chunks_2threads,
    "pandas_seed": pandas_seed,
}


if __name__ == "__main__":
    name, db, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    t0 = time.perf_counter()
    VARIANTS[name](db, out)
    print(f"{time.perf_counter() - t0:.4f}")
