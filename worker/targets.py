"""Where backups go. Every target has the same small interface, so the loop,
restore and the tests do not care whether it is a local folder or the Hub."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared import utc
from shared.db import Summary, connect
from worker.errors import WorkerError
from worker.fsutil import fsync_dir, link_or_copy, replace_durably
from worker.manifest import BackupManifest
from worker.tree import BASE_FILE, COPY_CHUNK, DELTA_FILE, Tree, file_sha256, verify_base

log = logging.getLogger("worker.targets")

_MANIFEST_NAME = re.compile(r"reviews-\d{12}-\d{8}T\d{12}Z\.json")
BASES_DIR = "bases"  # on a mount: each base once, by its sha256, shared by the backups made on it
PARTIAL = ".partial"  # a file on a mount until it was read back and checked: never a torn .db by name


class CopyMismatch(WorkerError):
    """A file read back from the target is not what was written (a flaky mount)."""


def commit_title(at: str, rows: int, previous_rows: int | None) -> str:
    """`Backup 2026-11-25T10:00Z: 1,234 reviews (+5)`: the time, the total and the change."""
    change = "first backup" if previous_rows is None else f"{rows - previous_rows:+,}"
    return f"Backup {at[:16]}Z: {rows:,} review{'' if rows == 1 else 's'} ({change})"


@dataclass(frozen=True)
class BackupEntry:
    """One backup in a target's history, for `python -m worker backups` and `restore --at`."""

    revision: str
    at: str  # UTC, ISO 8601
    rows: int | None  # None: not recorded (e.g. a squash commit)
    title: str = ""
    tag: str | None = None  # on the Hub: the tag that keeps this backup after a squash (worker.history)


class Target(Protocol):
    name: str  # for logs and status: "local:/path", "mount:/path" or "hub:owner/name"

    def wait_seconds(self) -> float:
        """Seconds until this target accepts its next publish (0.0: now). The loop skips a
        target that asks to wait, without counting a failure: its changes go in its next publish."""

    def newest(self) -> BackupManifest | None:
        """What the newest backup holds, or None when there is none."""

    def publish(self, tree: Tree, manifest: BackupManifest, summary: Summary, *, names: str = "keep",
                previous_rows: int | None = None) -> BackupManifest:
        """Store the tree's files as the newest backup, atomically: all or nothing
        (sending only what the target lacks: see Tree.to_send). `names` and
        `previous_rows` are for the dataset card and the commit title.
        Returns `manifest` placed: with the backup's location and revision."""

    def names_policy(self) -> str:
        """"keep" or "blank" for the names in the next push; raises when a push must not happen."""

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        """Every backup the target holds, newest first (`every_commit`: on the Hub, also
        commits that are not the worker's)."""

    def fetch(self, dest_dir: Path, revision: str | None = None) -> tuple[Path, BackupManifest]:
        """Download the db of the newest (or the given) backup into dest_dir, and its
        delta as dest_dir/DELTA_FILE when it has one; a base with a recorded sha256 is
        checked against it (worker.tree.verify_base). restore.fetch_checked applies the delta."""


def _holds_any(db_file: Path, ids: set[int]) -> bool:
    """Whether the backup database file holds a review with one of `ids` (read-only)."""
    conn = connect(db_file, readonly=True)
    try:
        wanted = sorted(ids)
        for k in range(0, len(wanted), 500):
            part = wanted[k:k + 500]
            if conn.execute(f"SELECT 1 FROM reviews WHERE id IN ({', '.join('?' * len(part))}) LIMIT 1",
                            part).fetchone():
                return True
        return False
    except sqlite3.DatabaseError:
        return True  # unreadable: it may hold anything; an unreadable backup is no loss
    finally:
        conn.close()


class FolderTarget:
    """Backups in a folder, newest `keep` kept: `<stem>/` holds the backup's files,
    `<stem>.json` its manifest. Backups made before the incremental layout are
    `<stem>.db` + `<stem>.csv` pairs; they are still read and pruned.

    A backup is complete when its manifest exists: the files are put in place
    first, the manifest last, so a crash midway leaves nothing restore could pick.

    Two kinds of folder, one class:
    - on a local disk (`on_mount=False`): every file of the tree, as hard links to the
      tree's (never rewritten in place: a backup costs no copy), or copies when the
      folder is on another file system (a hard link cannot cross one);
    - on a network or FUSE mount (`on_mount=True`, a bucket mounted at /data): only what
      a restore reads, base and delta, each written once as `name.partial`, flushed,
      closed, read back and checked against its sha256, then renamed; the base goes to
      `bases/<sha256>.db` once and every backup until the next rebase shares it, so a
      backup writes only the delta (the newest reviews). A bucket mount makes a file
      durable on close; nothing is ever rewritten in place, and no .db on the mount is
      a file still being written.
    """

    def __init__(self, folder: Path, keep: int, *, on_mount: bool = False):
        self.folder = folder
        self.keep = keep
        self.on_mount = on_mount
        self.name = f"{'mount' if on_mount else 'local'}:{folder}"

    def wait_seconds(self) -> float:
        return 0.0  # a folder takes a backup whenever one is ready

    def _manifests(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("reviews-*.json") if _MANIFEST_NAME.fullmatch(p.name))

    def _next_stem(self) -> str:
        """`reviews-<sequence>-<UTC time>Z`: names sort in publish order whatever the
        clock does (a name made of the time alone once sorted a newer backup first
        when the second ticked over between two reads of the clock)."""
        manifests = self._manifests()
        last = int(manifests[-1].name.split("-")[1]) if manifests else 0
        return f"reviews-{last + 1:012d}-{utc.stamp(micro=True)}"

    def _read_manifest(self, path: Path) -> BackupManifest:
        return BackupManifest.from_json(json.loads(path.read_text(encoding="utf-8")))

    def newest(self) -> BackupManifest | None:
        for manifest in reversed(self._manifests()):
            try:
                return self._read_manifest(manifest)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable manifest path=%s error=%s", manifest, exc)
        return None

    def names_policy(self) -> str:
        return "keep"  # the owner's own disk, or the owner's own bucket

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        entries = []
        for manifest in reversed(self._manifests()):
            try:
                info = self._read_manifest(manifest)
            except (OSError, ValueError, KeyError):
                continue
            entries.append(BackupEntry(revision=manifest.name[: -len(".json")], at=info.at, rows=info.rows))
        return entries

    def publish(self, tree: Tree, manifest: BackupManifest, summary: Summary, *, names: str = "keep",
                previous_rows: int | None = None) -> BackupManifest:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = self._next_stem()
        if self.on_mount:
            info = self._publish_on_mount(tree, manifest, stem)
        else:
            info = self._publish_local(tree, manifest, stem)
        self._prune()
        return info

    def _publish_local(self, tree: Tree, manifest: BackupManifest, stem: str) -> BackupManifest:
        info = manifest.placed(location=str(self.folder / stem / BASE_FILE), revision=stem)
        staging = self.folder / f"{stem}.tmp"
        manifest_tmp = self.folder / f"{stem}.json.tmp"
        try:
            staging.mkdir(mode=0o700)
            for rel in tree.files():
                (staging / rel).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                link_or_copy(tree.folder / rel, staging / rel)
            for folder in [staging, *(d for d in staging.rglob("*") if d.is_dir())]:
                fsync_dir(folder)  # the links' directory entries: durable before the manifest names them
            os.replace(staging, self.folder / stem)
            manifest_tmp.write_text(json.dumps(info.to_json(), indent=1), encoding="utf-8")
            replace_durably(manifest_tmp, self.folder / f"{stem}.json")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(self.folder / stem, ignore_errors=True)
            manifest_tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.folder)
        return info

    def _publish_on_mount(self, tree: Tree, manifest: BackupManifest, stem: str) -> BackupManifest:
        if manifest.base_sha256 is None:
            raise WorkerError("a backup on a mount needs the tree's base sha256 (incremental layout)")
        base = self.folder / BASES_DIR / f"{manifest.base_sha256}.db"
        info = manifest.placed(location=str(base), revision=stem)
        folder = self.folder / stem
        try:
            if not (base.exists() and base.stat().st_size == (tree.folder / BASE_FILE).stat().st_size):
                base.parent.mkdir(mode=0o700, exist_ok=True)
                write_once_checked(tree.folder / BASE_FILE, base, expect_sha256=manifest.base_sha256)
            folder.mkdir(mode=0o700)
            if (tree.folder / DELTA_FILE).exists():
                write_once_checked(tree.folder / DELTA_FILE, folder / DELTA_FILE)
            write_bytes_once_checked(json.dumps(info.to_json(), indent=1).encode(), self.folder / f"{stem}.json")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            (self.folder / f"{stem}.json{PARTIAL}").unlink(missing_ok=True)
            raise
        return info

    def _prune(self) -> None:
        manifests = self._manifests()
        for manifest in manifests[: max(0, len(manifests) - self.keep)]:
            stem = manifest.name[: -len(".json")]
            manifest.unlink(missing_ok=True)  # first: the backup stops counting
            shutil.rmtree(self.folder / stem, ignore_errors=True)
            for suffix in (".db", ".csv"):
                (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(self.folder / f"{stem}.parquet", ignore_errors=True)  # a backup of the dataset work's layout
        # Leftovers of a crash mid-publish: files or folders with no manifest, or .tmp / .partial.
        kept = {m.name[: -len(".json")] for m in self._manifests()}
        for path in self.folder.glob("reviews-*"):
            stem = path.name.split(".", 1)[0]
            if stem in kept and not path.name.endswith((".tmp", PARTIAL)):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.endswith((".tmp", PARTIAL)) or path.suffix in (".db", ".csv"):
                path.unlink(missing_ok=True)
        bases = self.folder / BASES_DIR
        if bases.is_dir():  # a base no kept backup names
            used = set()
            for manifest in self._manifests():
                try:
                    used.add(f"{self._read_manifest(manifest).base_sha256}.db")
                except (OSError, ValueError, KeyError):
                    return  # cannot tell what is used: keep every base
            for path in bases.iterdir():
                if path.name not in used:
                    path.unlink(missing_ok=True)

    def erase_reviews(self, ids: set[int]) -> list[str]:
        """Remove every backup but the newest that holds any of the reviews `ids` (deleted by the
        owner: shared.moderation.delete). The newest was made after the delete and holds none of
        them; the older ones are files of their own (hard links to a tree that has since been
        rebuilt), so they are removed whole, manifest first. Returns the backups removed."""
        if not ids:
            return []
        removed = []
        manifests = self._manifests()
        for manifest in manifests[:-1]:
            stem = manifest.name[: -len(".json")]
            folder = self.folder / stem
            if folder.is_dir():
                # On a mount the base is shared (bases/<sha256>.db): the manifest names it.
                try:
                    shared = self.folder / BASES_DIR / f"{self._read_manifest(manifest).base_sha256}.db"
                except (OSError, ValueError, KeyError):
                    shared = folder / BASE_FILE
                files = [folder / BASE_FILE, shared, folder / DELTA_FILE]
            else:
                files = [self.folder / f"{stem}.db"]
            if any(_holds_any(f, ids) for f in files if f.exists()):
                manifest.unlink(missing_ok=True)  # first: the backup stops counting
                shutil.rmtree(folder, ignore_errors=True)
                for suffix in (".db", ".csv"):
                    (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)
                removed.append(stem)
        if removed:
            self._prune()  # and a shared base (on a mount) no kept backup names any more
            fsync_dir(self.folder)
            log.warning("removed older folder backups holding deleted reviews folder=%s backups=%d",
                        self.folder, len(removed))
        return removed

    def fetch(self, dest_dir: Path, revision: str | None = None) -> tuple[Path, BackupManifest]:
        manifests = self._manifests()
        if revision:
            manifests = [m for m in manifests if m.name.startswith(revision)]
        if not manifests:
            raise FileNotFoundError(f"no backup{' ' + revision if revision else ''} in {self.folder}")
        manifest = manifests[-1]
        stem = manifest.name[: -len(".json")]
        info = self._read_manifest(manifest)
        dest_dir.mkdir(parents=True, exist_ok=True)  # restore's walk-back passes a fresh subfolder
        dest = dest_dir / "restore.db"
        folder = self.folder / stem
        shared_base = self.folder / BASES_DIR / f"{info.base_sha256}.db"
        if folder.is_dir():
            base = folder / BASE_FILE if (folder / BASE_FILE).exists() else shared_base
            shutil.copyfile(base, dest)  # a copy: restore applies the delta to it
            verify_base(dest, info)
            if (folder / DELTA_FILE).exists():
                shutil.copyfile(folder / DELTA_FILE, dest_dir / DELTA_FILE)
        else:
            shutil.copyfile(self.folder / f"{stem}.db", dest)  # a backup from before the incremental layout
        return dest, info


# The name the rest of the code (and the benches) used for a local folder.
LocalFolderTarget = FolderTarget


def write_once_checked(src: Path, dest: Path, *, expect_sha256: str | None = None) -> str:
    """Copy `src` to `dest` on a mount: written once as `dest.partial`, flushed, fsynced,
    closed (a bucket mount uploads on close), read back and compared by sha256, then
    renamed. Returns the sha256. Raises CopyMismatch when the read-back differs."""
    partial = dest.with_name(dest.name + PARTIAL)
    partial.unlink(missing_ok=True)
    digest = hashlib.sha256()
    try:
        with open(src, "rb") as s, open(partial, "xb") as d:
            while chunk := s.read(COPY_CHUNK):
                digest.update(chunk)
                d.write(chunk)
            d.flush()
            os.fsync(d.fileno())
        written = digest.hexdigest()
        if expect_sha256 is not None and written != expect_sha256:
            raise CopyMismatch(f"{src} changed while it was copied to {dest} (sha256 {written[:12]}, "
                               f"expected {expect_sha256[:12]})")
        back = file_sha256(partial)
        if back != written:
            raise CopyMismatch(f"{dest}: read back sha256 {back[:12]} differs from what was written "
                               f"({written[:12]}); the mount did not keep the file")
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def write_bytes_once_checked(data: bytes, dest: Path) -> None:
    """`write_once_checked` for a small file made in memory (a manifest)."""
    partial = dest.with_name(dest.name + PARTIAL)
    partial.unlink(missing_ok=True)
    try:
        with open(partial, "xb") as d:
            d.write(data)
            d.flush()
            os.fsync(d.fileno())
        if partial.read_bytes() != data:
            raise CopyMismatch(f"{dest}: read back differs from what was written; the mount did not keep the file")
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
