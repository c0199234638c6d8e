"""Merge the newest backup into a local database that started empty.

The case: a fresh disk while the Hub was unreachable. The form opened
empty and took reviews; pushing that small database would bury every older
review in the history. Before its first push the worker merges instead:
the backup's reviews keep their ids, and the local ones follow in
`created_at` order with new ids after the backup's highest.

It runs in ONE write transaction on the live database, so a review the web
submits meanwhile waits for the lock (busy timeout) and lands after the
merge: none is lost. A local row identical to a backup row (same id and
content: an earlier merge that was pushed but not recorded) is kept once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from shared.config import Config
from shared.db import BACKUP_COLUMNS, attached, connect, transaction
from worker.restore import fetch_newest_usable, staging_dir
from worker.targets import Target

log = logging.getLogger("worker.merge")

_SAME_ROW = ("h.id = r.id AND h.created_at IS r.created_at AND h.name IS r.name "
             "AND h.rating IS r.rating AND h.comments IS r.comments")


@dataclass(frozen=True)
class MergeResult:
    from_backup: int
    from_local: int


def merge_backup_into(db_path: Path, backup_path: Path) -> MergeResult:
    """The backup has been migrated to our schema (restore.fetch_checked): it has the
    moderation columns, the tombstones and the log. A review deleted on either side (a
    tombstone in either) is not brought back, and no new id reuses a deleted one."""
    cols = ", ".join(BACKUP_COLUMNS)
    local_cols = ", ".join(BACKUP_COLUMNS[1:])
    conn = connect(db_path)
    try:
        with attached(conn, "hub", backup_path), transaction(conn):
            conn.execute("INSERT OR IGNORE INTO main.tombstones (review_id, deleted_at) "
                         "SELECT review_id, deleted_at FROM hub.tombstones")
            conn.execute("DELETE FROM main.reviews AS r "
                         f"WHERE EXISTS (SELECT 1 FROM hub.reviews AS h WHERE {_SAME_ROW})")
            local = conn.execute(f"SELECT {local_cols} FROM main.reviews ORDER BY created_at, id").fetchall()
            conn.execute("DELETE FROM main.reviews")
            # New ids for the local rows start right after the backup's highest, deleted ones included.
            conn.execute("UPDATE main.sqlite_sequence SET seq = max((SELECT COALESCE(MAX(id), 0) FROM hub.reviews), "
                         "(SELECT COALESCE(MAX(review_id), 0) FROM main.tombstones)) WHERE name = 'reviews'")
            cur = conn.execute(f"INSERT INTO main.reviews ({cols}) SELECT {cols} FROM hub.reviews "
                               "WHERE id NOT IN (SELECT review_id FROM main.tombstones) ORDER BY id")
            from_backup = cur.rowcount
            conn.executemany(f"INSERT INTO main.reviews ({local_cols}) VALUES ({', '.join('?' * len(BACKUP_COLUMNS[1:]))})",
                             local)
            # The owner's earlier actions, then the ones taken here meanwhile, in time order.
            log_rows = conn.execute("SELECT at, action, review_id, detail FROM hub.moderation_log UNION ALL "
                                    "SELECT at, action, review_id, detail FROM main.moderation_log "
                                    "ORDER BY 1").fetchall()
            conn.execute("DELETE FROM main.moderation_log")
            conn.executemany("INSERT INTO main.moderation_log (at, action, review_id, detail) VALUES (?, ?, ?, ?)",
                             log_rows)
    finally:
        conn.close()
    return MergeResult(from_backup=from_backup, from_local=len(local))


def merge_newest_backup(config: Config, target: Target) -> MergeResult | None:
    """Merge the target's newest backup into the live database (the `pending_merge` case).

    Raises while the target is still unreachable (the caller retries later);
    None when the target holds no backup: nothing to merge."""
    newest = target.newest()
    if newest is None:
        return None
    with staging_dir(config.data_dir / ".merge") as staging:
        # The newest backup that passes the checks, as a restore would take (a broken newest is skipped).
        fetched, info, _ = fetch_newest_usable(target, staging)
        result = merge_backup_into(config.db_path, fetched)
    log.warning("merged the newest backup with reviews written while it was unreachable "
                "from_backup=%d from_local=%d revision=%s", result.from_backup, result.from_local,
                info.revision or newest.revision)
    return result
