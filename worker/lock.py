"""One backup or restore at a time per data folder, across processes
(the running loop and an ops `python -m worker backup` must not interleave).

Re-entrant within a thread: code that already holds the lock (a backup run
updating the state file) may take it again; another thread or process waits.
An flock on a second descriptor of the same file would otherwise wait for
ourselves for ever.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_held = threading.local()  # data folders this thread holds the lock of


@contextmanager
def worker_lock(data_dir: Path, name: str = "worker.lock") -> Iterator[None]:
    """`name`: another lock in the same folder (one target's publisher: see worker.backup)."""
    held: set[str] = getattr(_held, "dirs", None) or set()
    _held.dirs = held
    key = str(Path(data_dir).resolve() / name)
    if key in held:
        yield
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # closing releases the lock
