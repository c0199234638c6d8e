"""The files of a backup, kept on disk between runs and updated in place of being redone.

Layout (the same on the Hub and in each local backup folder):

    reviews.db                     the base: the mirror as it was at the last rebase, checked
    reviews-delta.db               every review above the base's highest id (a `reviews` table only)
    csv/reviews-<lo>-<hi>.csv      the CSV, one shard per parquet.SHARD_ROWS ids (formula-guarded)
    data/reviews-<lo>-<hi>.parquet the same rows, typed (worker.parquet), for datasets/pandas/the viewer

A backup is base + delta: restore copies the base and applies the delta
(`apply_delta`), checking that it starts right above the base and that the
result holds what the manifest says. The base is re-made ("rebase") when the
delta grows past REBASE_FRACTION of it, once a day, and on every full cycle,
so the delta stays small and restore applies one small file.

A shard holds the ids [k*n + 1, (k+1)*n] (n = parquet.SHARD_ROWS); once the ids are
past its end it never changes again while the history is append-only, so a
run rewrites only the shards that hold new ids (normally the last one).

Every file is written as `name.tmp` and renamed into place: a new inode each
time, so the local target can hard-link the files of a backup and an older
backup keeps its own version of the last shard.

The tree is valid for one mirror lineage (see worker.mirror): when the mirror
was re-made from a full snapshot, or the tree's own state is missing, the tree
is rebuilt from scratch (every shard: the full cost, only on non-append
changes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared.csv_export import range_sql, write_reviews_csv
from shared.db import BACKUP_COLUMNS, attached, connect, read_summary, transaction
from shared.reviews import WITHHELD_NAME_SQL
from worker import parquet
from worker.fsutil import link_or_copy, replace_durably, write_text_atomic
from worker.manifest import BackupManifest
from worker.mirror import Mirror, Refresh
from worker.privacy import BLANK, KEEP, blank_names
from worker.snapshot import SnapshotError, integrity_check

log = logging.getLogger("worker.tree")

BASE_FILE = "reviews.db"
DELTA_FILE = "reviews-delta.db"
CSV_DIR = "csv"
TREE_DIR = "tree"
STATE_FILE = "tree.json"
# Rebase when the delta holds more than 1/REBASE_FRACTION of the base's rows
# (at 10M: 100k rows, ~15 MB) but never for fewer than REBASE_MIN_ROWS: the
# delta is uploaded every run, the base only at a rebase.
REBASE_FRACTION = 100
REBASE_MIN_ROWS = 10_000
# The fuller check (integrity_check of every page of the mirror) runs at every
# rebase; a rebase happens at least this often even when few reviews come in.
FULL_CHECK_SECONDS = 86_400.0
COPY_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class TreeState:
    lineage: str          # the mirror's lineage the tree was built from
    base_sha256: str      # of the db file: what it is published as, and what restore checks the download against
    base_max_id: int
    base_rows: int
    max_id: int           # the tree holds every row up to here (mirror's max_id when it was updated)
    rows: int
    fingerprint: str      # of the mirror the tree was updated from
    checked_at: float     # time of the last full integrity_check of the mirror (epoch seconds)
    shard_rows: int       # ids per shard when the tree was built
    names: str = KEEP     # KEEP: names as in the db; BLANK: every name NULL/empty in every file

    @property
    def delta_rows(self) -> int:
        return self.rows - self.base_rows


@dataclass(frozen=True)
class Update:
    state: TreeState
    kind: str                               # "full" | "rebase" | "append" | "same"
    changed: frozenset[str] = field(default_factory=frozenset)  # tree paths rewritten by this update
    seconds: float = 0.0


def shard_index(row_id: int, shard_rows: int | None = None) -> int:
    return (row_id - 1) // (shard_rows or parquet.SHARD_ROWS)


def shard_bounds(index: int, shard_rows: int | None = None) -> tuple[int, int]:
    """The ids a shard holds. The first also takes ids below 1, which only a hand-edited file can hold."""
    size = shard_rows or parquet.SHARD_ROWS  # one id range per shard for the CSV and the Parquet files
    return (index * size + 1 if index else -(2 ** 63)), (index + 1) * size


def csv_shard_name(index: int, shard_rows: int | None = None) -> str:
    size = shard_rows or parquet.SHARD_ROWS  # one id range per shard for the CSV and the Parquet files
    return f"{CSV_DIR}/reviews-{index * size + 1:010d}-{(index + 1) * size:010d}.csv"


def shards_between(after_id: int, max_id: int, shard_rows: int | None = None) -> list[int]:
    """Indexes of the shards that hold ids in (after_id, max_id]."""
    if max_id <= after_id:
        return []
    return list(range(shard_index(after_id + 1, shard_rows), shard_index(max_id, shard_rows) + 1))


def _connect_file(path: Path) -> sqlite3.Connection:
    # A plain single-file database (rollback journal), like a snapshot.
    return connect(path, wal=False)


def _select_list(names: str) -> str:
    return ", ".join(f"{WITHHELD_NAME_SQL} AS name" if names == BLANK and c == "name" else c for c in BACKUP_COLUMNS)


def write_delta(mirror_db: Path, dest: Path, *, above_id: int, previous: Path | None = None,
                previous_max_id: int | None = None, names: str = KEEP) -> int:
    """Write to `dest` every row of `mirror_db` with id > above_id. With `previous`
    (the last delta, holding ids up to previous_max_id) only the rows after it are
    copied. Returns the delta's row count. Checked before it is renamed into place."""
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    cols = ", ".join(BACKUP_COLUMNS)
    try:
        if previous is not None and previous.exists() and previous_max_id is not None:
            shutil.copyfile(previous, tmp)
            start = previous_max_id
        else:
            start = above_id
            src = _connect_file(mirror_db)
            try:
                table_sql = src.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'reviews'"
                                        ).fetchone()[0]
            finally:
                src.close()
            fresh = _connect_file(tmp)
            try:
                fresh.execute(table_sql)
            finally:
                fresh.close()
        conn = _connect_file(tmp)
        try:
            with attached(conn, "mirror", mirror_db), transaction(conn):
                # Names withheld: never written, so no old name lingers in a free page either.
                conn.execute(f"INSERT INTO main.reviews ({cols}) SELECT {_select_list(names)} FROM mirror.reviews "
                             "WHERE id > ? ORDER BY id", (start,))
            rows, low = conn.execute("SELECT COUNT(*), MIN(id) FROM reviews").fetchone()
        finally:
            conn.close()
        if rows and low <= above_id:
            raise SnapshotError(f"delta starts at id {low}, not above the base's {above_id}")
        integrity_check(tmp)  # small: the delta is bounded by REBASE_FRACTION
        os.chmod(tmp, 0o600)
        replace_durably(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return int(rows)


def _columns(conn: sqlite3.Connection, schema: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info(reviews)")]


def _insert_delta(conn: sqlite3.Connection, delta_db: Path, base_max_id: int) -> int:
    """Insert the delta's rows into `conn`'s reviews (a staged copy, never the live db)
    in one transaction; the triggers bring totals and counters along. Refuses a delta
    that does not start right above the base. Columns are matched by position: the
    base may have been migrated since (a renamed column keeps its place)."""
    integrity_check(delta_db)  # small: every page of it
    with attached(conn, "delta", delta_db):
        have = conn.execute("SELECT COALESCE(MAX(id), 0) FROM main.reviews").fetchone()[0]
        low, count = conn.execute("SELECT MIN(id), COUNT(*) FROM delta.reviews").fetchone()
        if have != base_max_id:
            raise SnapshotError(f"the base ends at id {have}, the manifest says {base_max_id}")
        if count and low <= base_max_id:
            raise SnapshotError(f"the delta starts at id {low}, not above the base's highest id {base_max_id}")
        ours, theirs = _columns(conn, "main"), _columns(conn, "delta")
        # A delta made before a migration that added columns (at the end) fills the first ones;
        # the new ones take their defaults, as the migration gave the base's rows.
        if len(theirs) > len(ours) or not theirs:
            raise SnapshotError(f"the delta's columns {theirs} do not match the base's {ours}")
        ours = ours[:len(theirs)]
        with transaction(conn):
            conn.execute(f"INSERT INTO main.reviews ({', '.join(ours)}) "
                         f"SELECT {', '.join(theirs)} FROM delta.reviews ORDER BY {theirs[0]}")
    return int(count)


def apply_delta(base_db: Path, delta_db: Path, *, base_max_id: int) -> int:
    """`_insert_delta` on a database file. Returns the rows added."""
    conn = _connect_file(base_db)
    try:
        return _insert_delta(conn, delta_db, base_max_id)
    finally:
        conn.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_base(base_db: Path, manifest: BackupManifest) -> None:
    """Restore side, right after the download: the base is byte for byte the file that
    passed integrity_check when it was made. That stands in for a second integrity_check."""
    if manifest.base_sha256 and file_sha256(base_db) != manifest.base_sha256:
        raise SnapshotError(f"backup {manifest.revision}: {BASE_FILE} is not the file that was checked and "
                            "published (sha256 differs): torn or damaged download")


def apply_delta_conn(conn: sqlite3.Connection, delta_db: Path, manifest: BackupManifest) -> None:
    """Restore side, last step on the staged copy: add the delta's reviews (when the
    backup has any), then check the result holds what the manifest says."""
    if manifest.base_max_id is None:
        return  # a backup made before the incremental layout: the db holds everything
    if manifest.max_id > manifest.base_max_id:
        if not delta_db.exists():
            raise SnapshotError(f"backup {manifest.revision}: the db holds ids up to {manifest.base_max_id}, "
                                f"its {DELTA_FILE} (up to {manifest.max_id}) is missing")
        _insert_delta(conn, delta_db, manifest.base_max_id)
    got = read_summary(conn)
    if manifest.fingerprint and got.fingerprint != manifest.fingerprint:
        raise SnapshotError(f"backup {manifest.revision}: db + delta hold {got.fingerprint}, "
                            f"its manifest says {manifest.fingerprint}")


def _write_csv_shard(mirror_db: Path, dest: Path, index: int, names: str) -> None:
    lo, hi = shard_bounds(index)
    write_reviews_csv(mirror_db, dest, sql=range_sql(lo, hi, blank_names=names == BLANK))


def _write_parquet_shard(mirror_db: Path, dest: Path, index: int, names: str) -> None:
    conn = connect(mirror_db, readonly=True)
    try:
        if names == BLANK:
            # A temp view named like the table shadows it for this connection: the
            # Parquet query reads every name as NULL, nothing is written anywhere.
            conn.execute(f"CREATE TEMP VIEW reviews AS SELECT {_select_list(BLANK)} FROM main.reviews")
        parquet._write_shard(conn, index, dest)  # writes dest itself (tmp + rename), 0600
    finally:
        conn.close()


# (name of shard `index` in the backup, writer(mirror db, destination, index, names))
SHARD_FORMATS = [(csv_shard_name, _write_csv_shard), (parquet.shard_name, _write_parquet_shard)]


def _blank_copy(src_db: Path, dest: Path) -> None:
    """A copy of `src_db` (the mirror, left as it is) with every name NULL and the same
    fingerprint, written fresh by VACUUM INTO (worker.privacy.blank_names)."""
    scratch = dest.with_name(dest.name + ".scratch")
    shutil.copyfile(src_db, scratch)
    try:
        blank_names(scratch, dest)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(scratch) + suffix).unlink(missing_ok=True)


class Tree:
    """The current backup files, next to the mirror: `backups/.mirror/tree/`."""

    def __init__(self, mirror: Mirror, *, variant: str = KEEP):
        """`variant`: the names rule the tree is kept for; a second rule gets a tree of its own."""
        self.mirror = mirror
        suffix = "" if variant == KEEP else f"-{variant}"
        self.folder = mirror.folder / f"{TREE_DIR}{suffix}"
        self.state_path = mirror.folder / STATE_FILE.replace(".json", f"{suffix}.json")

    def state(self) -> TreeState | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return TreeState(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("tree state unreadable, rebuilding the tree path=%s error=%s", self.state_path, exc)
            return None

    def freeze(self, dest: Path) -> "Tree":
        """A copy of the tree that later updates do not touch, for a target to publish from
        while the worker lock is free: hard links (every file is replaced by a rename, never
        rewritten in place, so a link keeps this version) and a copy of the state."""
        shutil.rmtree(dest, ignore_errors=True)
        folder = dest / TREE_DIR
        folder.mkdir(mode=0o700, parents=True)
        for rel in self.files():
            (folder / rel).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            link_or_copy(self.folder / rel, folder / rel)
        shutil.copyfile(self.state_path, dest / STATE_FILE)
        frozen = Tree(self.mirror)
        frozen.folder, frozen.state_path = folder, dest / STATE_FILE
        return frozen

    def files(self) -> list[str]:
        """Every file of the current backup, as paths relative to the tree."""
        out = []
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                out.append(path.relative_to(self.folder).as_posix())
        return out

    def to_send(self, newest: BackupManifest | None) -> tuple[list[str], bool]:
        """The files a target holding `newest` lacks, and whether they are the whole
        backup (then the target must also drop any file not among them)."""
        st = self.state()
        assert st is not None, "update() first"
        files = self.files()
        if (newest is None or newest.base_max_id is None or newest.lineage != st.lineage
                or newest.max_id > st.max_id):
            return files, True
        wanted = {DELTA_FILE} | {shard_name(i) for shard_name, _ in SHARD_FORMATS
                                 for i in shards_between(newest.max_id, st.max_id, st.shard_rows)}
        if newest.base_sha256 != st.base_sha256:
            wanted.add(BASE_FILE)
        return [f for f in files if f in wanted], False

    def manifest(self, snapshot, *, at: str | None = None) -> BackupManifest:
        """The manifest of the backup the tree holds now."""
        st = self.state()
        assert st is not None, "update() first"
        base = BackupManifest.for_snapshot(snapshot, at=at)
        return BackupManifest(**{**base.to_json(), "base_max_id": st.base_max_id, "base_sha256": st.base_sha256,
                                 "lineage": st.lineage})

    def update(self, refresh: Refresh, *, names: str = KEEP, now: float | None = None) -> Update:
        """Bring the tree to the mirror's state after `refresh`, names kept or blanked."""
        started = time.monotonic()
        now = time.time() if now is None else now
        old = self.state()
        m = refresh.summary
        if (old is None or old.lineage != refresh.lineage or old.shard_rows != parquet.SHARD_ROWS
                or old.names != names or old.max_id > m.max_id or not (self.folder / BASE_FILE).exists()):
            return self._rebuild(refresh, names, now, started)
        if old.fingerprint == m.fingerprint:
            return Update(old, "same", frozenset(), time.monotonic() - started)
        # The files change below; until the new state is saved, none vouches for them. A
        # failure midway (a full disk) leaves no state, and the next run rebuilds the tree.
        self.state_path.unlink(missing_ok=True)
        changed: set[str] = set()
        delta_rows = m.total - old.base_rows
        rebase = (delta_rows > max(REBASE_MIN_ROWS, old.base_rows // REBASE_FRACTION)
                  or now - old.checked_at > FULL_CHECK_SECONDS)
        if rebase:
            self.mirror.check()  # the fuller check, before the mirror becomes the base
            base_sha256 = self._write_base(names)
            base_max_id, base_rows, checked_at = m.max_id, m.total, now
            write_delta(self.mirror.path, self.folder / DELTA_FILE, above_id=base_max_id, names=names)
            changed |= {BASE_FILE, DELTA_FILE}
        else:
            base_sha256, base_max_id, base_rows, checked_at = old.base_sha256, old.base_max_id, old.base_rows, old.checked_at
            got = write_delta(self.mirror.path, self.folder / DELTA_FILE, above_id=base_max_id,
                              previous=self.folder / DELTA_FILE, previous_max_id=old.max_id, names=names)
            if got != delta_rows:
                raise SnapshotError(f"delta holds {got} rows, expected {delta_rows}")
            changed.add(DELTA_FILE)
        for index in shards_between(old.max_id, m.max_id):
            changed |= self._write_shards(index, names)
        state = TreeState(lineage=refresh.lineage, base_sha256=base_sha256, base_max_id=base_max_id, base_rows=base_rows,
                          max_id=m.max_id, rows=m.total, fingerprint=m.fingerprint, checked_at=checked_at,
                          shard_rows=parquet.SHARD_ROWS, names=names)
        self._save(state)
        return Update(state, "rebase" if rebase else "append", frozenset(changed), time.monotonic() - started)

    def _rebuild(self, refresh: Refresh, names: str, now: float, started: float) -> Update:
        """Every file from the mirror: after a full snapshot (already checked by it),
        or when the tree is missing."""
        m = refresh.summary
        if refresh.kind != "full":
            self.mirror.check()
        self.state_path.unlink(missing_ok=True)  # first: a crash midway leaves no state that vouches for the files
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(mode=0o700, parents=True)
        base_sha256 = self._write_base(names)
        write_delta(self.mirror.path, self.folder / DELTA_FILE, above_id=m.max_id, names=names)
        for index in shards_between(0, max(m.max_id, 1)) if m.total else []:
            self._write_shards(index, names)
        state = TreeState(lineage=refresh.lineage, base_sha256=base_sha256, base_max_id=m.max_id,
                          base_rows=m.total, max_id=m.max_id, rows=m.total, fingerprint=m.fingerprint,
                          checked_at=now, shard_rows=parquet.SHARD_ROWS, names=names)
        self._save(state)
        return Update(state, "full", frozenset(self.files()), time.monotonic() - started)

    def _write_base(self, names: str) -> str:
        """The base is a copy of the mirror (nobody else writes it: the worker lock is
        held), hashed on the way. Names withheld: a copy with every name NULL, written
        fresh by VACUUM INTO so that no old name survives in a free page. Returns its sha256."""
        tmp = self.folder / (BASE_FILE + ".tmp")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            if names == BLANK:
                _blank_copy(self.mirror.path, tmp)
                sha = file_sha256(tmp)
            else:
                with open(self.mirror.path, "rb") as src, open(tmp, "wb") as dst:
                    while chunk := src.read(COPY_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                sha = digest.hexdigest()
            os.chmod(tmp, 0o600)
            replace_durably(tmp, self.folder / BASE_FILE)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return sha

    def _write_shards(self, index: int, names: str) -> set[str]:
        """Every format's shard `index` (the CSV; the Parquet shards too), each renamed into place."""
        written: set[str] = set()
        lo, hi = shard_bounds(index)
        conn = _connect_file(self.mirror.path)
        try:
            if conn.execute("SELECT 1 FROM reviews WHERE id BETWEEN ? AND ? LIMIT 1", (lo, hi)).fetchone() is None:
                return written  # no row in this range (ids deleted before a full cycle): no file
        finally:
            conn.close()
        for shard_name, write in SHARD_FORMATS:
            name = shard_name(index)
            dest = self.folder / name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            try:
                write(self.mirror.path, tmp, index, names)
                os.chmod(tmp, 0o600)  # the reviews: ours only, whatever the umask of the command
                replace_durably(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            written.add(name)
        return written

    def _save(self, state: TreeState) -> None:
        write_text_atomic(self.state_path, json.dumps(asdict(state), indent=1, sort_keys=True), mode=0o600)
