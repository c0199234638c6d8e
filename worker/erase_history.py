"""Rewrite the dataset's history on the Hub without the reviews the owner deleted.

Every backup cycle after a delete publishes a newest backup without the review (worker.backup),
but each older commit of the dataset still holds it. On the owner's explicit request (the
button on the owner's page records one in `erase_requests`; `python -m worker erase-history`
does it at once) the worker:

1. publishes a backup of the live database first, so the newest commit is clean;
2. rebuilds the older restore points from what remains: for the first backup of each UTC day
   (at most MAX_POINTS days, newest first), downloads it as a restore would
   (restore.fetch_checked), deletes the tombstoned reviews from it (restore.apply_tombstones,
   text erased from its pages), and builds its files afresh (mirror + tree, in a scratch folder);
3. deletes every tag of ours (the old points held the text) and squashes `main` into its newest,
   clean commit (`super_squash_history`): no ref reaches an old commit any more;
4. commits the rebuilt points on top, oldest first, each kept as a point of the retention ladder
   (worker.history: a tag named with its original time and rows, so `backups` and `restore --at`
   find it), then the newest backup again, and squashes `main` once more: the rebuilt points are
   reachable through their tags only, as the ladder keeps older backups.

Cost: one download and one full file build per point, one commit per point, and the upload of
each point's files (Xet deduplicates what the points share); bench/moderation.py measures it.

Rebuilt points hold fewer reviews than their originals (the deleted ones), and their own
tombstones, so a restore of one never brings an erased review back either.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from shared import moderation as mod
from shared import utc
from shared.db import connect, open_store_db
from worker import history as ladder
from worker.backup import Backup
from worker.lock import worker_lock
from worker.mirror import Mirror
from worker.errors import is_backup_defect
from worker.restore import apply_tombstones, fetch_checked, local_tombstones, staging_dir
from worker.tree import Tree

log = logging.getLogger("worker.erase_history")

MAX_POINTS = 60


@dataclass(frozen=True)
class RewriteResult:
    points: int            # older backups rebuilt and committed again
    skipped: int           # older backups that could not be read (left out)
    removed_rows: int      # erased reviews taken out of the rebuilt points, summed over points
    bytes_built: int       # size of the files of every rebuilt point (an upper bound of the upload)
    seconds: float

    def describe(self) -> str:
        return (f"rewritten: {self.points} older backups rebuilt without {self.removed_rows} erased rows"
                f"{f', {self.skipped} unreadable left out' if self.skipped else ''}, "
                f"{self.bytes_built:,} bytes, {self.seconds:.1f} s")


def choose_points(entries: list, newest_revision: str | None) -> list:
    """The first backup of each UTC day (oldest first), not the newest, at most MAX_POINTS days."""
    by_day: dict[str, object] = {}
    for e in sorted(entries, key=lambda e: e.at):
        if e.revision == newest_revision or e.rows is None:
            continue
        by_day.setdefault(e.at[:10], e)
    days = sorted(by_day)[-MAX_POINTS:]
    return [by_day[d] for d in days]


def _build_point(config, target, entry, tombstones, work: Path):
    """Download one older backup, drop the erased reviews, and build its files in `work`."""
    staging = work / "download"
    staging.mkdir(parents=True)
    fetched, info, _ = fetch_checked(target, staging, entry.revision)
    removed = apply_tombstones(fetched, tombstones)
    mirror = Mirror(work / "mirror")
    refresh = mirror.refresh(fetched, full=True)
    tree = Tree(mirror)
    names = target.names_policy()
    tree.update(refresh, names=names)
    snap = refresh.snapshot()
    manifest = tree.manifest(snap, at=info.at or entry.at)
    size = sum((tree.folder / f).stat().st_size for f in tree.files())
    shutil.rmtree(staging, ignore_errors=True)
    return tree, manifest, snap, names, removed, size


def rewrite_history(config, target) -> RewriteResult:
    """Steps 1-4 of the module doc. Needs a target that can squash (the Hub)."""
    started = time.monotonic()
    Backup(config, target).run()  # step 1 (takes the worker lock itself)
    with worker_lock(config.data_dir):
        tombstones = local_tombstones(config.db_path)
        newest = target.newest()
        points = choose_points(target.history(), newest.revision if newest else None)
        built, skipped, removed_rows, size = [], 0, 0, 0
        with staging_dir(config.data_dir / ".erase-history") as work:
            for i, entry in enumerate(points):
                try:
                    tree, manifest, snap, names, removed, nbytes = _build_point(
                        config, target, entry, tombstones, work / f"point-{i}")
                except Exception as exc:  # the error policy decides: a defect is left out, an outage raised
                    if not is_backup_defect(exc):
                        raise
                    log.warning("older backup left out of the rewritten history revision=%s cause=%s",
                                entry.revision, exc)
                    skipped += 1
                    continue
                built.append((tree, manifest, snap, names))
                removed_rows += removed
                size += nbytes
            # Every old point's tag goes and `main` is squashed into its newest (clean) commit: no
            # ref reaches an old commit any more. The rebuilt points go on top of that commit, so
            # their own ancestry holds no text either (a tag keeps its commit's parents too).
            target.replace_points([])
            target.squash_history("History rewritten without erased reviews (rebuilding older backups)")
            previous = None
            rebuilt: list[ladder.Point] = []
            for tree, manifest, snap, names in built:  # oldest first, each kept as a point (a tag)
                target.newest()  # learn the head the next commit goes on
                info = target.publish(tree, manifest, snap.summary, names=names, previous_rows=previous)
                at = utc.parse_iso(manifest.at)
                rows = snap.summary.total
                rebuilt.append(ladder.Point(tag=ladder.tag_name(at, rows), revision=str(info.revision), at=at,
                                            rows=rows))
                previous = rows
    # The newest backup on top again (a full cycle: every file, from the live database).
    Backup(config, target).run(force=True, full=True)
    with worker_lock(config.data_dir):
        # The rebuilt points are tagged, and `main` is squashed again into its newest commit
        # (the rebuilt points stay reachable through their tags only, as the ladder keeps them).
        target.replace_points(rebuilt)
        newest = target.newest()
        target.squash_history(f"History rewritten without erased reviews: rows={newest.rows} "
                              f"max_id={newest.max_id} at={newest.at}")
    return RewriteResult(points=len(built), skipped=skipped, removed_rows=removed_rows, bytes_built=size,
                         seconds=time.monotonic() - started)


def maybe_run(config, target) -> RewriteResult | None:
    """The loop's check: carry out the owner's open request, if any (one read of the live db)."""
    if not config.db_path.exists() or not hasattr(target, "squash_history"):
        return None
    conn = connect(config.db_path, readonly=True)
    try:
        try:
            request = mod.open_history_request(conn)
        except Exception:  # noqa: BLE001 - a database before migration 4: no request possible
            return None
    finally:
        conn.close()
    if request is None:
        return None
    return run_request(config, target, request[0])


def run_request(config, target, request_id: int | None = None) -> RewriteResult:
    result = rewrite_history(config, target)
    conn = open_store_db(config.db_path)
    try:
        if request_id is None:
            request_id = mod.request_history_rewrite(conn)
        mod.finish_history_request(conn, request_id, result.describe())
    finally:
        conn.close()
    log.warning("dataset history rewritten without erased reviews %s", result.describe())
    return result

