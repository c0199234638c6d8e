"""The manifest of a backup: what one backup holds and where it is.

Built once per backup by the tree (`Tree.manifest`, from the snapshot with
`BackupManifest.for_snapshot`); the target only adds where it put it (`placed`).
It is stored beside every backup (a local backup's `.json`, a machine-readable
line in the Hub's dataset card), so the worker learns what the newest backup holds
without downloading its database. The JSON keys are a stored format: keep them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from shared import utc

if TYPE_CHECKING:
    from worker.snapshot import Snapshot


@dataclass(frozen=True)
class BackupManifest:
    # Summary.fingerprint (rows, highest id, a write counter): equal fingerprints mean the same data.
    fingerprint: str
    rows: int
    max_id: int
    at: str  # when the backup was made, UTC, ISO 8601
    location: str  # the local .db file, or the dataset's URL
    revision: str | None = None  # the Hub commit id, or the local pair's name; None until placed
    # created_at of the row with the highest id: two databases with the same max_id but
    # different tips have different histories (a stranger, not a descendant).
    tip: str | None = None
    # Incremental layout (worker.tree): the db file holds the rows up to base_max_id
    # and reviews-delta.db the rest. None: a backup made before it, whose db holds all.
    base_max_id: int | None = None
    base_sha256: str | None = None  # of the db file, checked (integrity_check) when it was made
    lineage: str | None = None  # changes at every full cycle: equal lineage = only rows appended since
    # Reviews deleted on purpose with an id up to max_id (their tombstones): rows + tombstones
    # never shrink, so the guard tells a deliberate delete from a loss. None: before tombstones.
    tombstones: int | None = None

    @classmethod
    def for_snapshot(cls, snapshot: "Snapshot", *, at: str | None = None) -> "BackupManifest":
        summary = snapshot.summary
        return cls(fingerprint=summary.fingerprint, rows=summary.total, max_id=summary.max_id,
                   at=at or utc.iso(), location="", tip=snapshot.tip,
                   tombstones=snapshot.tombstoned(summary.max_id)[1])

    def placed(self, *, location: str | None = None, revision: str | None = None) -> "BackupManifest":
        """The same manifest, once the target knows where it put the backup."""
        return replace(self, location=self.location if location is None else location,
                       revision=self.revision if revision is None else revision)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "BackupManifest":
        return cls(fingerprint=str(data["fingerprint"]), rows=int(data["rows"]), max_id=int(data["max_id"]),
                   at=str(data["at"]), location=str(data["location"]), revision=data.get("revision"),
                   tip=data.get("tip"),
                   base_max_id=None if data.get("base_max_id") is None else int(data["base_max_id"]),
                   base_sha256=data.get("base_sha256"), lineage=data.get("lineage"),
                   tombstones=None if data.get("tombstones") is None else int(data["tombstones"]))
