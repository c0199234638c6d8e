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
from typing import Protocol

from worker.fsutil import fsync_dir, fsync_file, replace_durably
from worker.manifest import BackupManifest
from worker.snapshot import Snapshot

log = logging.getLogger("worker.targets")

_MANIFEST_NAME = re.compile(r"reviews-\d{12}-\d{8}T\d{12}Z\.json")


class Target(Protocol):
    name: str  # for logs and status: "local:/path" or "hub:owner/name"

    def newest(self) -> BackupManifest | None:
        """What the newest backup holds, or None when there is none."""

    def publish(self, snapshot: Snapshot, csv_file: Path, manifest: BackupManifest) -> BackupManifest:
        """Store the snapshot and its CSV as the newest backup, atomically: both or neither.
        Returns `manifest` placed: with the backup's location and revision."""

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

    def publish(self, snapshot: Snapshot, csv_file: Path, manifest: BackupManifest) -> BackupManifest:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._next_stem()
        info = manifest.placed(location=str(self.folder / f"{stem}.db"), revision=stem)
        placed: list[Path] = []
        try:
            for src, suffix in ((snapshot.path, ".db"), (csv_file, ".csv")):
                tmp = self.folder / f"{stem}{suffix}.tmp"
                shutil.copyfile(src, tmp)
                placed.append(tmp)
                fsync_file(tmp)
                os.replace(tmp, self.folder / f"{stem}{suffix}")
                placed[-1] = self.folder / f"{stem}{suffix}"
            manifest_tmp = self.folder / f"{stem}.json.tmp"
            placed.append(manifest_tmp)
            manifest_tmp.write_text(json.dumps(info.to_json(), indent=1), encoding="utf-8")
            replace_durably(manifest_tmp, self.folder / f"{stem}.json")
        except BaseException:
            for path in placed:
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
        # Leftovers of a crash mid-publish: files with no manifest, or .tmp.
        kept = {m.name[: -len(".json")] for m in self._manifests()}
        for path in self.folder.glob("reviews-*"):
            stem = path.name.split(".", 1)[0]
            if stem not in kept and (path.suffix == ".tmp" or path.suffix in (".db", ".csv")):
                path.unlink(missing_ok=True)

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
