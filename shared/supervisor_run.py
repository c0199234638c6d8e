"""Which supervisord run this process belongs to: the worker's ready file names it.

The ready file must not count when it was left by an earlier run. Its parent's
pid alone is not enough: in a container supervisord is pid 1 every time, and
on a persistent /data a file from the previous container would count at once.
So the id is the parent's pid, the parent's start time (clock ticks since
boot, from /proc/<ppid>/stat) and the kernel's boot id. A new container, a
new supervisord or a reboot gives a new id; restarting one program under the
same supervisord keeps it, so a web restarted alone does not wait again, and
a worker restarted alone rewrites the same id.
"""

from __future__ import annotations

import os
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux): the pid alone, as before
        return "?"
    # Field 2 (the command) may hold spaces and parentheses: count from the last ")".
    # After it come field 3 (state) onwards; field 22 is the start time.
    return stat.rsplit(")", 1)[1].split()[19]


def supervisor_run_id() -> str:
    """Same value in every program started by one supervisord run."""
    ppid = os.getppid()
    try:
        boot = BOOT_ID.read_text().strip()
    except OSError:
        boot = "?"
    return f"{ppid} {_start_ticks(ppid)} {boot}"
