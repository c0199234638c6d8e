"""What kind of file system a folder is on, read from /proc/self/mountinfo, and where the data may live.

SQLite in WAL mode needs a local disk: its -wal and -shm files, the locks and
fsync must behave as the kernel's own file systems do. A FUSE mount of a
bucket (hf-mount), NFS, SMB or 9p do not give that: hf-mount makes a write
durable only on close or after a debounced flush, its fsync is asynchronous
and its locks are local, so a db and its -wal reach the store at different
times (a torn pair) and the newest committed rows can sit in a -wal that never
reaches it. Such a folder can hold files written once and closed: backups.

- `mount_of(path)`: the mount a path is on (the longest mount point that is a
  prefix of its real path; the last mounted wins when two share a point).
- `check_data_dir`: refuses a live database on a network or FUSE folder unless
  the owner overrides it (FEEDBACK_ALLOW_NETWORK_DATA_DIR).
- `container_plan`: the container's choice (scripts/container-start): a local
  /data holds the data folder as before; a network or FUSE /data holds only
  the backups (BACKUP_MOUNT_DIR) and the live data stays on the local disk.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

MOUNTINFO = "/proc/self/mountinfo"

LOCAL = "local"
NETWORK = "network"  # network or FUSE: not a place for a live SQLite database
UNKNOWN = "unknown"

# Kernel file systems on a local block device or in memory: POSIX locks, a real fsync, shared mmap.
LOCAL_TYPES = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs", "nilfs2",
    "overlay", "overlayfs", "aufs", "tmpfs", "ramfs", "devtmpfs", "vfat", "exfat", "msdos", "hfsplus",
})
# Remote or user-space file systems: durability, locks or mmap differ from a local disk.
# FUSE of every kind ("fuse.rclone", "fuse.hf-mount", "fuse.sshfs", and "fuseblk", which also runs
# in user space) is matched by prefix below.
NETWORK_TYPES = frozenset({
    "fuse", "fuseblk", "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "ceph", "glusterfs",
    "lustre", "gpfs", "afs", "davfs", "ncpfs", "beegfs", "orangefs", "ocfs2", "gfs2",
})

DATA_MOUNT = "/data"  # where a Space mounts a volume (a bucket) or a Docker host a disk
MOUNT_BACKUP_SUBDIR = "feedback-backups"  # the mount target's folder on a network or FUSE /data
DATA_SUBDIR = "feedback"  # the data folder on a local /data


class StorageRefused(ValueError):
    """The live database would sit on a network or FUSE folder."""


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str

    @property
    def kind(self) -> str:
        return classify(self.fstype)

    def describe(self) -> str:
        return f"{self.point} ({self.fstype}, {self.kind})"


def classify(fstype: str) -> str:
    if fstype in NETWORK_TYPES or fstype.startswith(("fuse.", "nfs")):
        return NETWORK
    if fstype in LOCAL_TYPES:
        return LOCAL
    return UNKNOWN


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040...)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """`id parent maj:min root point options [optional...] - fstype source superoptions`, one mount a line."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue  # not a mountinfo line
        sep = fields.index("-", 6)
        if len(fields) < sep + 3 or len(fields) < 5:
            continue
        mounts.append(Mount(point=_unescape(fields[4]), fstype=fields[sep + 1], source=_unescape(fields[sep + 2])))
    return mounts


def read_mounts(path: str = MOUNTINFO) -> list[Mount]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return parse_mountinfo(f.read())
    except OSError:
        return []  # not Linux: nothing known, every folder counts as unknown


def real_path(path: Path | str) -> str:
    """The real path of `path`, or of its nearest existing parent joined with the rest (a folder
    not made yet lands on the mount of the folder it will be made in)."""
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def mount_of(path: Path | str, mounts: list[Mount] | None = None) -> Mount | None:
    mounts = read_mounts() if mounts is None else mounts
    target = real_path(path).rstrip("/") or "/"
    best: Mount | None = None
    for mount in mounts:  # in mount order: of two at one point, the later one hides the earlier
        point = mount.point.rstrip("/") or "/"
        if target == point or point == "/" or target.startswith(point + "/"):
            if best is None or len(point) >= len(best.point.rstrip("/") or "/"):
                best = mount
    return best


def kind_of(path: Path | str, mounts: list[Mount] | None = None) -> str:
    mount = mount_of(path, mounts)
    return UNKNOWN if mount is None else mount.kind


def check_data_dir(data_dir: Path, *, allow_network: bool, mounts: list[Mount] | None = None) -> Mount | None:
    """The mount of the data folder; raises StorageRefused when it is network or FUSE and not allowed."""
    mount = mount_of(real_path(data_dir), mounts)
    if mount is not None and mount.kind == NETWORK and not allow_network:
        raise StorageRefused(
            f"FEEDBACK_DATA_DIR={str(data_dir)!r} is on {mount.describe()}: a network or FUSE file system "
            "cannot hold the live SQLite database (its -wal and the db reach the store at different times, "
            "fsync and locks are not a local disk's: acknowledged reviews can be lost or the db torn). Put "
            "FEEDBACK_DATA_DIR on a local disk and let the mount hold backups (BACKUP_MOUNT_DIR), or set "
            "FEEDBACK_ALLOW_NETWORK_DATA_DIR=true to run there anyway")
    return mount


@dataclass(frozen=True)
class Plan:
    """What the container's entrypoint chose, and why."""

    data_dir: str
    persistent: bool
    mount_backup_dir: str | None
    reason: str

    def exports(self) -> dict[str, str]:
        out = {"FEEDBACK_DATA_DIR": self.data_dir, "FEEDBACK_DATA_PERSISTENT": "true" if self.persistent else "false"}
        if self.mount_backup_dir:
            out["BACKUP_MOUNT_DIR"] = self.mount_backup_dir
        return out


def _writable_folder(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def container_plan(env: Mapping[str, str], mounts: list[Mount] | None = None, *,
                   data_mount: str = DATA_MOUNT) -> Plan:
    """The container's data folder and backup mount. Raises StorageRefused for a FEEDBACK_DATA_DIR
    on a network or FUSE folder without the override."""
    mounts = read_mounts() if mounts is None else mounts
    home = env.get("HOME") or os.path.expanduser("~")
    mount_dir = (env.get("BACKUP_MOUNT_DIR") or "").strip() or None
    data_found = mount_of(data_mount, mounts) if os.path.isdir(data_mount) else None
    found = f"{data_mount}={'absent' if data_found is None else data_found.describe()}"
    if (env.get("FEEDBACK_DATA_DIR") or "").strip():
        data_dir = env["FEEDBACK_DATA_DIR"].strip()
        where = check_data_dir(Path(data_dir), allow_network=_truthy(env.get("FEEDBACK_ALLOW_NETWORK_DATA_DIR")),
                               mounts=mounts)
        persistent = (env.get("FEEDBACK_DATA_PERSISTENT") or "true").strip().lower() not in ("0", "false", "no", "off")
        return Plan(data_dir, persistent, mount_dir,
                    f"FEEDBACK_DATA_DIR is set, on {where.describe() if where else 'an unknown file system'}; {found}")
    if data_found is not None and data_found.kind == NETWORK:
        backups = mount_dir or os.path.join(data_mount, MOUNT_BACKUP_SUBDIR)
        if _writable_folder(backups):
            return Plan(os.path.join(home, "data"), False, backups,
                        f"{found}: a network or FUSE mount cannot hold the live database; it holds the backups "
                        f"(BACKUP_MOUNT_DIR), the live data stays on the local disk")
        return Plan(os.path.join(home, "data"), False, mount_dir,
                    f"{found}: a network or FUSE mount, and uid {os.getuid()} cannot write to it; "
                    "the container's disk is wiped at every restart")
    if data_found is not None:
        folder = os.path.join(data_mount, DATA_SUBDIR)
        if _writable_folder(folder):
            return Plan(folder, True, mount_dir, f"{found}: writable, a local disk (persistent storage)")
        return Plan(os.path.join(home, "data"), False, mount_dir,
                    f"{found}: uid {os.getuid()} cannot write to it; the container's disk is wiped at every restart")
    return Plan(os.path.join(home, "data"), False, mount_dir,
                f"no {data_mount} (no persistent storage); the container's disk is wiped at every restart")


def _main(argv: list[str]) -> int:
    """`python -m shared.storage plan`: the entrypoint's choice as shell `export` lines on stdout;
    `python -m shared.storage check`: refuse a network or FUSE FEEDBACK_DATA_DIR (scripts/start)."""
    command = argv[0] if argv else "plan"
    try:
        if command == "plan":
            plan = container_plan(os.environ)
            for key, value in plan.exports().items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"export FEEDBACK_STORAGE_REASON={shlex.quote(plan.reason)}")
            return 0
        if command == "check":
            data_dir = Path(os.environ.get("FEEDBACK_DATA_DIR") or "./data")
            check_data_dir(data_dir, allow_network=_truthy(os.environ.get("FEEDBACK_ALLOW_NETWORK_DATA_DIR")))
            return 0
    except StorageRefused as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    print(f"usage: python -m shared.storage plan|check (got {command!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
