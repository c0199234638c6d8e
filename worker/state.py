"""The worker's memory across restarts, kept in a small JSON file in the data folder.

It lets a restarted worker know what it last published (so it makes no
empty backup), how many runs have failed in a row, and any open conflict.
`python -m worker status` reads the same file.

This module is the file's one owner: `update_state` is the only writer, and
it reads, changes and writes the file under `worker_lock`, so the loop and a
manual `python -m worker backup` cannot overwrite each other's changes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from shared.config import Config
from worker.fsutil import write_text_atomic
from worker.lock import worker_lock
from worker.manifest import BackupManifest

log = logging.getLogger("worker.state")


@dataclass(frozen=True)
class WorkerState:
    target: str = ""
    last_published: BackupManifest | None = None
    last_attempt_at: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    # Started on a fresh disk while the target was unreachable: the newest backup
    # must be merged into the local database before the first push.
    pending_merge: bool = False
    conflict: str | None = None  # the local db lacks reviews the newest backup has
    # The restore drill (worker/drill.py): when the newest backup was last checked, and the verdict.
    last_drill_at: str | None = None
    last_drill_ok: bool | None = None
    last_drill_revision: str | None = None
    last_drill_detail: str | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["last_published"] = self.last_published.to_json() if self.last_published else None
        return data

    def with_(self, **changes) -> "WorkerState":
        return replace(self, **changes)


def load_state(path: Path) -> WorkerState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return WorkerState()
    except (OSError, ValueError) as exc:
        log.warning("state file unreadable, starting afresh path=%s error=%s", path, exc)
        return WorkerState()
    published = data.get("last_published")
    known = {k: v for k, v in data.items() if k in WorkerState.__dataclass_fields__}
    known["last_published"] = BackupManifest.from_json(published) if published else None
    return WorkerState(**known)


def update_state(config: Config, **changes) -> WorkerState:
    """Read the state, apply `changes`, write it back (atomically), under the worker lock."""
    with worker_lock(config.data_dir):
        state = load_state(config.state_path).with_(**changes)
        write_text_atomic(config.state_path, json.dumps(state.to_json(), indent=1, sort_keys=True))
    return state
