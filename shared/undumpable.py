"""Keep a process's memory and environment from other processes of the same user.

In the container every process runs as uid 1000, and Linux lets a process read
/proc/<pid>/environ (and attach a debugger, and read /proc/<pid>/mem) of any
other process of its user. HF_TOKEN is in the environment of supervisord and of
the worker, so a compromised web process could read it there.

prctl(PR_SET_DUMPABLE, 0) marks a process "not dumpable": the kernel then
refuses those reads (and ptrace) to every other process without CAP_SYS_PTRACE,
whatever its uid, and the process's /proc files belong to root. The flag goes
back to "dumpable" on execve, so each process that holds the token sets it for
itself: supervisord (started through `python -m shared.supervise`) and the
worker (first thing in `python -m worker`). The web never holds the token and
stays as it is.

What it cannot cover: the worker's environment is readable between its execve
and this call (the Python start-up, tens of milliseconds after each (re)start),
and root, or anyone with CAP_SYS_PTRACE, still reads everything (SECURITY.md).
"""

from __future__ import annotations

import ctypes
import sys

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Set this process not dumpable; False where prctl does not exist (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 and libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
