"""The worker's memory across restarts, kept in a small JSON file in the data folder.

It lets a restarted worker know, for each target, what it last published (so it
makes no empty backup), how many runs have failed in a row, any open conflict,
and whether the newest backup there must be merged in first. `python -m worker
status` reads the same file.

This module is the file's one owner: `update_state` and `update_target` are the
only writers, and they read, change and write the file under `worker_lock`, so
the loop and a manual `python -m worker backup` cannot overwrite each other's changes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from shared.config import Config
from shared.fsutil import write_text_atomic
from worker.lock import worker_lock
from worker.manifest import BackupManifest

log = logging.getLogger("worker.state")


@dataclass(frozen=True)
class TargetState:
    """One target's side: each target has its own backoff, conflict and merge."""

    last_published: BackupManifest | None = None
    last_attempt_at: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    conflict: str | None = None  # the local db lacks reviews the newest backup here has
    # Started on a fresh disk while this target was unreachable: its newest backup must be
    # merged into the local database before the first push to it.
    pending_merge: bool = False
    next_try_at: str | None = None  # UTC: backing off after a failure, or the target asked to wait
    waiting: str | None = None  # why the target does not take a publish now (e.g. its commit budget)

    def to_json(self) -> dict:
        data = asdict(self)
        data["last_published"] = self.last_published.to_json() if self.last_published else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TargetState":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        published = known.get("last_published")
        known["last_published"] = BackupManifest.from_json(published) if published else None
        return cls(**known)


@dataclass(frozen=True)
class WorkerState:
    targets: dict[str, TargetState] = field(default_factory=dict)  # by Target.name
    # The restore drill (worker/drill.py): when the newest backup was last checked, and the verdict.
    last_drill_at: str | None = None
    last_drill_ok: bool | None = None
    last_drill_revision: str | None = None
    last_drill_detail: str | None = None

    def target(self, name: str) -> TargetState:
        return self.targets.get(name, TargetState())

    # Over every target: what `status` sums up, and what a single-target caller reads.
    @property
    def consecutive_failures(self) -> int:
        return max((t.consecutive_failures for t in self.targets.values()), default=0)

    @property
    def last_error(self) -> str | None:
        return next((t.last_error for t in self.targets.values() if t.last_error), None)

    @property
    def conflict(self) -> str | None:
        return next((t.conflict for t in self.targets.values() if t.conflict), None)

    @property
    def pending_merge(self) -> bool:
        return any(t.pending_merge for t in self.targets.values())

    def to_json(self) -> dict:
        data = asdict(self)
        data["targets"] = {name: t.to_json() for name, t in self.targets.items()}
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
    targets = {name: TargetState.from_json(t) for name, t in (data.get("targets") or {}).items()}
    if data.get("target") and data["target"] not in targets:
        # A file written when the worker had one target: its fields were at the top.
        targets[data["target"]] = TargetState.from_json(data)
    known = {k: v for k, v in data.items() if k in WorkerState.__dataclass_fields__ and k != "targets"}
    return WorkerState(targets=targets, **known)


def update_state(config: Config, **changes) -> WorkerState:
    """Read the state, apply `changes` (the drill's fields), write it back atomically, under the worker lock."""
    with worker_lock(config.data_dir):
        state = load_state(config.state_path).with_(**changes)
        _write(config, state)
    return state


def update_target(config: Config, name: str, **changes) -> TargetState:
    """The same for one target's fields."""
    with worker_lock(config.data_dir):
        state = load_state(config.state_path)
        mine = replace(state.target(name), **changes)
        _write(config, state.with_(targets={**state.targets, name: mine}))
    return mine


def _write(config: Config, state: WorkerState) -> None:
    write_text_atomic(config.state_path, json.dumps(state.to_json(), indent=1, sort_keys=True))
