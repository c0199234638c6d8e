"""The worker's ready file: only a file written under the current supervisord run counts.

In a container supervisord is pid 1 at every start, so the parent's pid alone
would let a file left on a persistent /data by the previous container count at
once (tests/test_container.py proves the real case with two containers).
"""

import os
import subprocess
import sys

from shared.config import load_config
from shared.supervisor_run import BOOT_ID, _start_ticks, supervisor_run_id
from web.gate import worker_ready
from worker.startup import mark_ready

CHILD = "from shared.supervisor_run import supervisor_run_id; print(supervisor_run_id())"


def test_a_file_written_under_this_run_counts(tmp_path):
    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path)})
    assert not worker_ready(config)  # no file yet
    mark_ready(config)
    assert worker_ready(config)


def test_a_file_from_an_earlier_run_with_the_same_parent_pid_does_not_count(tmp_path):
    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path)})
    ppid, ticks, boot = supervisor_run_id().split()
    assert ppid == str(os.getppid()) and ticks == _start_ticks(os.getppid()) and boot == BOOT_ID.read_text().strip()
    for stale in (f"{ppid}\n",  # what the ready file held before: the pid alone
                  f"{ppid} {int(ticks) + 1} {boot}\n",  # same pid, a parent started at another time
                  f"{ppid} {ticks} another-boot\n"):  # same pid and start tick, before a reboot
        config.ready_path.write_text(stale)
        assert not worker_ready(config), stale


def test_programs_restarted_under_the_same_parent_get_the_same_id():
    # What a worker restarted alone by ops writes is what the running web expects: no new wait.
    ids = {subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
           for _ in range(2)}
    assert ids == {f"{os.getpid()} {_start_ticks(os.getpid())} {BOOT_ID.read_text().strip()}\n"}
