"""Connections to a reviews store (the live database, or a copy opened as one) and the
transactions on them. Every connection of the project is opened by `connect()`: the web's, the
worker's mirror, snapshots, deltas and staged copies too (wal=False: each must stay one file), so
the pragmas below hold everywhere and nobody opens a file with different rules.

Every live-store connection gets the same pragmas: WAL (checked, not assumed), a busy
timeout so that the web and the worker wait for each other instead of failing,
synchronous=NORMAL (safe in WAL: a power cut may lose the last commits, never
corrupt the file), and a journal size limit so the -wal file shrinks back after
a checkpoint.

Also here, because every module that writes SQL needs them: `placeholders(n)` for an
`IN (...)` list of parameters (`in_chunks` keeps each list short) and `like_pattern(text)`
for a LIKE that matches the text literally. Values always travel as parameters, never in
the SQL text.

The schema and its migrations are in shared/schema.py, the reads and writes the pages
make in shared/store.py, the owner's search in shared/owner_search.py.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

BUSY_TIMEOUT_MS = 10_000
JOURNAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024
T = TypeVar("T")


class StoreError(RuntimeError):
    """The database cannot be used as it is (not WAL, newer schema, ...)."""


def _uri(path: Path, *, readonly: bool = False) -> str:
    # Quoted: a "?" or "#" in a folder name would otherwise end the path part of the URI.
    return "file:" + urllib.parse.quote(str(path)) + ("?mode=ro" if readonly else "")


def connect(path: Path | str, *, readonly: bool = False, wal: bool = True,
            schema: Callable[[sqlite3.Connection], None] | None = None) -> sqlite3.Connection:
    """Open a connection with the project's pragmas. Autocommit mode: writers use `transaction()`.

    wal=False opens a single-file database (rollback journal) that stays one file and can be
    copied or published as it is: the worker's mirror, snapshots, deltas and staged copies.
    `schema` (e.g. ensure_schema) runs on the new connection; on any failure it is closed."""
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(_uri(path, readonly=readonly), uri=True, isolation_level=None,
                           check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal and not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"could not switch {path} to WAL: journal_mode={mode}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
        if schema is not None:
            schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def attached(conn: sqlite3.Connection, name: str, path: Path | str) -> Iterator[str]:
    """Another database file attached read-only as schema `name` for the block (cross-file
    INSERT ... SELECT in one transaction), detached afterwards."""
    conn.execute("ATTACH DATABASE ? AS " + name, (_uri(Path(path), readonly=True),))
    try:
        yield name
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # DETACH is refused inside a transaction
        raise
    finally:
        conn.execute("DETACH DATABASE " + name)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction: BEGIN IMMEDIATE takes the write lock up front
    (no deadlock-prone lock upgrade), rollback on any exception.

    As sqlite-utils' `atomic()`: roll back only while a transaction is open
    (SQLite may already have rolled it back, e.g. on SQLITE_FULL, and a second
    ROLLBACK would hide the real error), and roll back when COMMIT itself fails
    (a deferred constraint, a full disk), so the connection is never left inside
    a half-done transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Several reads that see one state of the database (WAL: one snapshot from the first read).

    Joins a transaction that is already open, so helpers can use it inside a
    caller's transaction."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # read-only: ending it is all that is needed, whatever happened


# Values per IN list: SQLite before 3.32 refuses more than 999 parameters in one statement,
# and a statement may carry a few more besides the list.
IN_LIST_MAX = 500


def in_chunks(values: Sequence[T], size: int = IN_LIST_MAX) -> Iterator[Sequence[T]]:
    """`values` in slices of at most `size`, one IN list each."""
    for k in range(0, len(values), size):
        yield values[k:k + size]


def placeholders(n: int) -> str:
    """`?, ?, ?` for n values: the inside of an `IN (...)` or a `VALUES (...)`."""
    return ", ".join("?" * n)


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ? ESCAPE '\\'`: the text's own %, _ and \\ match themselves."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
