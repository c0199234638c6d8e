"""A restored database carries only the schema WE create: no foreign triggers, views or tables.

A backup that passed `integrity_check` was restored with whatever it carried:
an `AFTER INSERT ... DELETE` trigger then deleted each 1-3 star review right
after the form said "saved", and an `UPDATE comments` trigger rewrote the
others. Whoever can write to the dataset could do that.

So before a downloaded database goes live, its `sqlite_master` is compared
with the schema `shared.db.ensure_schema` builds in an empty scratch database
(derived, never listed by hand, so every later migration is covered):
- an object we do not create (trigger, view, index, table) is dropped;
- a trigger, view or index of ours whose SQL differs is dropped and created
  again from our SQL;
- a table of ours with other columns is refused (SchemaRefused): its rows
  cannot be trusted to mean what ours mean.
Every drop is logged. SQLite's own objects (`sqlite_%`) are left alone.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.db import connect, ensure_schema, transaction
from shared.logs import q

log = logging.getLogger("worker.schema_guard")


class SchemaRefused(ValueError):
    """A table of ours has other columns than the ones we create."""


@dataclass(frozen=True)
class SchemaObject:
    type: str  # table, index, trigger, view
    name: str
    table: str
    sql: str | None


def _normalise(sql: str | None) -> str:
    return re.sub(r"\s+", " ", (sql or "").strip()).lower()


def _objects(conn: sqlite3.Connection) -> dict[tuple[str, str], SchemaObject]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    return {(t, n): SchemaObject(t, n, tb, s) for t, n, tb, s in rows}


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, int]]:
    return [(row[1].lower(), row[5]) for row in conn.execute(f'PRAGMA table_info("{table.replace(chr(34), chr(34) * 2)}")')]


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


def remove_foreign_objects(conn: sqlite3.Connection, *, source: str = "") -> list[str]:
    """Make `conn`'s schema exactly ours (see the module doc); return what was dropped, as
    "type name (reason)". Runs in one transaction: all fixes or none."""
    ours, our_columns = expected_schema()
    theirs = _objects(conn)
    for name, columns in our_columns.items():
        if ("table", name) in theirs and _columns(conn, name) != columns:
            raise SchemaRefused(f"table {name} of the backup has columns {_columns(conn, name)}, "
                                f"expected {columns}")
    drops: list[tuple[SchemaObject, str]] = []
    recreate: list[SchemaObject] = []
    for key, obj in theirs.items():
        mine = ours.get(key)
        if mine is None:
            drops.append((obj, "not in our schema"))
        elif obj.type != "table" and _normalise(obj.sql) != _normalise(mine.sql):
            drops.append((obj, "changed"))
            recreate.append(mine)
    for key, mine in ours.items():
        if key not in theirs and mine.type in ("trigger", "index") and mine.sql:
            recreate.append(mine)  # ours, missing: e.g. a totals trigger someone dropped
    if not drops and not recreate:
        return []
    # Virtual tables' own shadow tables go with them; a foreign virtual table is dropped first.
    order = {"trigger": 0, "view": 1, "index": 2, "table": 3}
    drops.sort(key=lambda d: (order.get(d[0].type, 9), not (d[0].sql or "").upper().startswith("CREATE VIRTUAL")))
    dropped = []
    with transaction(conn):  # all or nothing; rolled back also when COMMIT fails
        for obj, reason in drops:
            if obj.type == "table" and not _exists(conn, obj):
                continue  # a shadow table dropped with its virtual table
            conn.execute(f"DROP {obj.type.upper()} IF EXISTS {_quote(obj.name)}")
            dropped.append(f"{obj.type} {obj.name} ({reason})")
        for mine in recreate:
            if mine.sql:  # always: only objects with SQL differ or are recreated
                conn.execute(mine.sql)
    for item in dropped:
        log.warning("dropped a schema object we do not create from the restored database object=%s source=%s",
                    q(item), q(source or "backup"))
    return dropped


def _exists(conn: sqlite3.Connection, obj: SchemaObject) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (obj.type, obj.name)).fetchone() is not None
