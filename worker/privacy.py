"""Whose names leave the machine: the rule, and the blanked copy of a snapshot.

- A private dataset is the owner's backup: names are kept.
- A public dataset (HF_DATASET_PRIVATE=false, or the repo found public)
  gets names only by the owner's explicit choice, HF_DATASET_PUBLISH_NAMES:
  true publishes them, false blanks them in every pushed file (what a withheld
  name is in each file: shared.reviews.WITHHELD_NAME_*). With no choice made
  nothing is pushed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shared.db import connect, transaction
from shared.reviews import WITHHELD_NAME_SQL
from worker.errors import WorkerError

log = logging.getLogger("worker.privacy")

KEEP = "keep"
BLANK = "blank"


class NamesChoiceMissing(WorkerError):
    """The dataset is public and the owner has not said whether names may be published."""

    permanent = True  # retrying cannot help until the setting changes


def names_rule(*, public: bool, publish_names: bool | None, repo_id: str, why_public: str) -> str:
    """KEEP or BLANK for a push, or raise NamesChoiceMissing."""
    if not public:
        return KEEP
    if publish_names is None:
        raise NamesChoiceMissing(
            f"not pushing: the dataset {repo_id} is public ({why_public}) and HF_DATASET_PUBLISH_NAMES is not set; "
            "set it to true to publish reviewers' names, or false to blank them in every file")
    return KEEP if publish_names else BLANK


def blank_names(snapshot: Path, dest: Path) -> None:
    """Write to `dest` a copy of `snapshot` (the worker's own copy) with every name withheld (NULL).

    The write counter is put back to its value before the blanking, so the
    copy's fingerprint is the snapshot's. The search index is rebuilt, and
    VACUUM INTO writes a fresh file: the old names survive neither in index
    segments nor in free pages or a -wal file of the copy.
    """
    dest.unlink(missing_ok=True)
    conn = connect(snapshot)
    try:
        with transaction(conn):
            changes = conn.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()[0]
            conn.execute(f"UPDATE reviews SET name = {WITHHELD_NAME_SQL} WHERE name IS NOT {WITHHELD_NAME_SQL}")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'changes'", (changes,))
            # The search index keeps a deleted term in its older segments until they
            # merge: rebuild it from the blanked rows, so no name survives there either.
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'reviews_fts'").fetchone():
                conn.execute("INSERT INTO reviews_fts (reviews_fts) VALUES ('rebuild')")
        conn.execute("VACUUM INTO ?", (str(dest),))
    finally:
        conn.close()
