"""A restored database carries only the schema WE create: no foreign triggers, views or tables.

A backup that passed `integrity_check` was restored with whatever it carried:
an `AFTER INSERT ... DELETE` trigger then deleted each 1-3 star review right
after the form said "saved", and an `UPDATE comments` trigger rewrote the
others. Whoever can write to the dataset could do that.

A table of ours was compared by its column names only, so a backup whose
`reviews` said `CHECK (rating >= 3)`, `CHECK (comments NOT LIKE '%refund%')`
or `DEFAULT ('2001-...')` went live: negative reviews were then refused as a
"storage problem", or back-dated.

So before a downloaded database goes live, its `sqlite_master` is compared
with the schema `shared.schema.ensure_schema` builds in an empty scratch database
(derived, never listed by hand, so every later migration is covered), object
by object, by normalised SQL (`normalised_sql`: case and spacing outside string
literals do not count, everything else does):
- an object we do not create (trigger, view, index, table, virtual table) is dropped;
- a trigger, view or index of ours whose SQL differs is dropped and created
  again from our SQL;
- a table of ours whose SQL differs (a CHECK, DEFAULT, COLLATE, generated
  column or any other clause we do not write) is rebuilt: created again from
  our SQL under a scratch name, its rows copied in by column name, the old one
  dropped and ours renamed into place (its AUTOINCREMENT counter kept), then
  our indexes and triggers on it created again. Rows our table refuses (a NULL
  where ours says NOT NULL) refuse the backup (SchemaRefused);
- a virtual table of ours (the search index) whose SQL, or any of whose shadow
  tables' SQL, differs is dropped and created again from our SQL, and rebuilt
  from `reviews`;
- a table of ours with other columns (hidden and generated ones included) is
  refused (SchemaRefused): its rows cannot be trusted to mean what ours mean.
Every drop and rebuild is logged. SQLite's own objects (`sqlite_%`) are left alone.
A backup at an older schema version is checked after its migrations ran
(worker/restore.py), against the same expected schema.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.db import connect, transaction
from shared.schema import SCHEMA_VERSION, ensure_schema, schema_version
from shared.logs import q
from worker.errors import WorkerError

log = logging.getLogger("worker.schema_guard")


class SchemaRefused(WorkerError):
    """A table of ours has other columns than the ones we create."""

    defect = True  # that backup cannot be restored: restore tries an older one


@dataclass(frozen=True)
class SchemaObject:
    type: str  # table, index, trigger, view
    name: str
    table: str
    sql: str | None

    def tbl_name_in(self, names: set[str]) -> bool:
        return self.table in names


_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|\s+|[^\s'"`\[]+|.""", re.DOTALL)


def normalised_sql(sql: str | None) -> str:
    """SQL with spacing collapsed and case folded outside string literals, and identifiers
    unquoted: two statements SQLite reads the same compare equal; a changed literal
    (a DEFAULT's format string) does not."""
    out = []
    for token in _TOKENS.findall((sql or "").strip()):
        if token.isspace():
            out.append(" ")
        elif token.startswith("'"):
            out.append(token)  # a string literal: exactly as written
        elif token[0] in '"`[':
            out.append(token[1:-1].replace('""', '"').lower())  # a quoted identifier
        else:
            out.append(token.lower())
    return "".join(out).replace(" (", "(").replace("( ", "(").replace(" )", ")").replace(" ,", ",").replace(", ", ",")


def _objects(conn: sqlite3.Connection) -> dict[tuple[str, str], SchemaObject]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    return {(t, n): SchemaObject(t, n, tb, s) for t, n, tb, s in rows}


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, int]]:
    # table_xinfo, not table_info: generated and hidden columns count too.
    return [(row[1].lower(), row[5]) for row in conn.execute(f'PRAGMA table_xinfo("{table.replace(chr(34), chr(34) * 2)}")')
            if row[6] in (0, 2, 3)]


@lru_cache(maxsize=1)
def expected_schema() -> tuple[dict[tuple[str, str], SchemaObject], dict[str, list[tuple[str, int]]]]:
    """Our objects and our tables' columns, from a fresh schema in a scratch database."""
    with tempfile.TemporaryDirectory(prefix="schema-") as scratch:
        conn = connect(Path(scratch) / "expected.db")
        try:
            ensure_schema(conn)
            objects = _objects(conn)
            columns = {o.name: _columns(conn, o.name) for o in objects.values() if o.type == "table"}
        finally:
            conn.close()
    return objects, columns


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def guard_and_migrate(conn: sqlite3.Connection, *, source: str = "") -> list[str]:
    """What a restore runs on a downloaded database: a backup at our version is cleaned before
    anything runs on it (a foreign trigger could fire on a migration's writes); an older one is
    migrated, then cleaned against our schema all the same."""
    removed = []
    if schema_version(conn) == SCHEMA_VERSION:
        removed += remove_foreign_objects(conn, source=source)
    ensure_schema(conn)
    removed += remove_foreign_objects(conn, source=source)
    return removed


def _is_virtual(obj: SchemaObject) -> bool:
    return obj.type == "table" and (obj.sql or "").upper().startswith("CREATE VIRTUAL")


def remove_foreign_objects(conn: sqlite3.Connection, *, source: str = "") -> list[str]:
    """Make `conn`'s schema exactly ours (see the module doc); return what was dropped or rebuilt,
    as "type name (reason)". Runs in one transaction: all fixes or none."""
    ours, our_columns = expected_schema()
    theirs = _objects(conn)
    for name, columns in our_columns.items():
        if ("table", name) in theirs and _columns(conn, name) != columns:
            raise SchemaRefused(f"table {name} of the backup has columns {_columns(conn, name)}, "
                                f"expected {columns}")
    virtuals = [o for o in ours.values() if _is_virtual(o)]

    def shadow_of(name: str) -> SchemaObject | None:
        return next((v for v in virtuals if name.startswith(v.name + "_")), None)

    changed = {key for key, obj in theirs.items()
               if key in ours and normalised_sql(obj.sql) != normalised_sql(ours[key].sql)}
    # Our virtual tables to create again: changed, or one of their shadow tables changed or missing.
    redo_virtual = {v.name for v in virtuals if ("table", v.name) in changed or ("table", v.name) not in theirs}
    for key, mine in ours.items():
        owner = shadow_of(key[1]) if key[0] == "table" and not _is_virtual(mine) else None
        if owner is not None and (key in changed or key not in theirs):
            redo_virtual.add(owner.name)
    rebuild = [ours[key] for key in changed if key[0] == "table" and not _is_virtual(ours[key])
               and shadow_of(key[1]) is None]
    rebuilt_tables = {t.name for t in rebuild}
    drops: list[tuple[SchemaObject, str]] = []
    for key, obj in theirs.items():
        if key not in ours:
            drops.append((obj, "not in our schema"))
        elif key in changed and obj.type != "table":
            drops.append((obj, "changed"))
        elif obj.type in ("trigger", "index") and obj.tbl_name_in(rebuilt_tables):
            drops.append((obj, "on a rebuilt table"))  # created again from our SQL after the rebuild
    if not drops and not rebuild and not redo_virtual and all(
            key in theirs for key, mine in ours.items() if mine.type in ("trigger", "index", "view")):
        return []
    # Triggers first (none may fire on what follows); a foreign virtual table before its shadow tables.
    order = {"trigger": 0, "view": 1, "index": 2, "table": 3}
    drops.sort(key=lambda d: (order.get(d[0].type, 9), not _is_virtual(d[0])))
    done = []
    try:
        with transaction(conn):  # all or nothing; rolled back also when COMMIT fails
            for obj, reason in drops:
                if not _exists(conn, obj):
                    continue  # a shadow table dropped with its virtual table, an index with its table
                conn.execute(f"DROP {obj.type.upper()} IF EXISTS {_quote(obj.name)}")
                done.append(f"{obj.type} {obj.name} ({reason})")
            for table in rebuild:
                _rebuild_table(conn, table)
                done.append(f"table {table.name} (rebuilt from our SQL: its definition differed)")
            for name in sorted(redo_virtual):
                conn.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
                conn.execute(ours[("table", name)].sql or "")
                conn.execute(f"INSERT INTO {_quote(name)} ({_quote(name)}) VALUES ('rebuild')")
                done.append(f"table {name} (search index created again from our SQL)")
            now = _objects(conn)
            for key, mine in ours.items():  # ours, missing: dropped above, or by whoever made the backup
                if key not in now and mine.type in ("trigger", "index", "view") and mine.sql:
                    conn.execute(mine.sql)
    except sqlite3.IntegrityError as exc:
        raise SchemaRefused(f"the backup's rows do not fit our tables: {exc}") from None
    for item in done:
        log.warning("fixed the schema of the restored database object=%s source=%s", q(item), q(source or "backup"))
    return [d for d in done if "(not in our schema)" in d or "(changed)" in d or "rebuilt" in d
            or "created again" in d]


def _rebuild_table(conn: sqlite3.Connection, table: SchemaObject) -> None:
    """Our table from our SQL, with the backup's rows (see the module doc)."""
    scratch = f"{table.name}__schema_guard"
    sql = table.sql or ""
    head = re.match(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\"(?:[^\"]|\"\")*\"|'[^']*'|\S+?)(?=\s*\()",
                    sql, re.IGNORECASE)
    if head is None:
        raise SchemaRefused(f"cannot read our own definition of table {table.name}")
    conn.execute(f"DROP TABLE IF EXISTS {_quote(scratch)}")
    conn.execute(f"CREATE TABLE {_quote(scratch)}" + sql[head.end():])
    columns = ", ".join(_quote(name) for name, _ in expected_schema()[1][table.name])
    conn.execute(f"INSERT INTO {_quote(scratch)} ({columns}) SELECT {columns} FROM {_quote(table.name)}")
    has_sequence = _exists(conn, SchemaObject("table", "sqlite_sequence", "", None))
    seq = (conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).fetchone()
           if has_sequence else None)
    conn.execute(f"DROP TABLE {_quote(table.name)}")
    conn.execute(f"ALTER TABLE {_quote(scratch)} RENAME TO {_quote(table.name)}")
    if seq is not None:
        conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq[0], table.name))


def _exists(conn: sqlite3.Connection, obj: SchemaObject) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (obj.type, obj.name)).fetchone() is not None
