"""Where backups go. Every target has the same small interface, so the loop,
restore and the tests do not care whether it is a local folder or the Hub."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Protocol

from worker.fsutil import fsync_dir, fsync_file, replace_durably
from worker.manifest import BackupManifest
from worker.snapshot import Snapshot

log = logging.getLogger("worker.targets")

_MANIFEST_NAME = re.compile(r"reviews-\d{12}-\d{8}T\d{12}Z\.json")


def commit_title(at: str, rows: int, previous_rows: int | None) -> str:
    """`Backup 2026-11-25T10:00Z: 1,234 reviews (+5)`: the time, the total and the change."""
    change = "first backup" if previous_rows is None else f"{rows - previous_rows:+,}"
    return f"Backup {at[:16]}Z: {rows:,} review{'' if rows == 1 else 's'} ({change})"


@dataclass(frozen=True)
class ShardFiles:
    """The Parquet shards of one backup: `folder / name` for each name (names as in the dataset)."""

    folder: Path
    files: tuple[str, ...]


@dataclass(frozen=True)
class BackupEntry:
    """One backup in a target's history, for `python -m worker backups` and `restore --at`."""

    revision: str
    at: str  # UTC, ISO 8601
    rows: int | None  # None: not recorded (e.g. a squash commit)
    title: str = ""


class Target(Protocol):
    name: str  # for logs and status: "local:/path" or "hub:owner/name"

    def newest(self) -> BackupManifest | None:
        """What the newest backup holds, or None when there is none."""

    def publish(self, snapshot: Snapshot, csv_file: Path, manifest: BackupManifest, *,
                db_file: Path | None = None, shards: ShardFiles | None = None, names: str = "keep",
                previous_rows: int | None = None) -> BackupManifest:
        """Store the snapshot (or `db_file`, its copy with names blanked), its CSV and its
        Parquet shards as the newest backup, atomically: all or none.
        Returns `manifest` placed: with the backup's location and revision."""

    def names_policy(self) -> str:
        """"keep" or "blank" for the names in the next push; raises when a push must not happen."""

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        """Every backup the target holds, newest first (`every_commit`: on the Hub, also
        commits that are not the worker's)."""

    def fetch(self, dest_dir: Path, revision: str | None = None) -> tuple[Path, BackupManifest]:
        """Download the db of the newest (or the given) backup into dest_dir."""


class LocalFolderTarget:
    """Backups as db+csv pairs in a folder, newest `keep` kept.

    A pair is complete when its manifest (`<stem>.json`) exists: the db and
    csv are renamed into place first, the manifest last, so a crash midway
    leaves no half pair that restore could pick.
    """

    def __init__(self, folder: Path, keep: int):
        self.folder = folder
        self.keep = keep
        self.name = f"local:{folder}"

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
        t = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t % 1 * 1_000_000):06d}"
        return f"reviews-{last + 1:012d}-{stamp}Z"

    def newest(self) -> BackupManifest | None:
        for manifest in reversed(self._manifests()):
            try:
                return BackupManifest.from_json(json.loads(manifest.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable manifest path=%s error=%s", manifest, exc)
        return None

    def names_policy(self) -> str:
        return "keep"  # the owner's own disk

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        entries = []
        for manifest in reversed(self._manifests()):
            try:
                info = BackupManifest.from_json(json.loads(manifest.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError):
                continue
            entries.append(BackupEntry(revision=manifest.name[: -len(".json")], at=info.at, rows=info.rows))
        return entries

    def _place_shards(self, shards: ShardFiles, dest: Path) -> None:
        """Hard links: shard files are never modified in place (a rewrite is a new
        file renamed over the old), so a link is a free, stable copy."""
        for name in shards.files:
            target = dest / name
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                os.link(shards.folder / name, target)
            except OSError:
                shutil.copyfile(shards.folder / name, target)

    def publish(self, snapshot: Snapshot, csv_file: Path, manifest: BackupManifest, *,
                db_file: Path | None = None, shards: ShardFiles | None = None, names: str = "keep",
                previous_rows: int | None = None) -> BackupManifest:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._next_stem()
        info = manifest.placed(location=str(self.folder / f"{stem}.db"), revision=stem)
        placed: list[Path] = []
        try:
            for src, suffix in ((db_file or snapshot.path, ".db"), (csv_file, ".csv")):
                tmp = self.folder / f"{stem}{suffix}.tmp"
                shutil.copyfile(src, tmp)
                placed.append(tmp)
                fsync_file(tmp)
                os.replace(tmp, self.folder / f"{stem}{suffix}")
                placed[-1] = self.folder / f"{stem}{suffix}"
            if shards is not None:
                placed.append(self.folder / f"{stem}.parquet")
                self._place_shards(shards, placed[-1])
            manifest_tmp = self.folder / f"{stem}.json.tmp"
            placed.append(manifest_tmp)
            manifest_tmp.write_text(json.dumps(info.to_json(), indent=1), encoding="utf-8")
            replace_durably(manifest_tmp, self.folder / f"{stem}.json")
        except BaseException:
            for path in placed:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
        fsync_dir(self.folder)
        self._prune()
        return info

    def _prune(self) -> None:
        manifests = self._manifests()
        for manifest in manifests[: max(0, len(manifests) - self.keep)]:
            stem = manifest.name[: -len(".json")]
            manifest.unlink(missing_ok=True)  # first: the pair stops counting
            for suffix in (".db", ".csv"):
                (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(self.folder / f"{stem}.parquet", ignore_errors=True)
        # Leftovers of a crash mid-publish: files with no manifest, or .tmp.
        kept = {m.name[: -len(".json")] for m in self._manifests()}
        for path in self.folder.glob("reviews-*"):
            stem = path.name.split(".", 1)[0]
            if stem not in kept and (path.suffix == ".tmp" or path.suffix in (".db", ".csv")):
                path.unlink(missing_ok=True)
            elif stem not in kept and path.suffix == ".parquet" and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def fetch(self, dest_dir: Path, revision: str | None = None) -> tuple[Path, BackupManifest]:
        manifests = self._manifests()
        if revision:
            manifests = [m for m in manifests if m.name.startswith(revision)]
        if not manifests:
            raise FileNotFoundError(f"no backup{' ' + revision if revision else ''} in {self.folder}")
        manifest = manifests[-1]
        info = BackupManifest.from_json(json.loads(manifest.read_text(encoding="utf-8")))
        dest = dest_dir / "restore.db"
        shutil.copyfile(self.folder / (manifest.name[: -len(".json")] + ".db"), dest)
        return dest, info
