"""Crash-safe file writes: write to `name.tmp`, fsync, rename over the target, fsync the folder."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_or_copy(src: Path, dest: Path) -> None:
    """A hard link to `src` (free: our files are replaced by rename, never rewritten in place), or a
    durable copy where a link cannot be made: another file system, or one without hard links (FUSE)."""
    try:
        os.link(src, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
            raise
        shutil.copyfile(src, dest)
        fsync_file(dest)


def replace_durably(tmp: Path, target: Path) -> None:
    """Make `tmp` become `target` atomically and durably (readers see old or new, never half)."""
    fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def write_text_atomic(target: Path, text: str, *, mode: int | None = None) -> None:
    """`mode`: set on the file whatever the umask of the command that writes it."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)
        replace_durably(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
