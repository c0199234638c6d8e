"""Crash-safe file writes: the new content goes to a temporary file in the target's folder, is
fsynced, renamed over the target, and the folder is fsynced. A reader, or a machine that lost
power, then finds the old file or the new one, never half of one, and the rename is on disk
before the caller goes on (a manifest naming the file, a state saying it is done)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")
TMP = ".tmp"


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


def replace_durably(src: Path, target: Path) -> None:
    """Make the complete file `src` become `target` atomically and durably (readers see old or new,
    never half). `src` must be on the same file system, normally in the same folder."""
    fsync_file(src)
    os.replace(src, target)
    fsync_dir(target.parent)


def atomic_write(target: Path, write: Callable[[Path], T], *, mode: int | None = None, suffix: str = TMP) -> T:
    """`write(tmp)` fills `tmp` (next to `target`: `<name><suffix>`), which then becomes `target`
    (replace_durably). Returns what `write` returned.

    `tmp` exists, empty, when `write` is called; `write` may write into it or replace it (SQLite's
    backup API, VACUUM INTO). With `mode` it is created 0600, so no one else can read the content
    even while it is written, and gets `mode` once it is complete, whatever the umask. On any error
    `tmp` is removed and an existing `target` is left as it was. A `tmp` left by a crash is
    overwritten: each target has one writer at a time (the worker lock; a fresh folder per export).
    """
    tmp = target.with_name(target.name + suffix)
    tmp.unlink(missing_ok=True)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600))
        result = write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        replace_durably(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def write_text_atomic(target: Path, text: str, *, mode: int | None = None) -> None:
    """`text` as the whole of `target`, written by atomic_write (`mode` as there)."""
    atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode=mode)
