"""The files of a backup, kept on disk between runs and updated in place of being redone.

Layout (the same on the Hub and in each local backup folder):

    reviews.db                     the base: the mirror as it was at the last rebase, checked
    reviews-delta.db               every review above the base's highest id (a `reviews` table only)
    csv/reviews-<lo>-<hi>.csv      the CSV, one file per shard of ids (worker.shards; formula-guarded)
    data/reviews-<lo>-<hi>.parquet the same rows, typed (worker.parquet), for datasets/pandas/the viewer

A backup is base + delta (worker.delta: how the delta is written, and applied
by restore). The base is re-made ("rebase") when the delta grows past
REBASE_FRACTION of it, once a day, and on every full cycle, so the delta stays
small and restore applies one small file.

A run rewrites only the shards that hold new ids (worker.shards), normally the last one.

Every file is written as `name.tmp` and renamed into place (shared.fsutil.atomic_write):
a new inode each time, so the local target can hard-link the files of a backup and an older
backup keeps its own version of the last shard.

The tree is valid for one mirror lineage (see worker.mirror): when the mirror
was re-made from a full snapshot, or the tree's own state is missing, the tree
is rebuilt from scratch (every shard: the full cost, only on non-append
changes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared.csv_export import range_sql, write_reviews_csv
from shared.db import connect
from shared.fsutil import atomic_write, link_or_copy, write_text_atomic
from worker import parquet, shards
from worker.delta import select_list, write_delta
from worker.manifest import BackupManifest
from worker.mirror import Mirror, Refresh
from worker.privacy import BLANK, KEEP, blank_names
from worker.shards import shard_bounds, shards_between
from worker.snapshot import SnapshotError

log = logging.getLogger("worker.tree")

BASE_FILE = "reviews.db"
DELTA_FILE = "reviews-delta.db"
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


def _write_csv_shard(mirror_db: Path, dest: Path, index: int, names: str) -> None:
    lo, hi = shard_bounds(index)
    write_reviews_csv(mirror_db, dest, sql=range_sql(lo, hi, blank_names=names == BLANK))


def _write_parquet_shard(mirror_db: Path, dest: Path, index: int, names: str) -> None:
    conn = connect(mirror_db, readonly=True)
    try:
        if names == BLANK:
            # A temp view named like the table shadows it for this connection: the
            # Parquet query reads every name as NULL, nothing is written anywhere.
            conn.execute(f"CREATE TEMP VIEW reviews AS SELECT {select_list(BLANK)} FROM main.reviews")
        if not parquet.write_shard(conn, index, dest):
            raise SnapshotError(f"shard {index} of the mirror holds no row (it had one a moment ago)")
    finally:
        conn.close()


# (name of shard `index` in the backup, writer(mirror db, destination, index, names))
SHARD_FORMATS = [(shards.csv_name, _write_csv_shard), (shards.parquet_name, _write_parquet_shard)]


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
        if (old is None or old.lineage != refresh.lineage or old.shard_rows != shards.SHARD_ROWS
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
                          shard_rows=shards.SHARD_ROWS, names=names)
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
                          checked_at=now, shard_rows=shards.SHARD_ROWS, names=names)
        self._save(state)
        return Update(state, "full", frozenset(self.files()), time.monotonic() - started)

    def _write_base(self, names: str) -> str:
        """The base is a copy of the mirror (nobody else writes it: the worker lock is
        held), hashed on the way. Names withheld: a copy with every name NULL, written
        fresh by VACUUM INTO so that no old name survives in a free page. Returns its sha256."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

        def write(tmp: Path) -> str:
            if names == BLANK:
                _blank_copy(self.mirror.path, tmp)
                return file_sha256(tmp)
            digest = hashlib.sha256()
            with open(self.mirror.path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(COPY_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
            return digest.hexdigest()

        return atomic_write(self.folder / BASE_FILE, write, mode=0o600)

    def _write_shards(self, index: int, names: str) -> set[str]:
        """Every format's shard `index` (the CSV; the Parquet shards too), each written
        straight into its temporary file and renamed into place once."""
        written: set[str] = set()
        lo, hi = shard_bounds(index)
        conn = connect(self.mirror.path, wal=False)
        try:
            if conn.execute("SELECT 1 FROM reviews WHERE id BETWEEN ? AND ? LIMIT 1", (lo, hi)).fetchone() is None:
                return written  # no row in this range (ids deleted before a full cycle): no file
        finally:
            conn.close()
        for shard_name, write in SHARD_FORMATS:
            name = shard_name(index)
            dest = self.folder / name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The reviews: ours only (0600), whatever the umask of the command.
            atomic_write(dest, functools.partial(write, self.mirror.path, index=index, names=names), mode=0o600)
            written.add(name)
        return written

    def _save(self, state: TreeState) -> None:
        write_text_atomic(self.state_path, json.dumps(asdict(state), indent=1, sort_keys=True), mode=0o600)
