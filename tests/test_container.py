"""The real image, built from the Dockerfile and run with podman, as a Space runs it.

Against the tests' Hub server on the host's loopback (`--network host`):
1. container 1, empty disk: reviews through the HTTP API, `podman stop` (SIGTERM)
   -> the final backup is on the Hub, and the stop fitted in the grace period;
2. container 2, empty disk: the first page load shows every review; a new one
   reaches the Hub;
3. a host folder at /data: a restart keeps the database (no restore), and the
   ready file of the previous container does not count;
4. a FUSE mount at /data (rclone with a write-back cache, as a Space's bucket volume):
   the live database stays on the container's disk, the mount holds checked backups,
   and after a SIGKILL a new container on an empty disk restores them from the mount.
Plus what must hold inside: uid 1000, no token in any layer or in the web's
environment, logs where the README says.

The images are cached (tests/container_images.py): a warm run is a few
container starts; a cold one builds for several minutes first.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests import gradio_api
from tests.apprunner import free_port, wait_until
from tests.container_images import ROOT, Container, FuseMount, ensure_app_image, podman, tools_missing
from tests.hub_fixtures import HUB_TOKENS, HUB_USER
from tests.hubserver import HubServer

# A cold cache builds both images inside the first test (about 4-5 minutes on 2 busy cores).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

GRACE_SECONDS = 60  # the grace period the Space card asks for (termination_grace_period: 1m): what the Dockerfile relies on
IN_CONTAINER_DATA = "/home/user/data"
PERSISTENT_DATA = "/data/feedback"


@pytest.fixture(scope="module")
def image():
    missing = tools_missing()
    if missing:  # scripts/test installs them; a bare `pytest` on a machine without them says so
        pytest.skip(f"needs {', '.join(missing)} (bash scripts/test installs them)")
    return ensure_app_image()


@pytest.fixture
def hub(tmp_path):
    # A token of this run only: finding it in an image layer could then only mean a leak.
    token = "hf_" + secrets.token_hex(16)
    proc = HubServer(tokens={**HUB_TOKENS, token: HUB_USER}, lfs_threshold=1_000_000).start()
    proc.token = token
    try:
        yield proc
    finally:
        proc.stop()


def app_env(hub, port: int, repo: str, **extra: str) -> dict[str, str]:
    return {
        "GRADIO_SERVER_NAME": "127.0.0.1",  # host network: the host's loopback only
        "GRADIO_SERVER_PORT": str(port),
        "HF_ENDPOINT": hub.endpoint,
        "HF_DATASET_REPO": repo,
        "HF_TOKEN": hub.token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


def wait_form(container: Container, url: str, timeout: float = 180) -> None:
    def up():
        if not container.running():
            raise RuntimeError(f"container exited: {container.logs()[-3000:]}")
        try:
            return httpx.get(url + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    wait_until(up, timeout, 0.5, "the form in the container")


def hub_rows(hub, repo: str) -> int:
    """Reviews a fresh disk gets from the Hub: `python -m worker restore` into an empty folder, as
    the container's worker does (a backup is a base db plus a delta of the newest reviews)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FEEDBACK_DATA_DIR": f"{tmp}/data", "HF_HOME": f"{tmp}/hf", "HF_ENDPOINT": hub.endpoint,
               "HF_DATASET_REPO": repo, "HF_TOKEN": hub.token, "HF_HUB_DISABLE_XET": "1"}
        result = subprocess.run([sys.executable, "-m", "worker", "restore"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"restored rows=(\d+)", result.stdout).group(1))


def submit(url: str, n: int, tag: str) -> None:
    for i in range(n):
        result = gradio_api.add_review(url, f"{tag} {i}", 1 + i % 5, f"{tag} review {i}")
        assert result.ok, result.error


def total_on_first_load(url: str) -> int:
    result = gradio_api.overview(url)
    assert result.ok, result.error
    return int(result.data[1])


def web_environ(container: Container) -> dict[str, str]:
    """The environment of the web process, read from /proc inside the container."""
    script = (
        "import os\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')\n"
        "    except OSError:\n"
        "        continue\n"
        "    if b'-m' in cmd and cmd[cmd.index(b'-m') + 1:cmd.index(b'-m') + 2] == [b'web']:\n"
        "        print(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'), end='')\n"
    )
    out = container.exec("python3", "-c", script).stdout
    assert out, "no web process found in the container"
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def token_readable_at(container: Container, token: str) -> dict:
    """What a process of the web's uid (1000, no capabilities) can read of every other process:
    {"holders": places whose environ or cmdline shows the token, "denied": commands whose environ
    it may not read, "read": commands whose environ it read}. The token goes in reversed, so
    this reader's own command line never holds it; its own environment (podman exec passes
    the container's) is skipped."""
    script = (
        "import json, os, sys\n"
        "token = sys.argv[1][::-1].encode()\n"
        "out = {'holders': [], 'denied': [], 'read': []}\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    if int(pid) == os.getpid():\n"
        "        continue\n"
        "    try:\n"
        "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode(errors='replace')\n"
        "    except OSError:\n"
        "        continue\n"
        "    for part in ('environ', 'cmdline'):\n"
        "        try:\n"
        "            data = open(f'/proc/{pid}/{part}', 'rb').read()\n"
        "        except PermissionError:\n"
        "            out['denied'].append(cmd)\n"
        "            continue\n"
        "        except OSError:\n"
        "            continue\n"
        "        if part == 'environ':\n"
        "            out['read'].append(cmd)\n"
        "        if token in data:\n"
        "            out['holders'].append(f'{part} of {cmd}')\n"
        "print(json.dumps(out))\n"
    )
    import json

    return json.loads(container.exec("python3", "-c", script, token[::-1]).stdout)


def owners_page_config(url: str) -> str:
    """The owner's page as the browser gets it (Gradio's /config), after the login."""
    with httpx.Client(base_url=url, timeout=10) as client:
        login = client.post("/admin/login", data={"username": "owner", "password": "owner-pw"})
        assert login.status_code == 200, login.text
        config = client.get("/admin/config")
        assert config.status_code == 200
        return config.text


def image_holds(image: str, needle: bytes) -> list[str]:
    """Every place in the saved image (layers and config) that contains `needle`."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        podman("save", "--format", "docker-archive", "-o", str(archive), image, timeout=600)
        with tarfile.open(archive) as outer:
            for member in outer:
                if not member.isfile():
                    continue
                data = outer.extractfile(member)
                if member.name.endswith(".tar") or member.name.endswith("/layer.tar"):
                    with tarfile.open(fileobj=data, mode="r|*") as layer:
                        for entry in layer:
                            if entry.isfile() and needle in layer.extractfile(entry).read():
                                found.append(f"{member.name}:{entry.name}")
                elif needle in data.read():
                    found.append(member.name)
    return found


def test_space_image_backs_up_on_stop_restores_on_empty_disk_and_keeps_data(image, hub, tmp_path):
    repo = f"{HUB_USER}/feedback-{secrets.token_hex(4)}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    # 1. Empty disk. A long interval: only the backup at start (empty) and the final one on SIGTERM run.
    c1 = Container(image, app_env(hub, port, repo, BACKUP_INTERVAL_SECONDS="3600", ADMIN_PASSWORD="owner-pw"))
    with c1:
        wait_form(c1, url)
        assert c1.exec("id", "-u").stdout.strip() == "1000"
        # No compiler and no pip cache in the final image (the venv was built in its own stage).
        leftovers = podman("exec", "--user", "0", c1.name, "sh", "-c",
                           "command -v gcc cc c++ make; ls -d /root/.cache/pip /home/user/.cache/pip /tmp/*.txt",
                           check=False).stdout
        assert leftovers.strip() == "", leftovers
        submit(url, 3, "first")
        env = web_environ(c1)
        assert "HF_TOKEN" not in env and "HUGGING_FACE_HUB_TOKEN" not in env
        assert hub.token not in "\0".join(env.values())
        assert env.get("FEEDBACK_DATA_DIR") == IN_CONTAINER_DATA
        assert env.get("FEEDBACK_DATA_PERSISTENT") == "false"
        assert env.get("FEEDBACK_TRUSTED_PROXY_HOPS") == "1"
        # Nor can any process of the web's uid read it from another process: supervisord and the
        # worker are not dumpable (shared/undumpable.py), the other programs never get it.
        seen = token_readable_at(c1, hub.token)
        assert seen["holders"] == [], seen
        assert any("-m web" in cmd for cmd in seen["read"]), seen  # a same-uid process IS readable
        assert any("-m worker" in cmd for cmd in seen["denied"]), seen
        assert any("shared.supervise" in cmd for cmd in seen["denied"]), seen
        assert c1.exec("test", "-d", "/data", check=False).returncode != 0  # no persistent storage here
        assert "admin-backup-warning" not in owners_page_config(url)  # the Hub keeps the reviews
        c1.stop(GRACE_SECONDS)
        # supervisord exits 0 after both programs stopped; SIGKILL at the grace period would give 137.
        assert c1.exit_code() == 0, c1.logs()[-3000:]
        assert hub_rows(hub, repo) == 3
        # The logs are where the README says: the entrypoint's choice on the container's log,
        # the programs' logs in the data folder.
        container_log = c1.logs()
        assert f"data_dir={IN_CONTAINER_DATA} persistent=false" in container_log
        # ...and the programs' lines are copied there too (a Space's Logs tab), the final backup's included.
        assert "proc=worker worker starting" in container_log and "proc=web web starting" in container_log
        assert "proc=worker shutdown complete" in container_log
        assert hub.token not in container_log
        worker_log = c1.read_file(f"{IN_CONTAINER_DATA}/logs/worker.log")
        assert "shutdown complete" in worker_log
        assert "NO BACKUP" not in worker_log  # HF_DATASET_REPO is set
        assert hub.token not in worker_log
        assert "web starting" in c1.read_file(f"{IN_CONTAINER_DATA}/logs/web.log")

    # No layer, no history line and no image setting holds the token; the token was only ever run-time.
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "HF_TOKEN" not in history and hub.token not in history
    assert "HF_TOKEN" not in podman("image", "inspect", "--format", "{{.Config.Env}}", image).stdout
    assert image_holds(image, hub.token.encode()) == []

    # 2. Another empty disk: the first page load already shows every review; a new one reaches the Hub.
    c2 = Container(image, app_env(hub, port, repo, BACKUP_INTERVAL_SECONDS="1"))
    with c2:
        wait_form(c2, url)
        assert total_on_first_load(url) == 3
        submit(url, 1, "second")
        wait_until(lambda: hub_rows(hub, repo) == 4, 60, 1.0, "the new review on the Hub")
        c2.stop(GRACE_SECONDS)
        assert c2.exit_code() == 0

    # 3. Persistent storage: a host folder at /data, owned by the Space's uid.
    data = tmp_path / "space-data"
    data.mkdir()
    os.chown(data, 1000, 1000)
    c3 = Container(image, app_env(hub, port, repo, BACKUP_INTERVAL_SECONDS="1"), volumes={str(data): "/data"})
    with c3:
        wait_form(c3, url)
        assert total_on_first_load(url) == 4  # restored once, onto the empty /data
        submit(url, 2, "third")
        c3.stop(GRACE_SECONDS)
        assert c3.exit_code() == 0
        assert f"data_dir={PERSISTENT_DATA} persistent=true" in c3.logs()
    db = data / "feedback" / "reviews.db"
    ready = data / "feedback" / "worker-ready"
    inode, ready_before = db.stat().st_ino, ready.read_text()
    assert (data / "feedback" / "logs" / "worker.log").exists()
    assert hub_rows(hub, repo) == 6, (data / "feedback" / "logs" / "worker.log").read_text()[-6000:]

    c4 = Container(image, app_env(hub, port, repo, BACKUP_INTERVAL_SECONDS="1"), volumes={str(data): "/data"})
    with c4:
        wait_form(c4, url)
        assert total_on_first_load(url) == 6
        # Kept, not restored: a restore replaces the file (a new inode) and logs "restored backup".
        assert db.stat().st_ino == inode
        worker_log = (data / "feedback" / "logs" / "worker.log").read_text()
        assert worker_log.count("restored backup") == 1  # c3's, onto the empty /data
        # supervisord is pid 1 in both containers, yet c3's ready file did not count for c4.
        assert ready.read_text() != ready_before
        assert ready.read_text().split()[0] == ready_before.split()[0] == "1"
        # Ops restart one program (the README's command): the run id stays, the web does not wait again.
        ready_now = ready.read_text()
        ctl = ("env", f"FEEDBACK_DATA_DIR={PERSISTENT_DATA}", "supervisorctl", "-c", "supervisord.conf")
        assert "started" in c4.exec(*ctl, "restart", "worker").stdout
        assert "started" in c4.exec(*ctl, "restart", "web").stdout
        wait_form(c4, url)
        assert ready.read_text() == ready_now
        gate_lines = [line for line in (data / "feedback" / "logs" / "web.log").read_text().splitlines()
                      if "proc=web.gate" in line]
        assert gate_lines[-1].endswith("worker ready after 0.0s"), gate_lines  # the first look found it
        c4.stop(GRACE_SECONDS)
        assert c4.exit_code() == 0


def test_space_without_dataset_warns_in_log_and_on_owners_page(image):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "ADMIN_PASSWORD": "owner-pw",
           "FEEDBACK_RATE_LIMIT_PER_MINUTE": "2"}
    with Container(image, env) as c:
        wait_form(c, url)
        submit(url, 1, "unsafe")  # the form keeps working
        # The image's FEEDBACK_TRUSTED_PROXY_HOPS=1: the visitor is what the Space's proxy appended
        # (the rightmost X-Forwarded-For entry); what a visitor writes to its left changes nothing.
        def via_proxy(visitor: str, forged: str) -> gradio_api.CallResult:
            with httpx.Client(timeout=30, headers={"X-Forwarded-For": f"{forged}, {visitor}"}) as client:
                return gradio_api.add_review(url, "proxied", 4, "via the proxy", client=client)
        assert [via_proxy("203.0.113.7", f"10.0.0.{i}").ok for i in range(3)] == [True, True, False]
        assert via_proxy("203.0.113.8", "10.0.0.1").ok  # another visitor has their own limit
        assert "level=WARNING proc=container-start NO BACKUP" in c.logs()
        wait_until(lambda: "level=WARNING proc=worker NO BACKUP" in c.logs(), 30, 0.5, "the warning on the Logs tab")
        worker_log = wait_until(lambda: (lambda t: t if "NO BACKUP" in t else "")(
            c.read_file(f"{IN_CONTAINER_DATA}/logs/worker.log")), 30, 0.5, "the worker's warning")
        assert "level=WARNING" in worker_log
        page = owners_page_config(url)
        assert "admin-backup-warning" in page and "LOST at the next restart" in page


MOUNT_CADENCE_SECONDS = 2  # BACKUP_MOUNT_INTERVAL_SECONDS in the bucket test
MOUNT_BACKUPS = "feedback-backups"  # shared/storage.py MOUNT_BACKUP_SUBDIR


def torn_or_live_files(bucket: Path) -> list[str]:
    """What must never be in the bucket: a SQLite file that fails its check (a torn copy), or the
    live database's files (a -wal, a -shm, the live reviews.db, the worker's state or lock)."""
    import shutil
    import sqlite3

    bad = []
    for path in bucket.rglob("*"):
        if not path.is_file():
            continue
        if path.name.endswith(("-wal", "-shm", "-journal")) or path.name in ("worker-state.json", "worker.lock",
                                                                              "supervisor.sock"):
            bad.append(f"{path.name}: a live file")
        if path.suffix == ".db":
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "check.db"
                shutil.copyfile(path, copy)
                try:
                    conn = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)
                    verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
                    conn.close()
                except sqlite3.DatabaseError as exc:
                    verdict = str(exc)
                if verdict != "ok":
                    bad.append(f"{path.relative_to(bucket)}: {verdict}")
    return bad


def test_space_with_a_bucket_at_data_keeps_reviews_through_a_sigkill(image, hub, tmp_path):
    missing = tools_missing("rclone", "fusermount")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (bash scripts/test installs them)")
    repo = f"{HUB_USER}/feedback-{secrets.token_hex(4)}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bucket = tmp_path / "bucket"  # what the bucket's store holds: files that reached it after close + write-back
    # The Hub only at start and on stop (an hour's interval): within this test the mount is the one that keeps up.
    env = app_env(hub, port, repo, BACKUP_INTERVAL_SECONDS="3600",
                  BACKUP_MOUNT_INTERVAL_SECONDS=str(MOUNT_CADENCE_SECONDS))
    with FuseMount(bucket, tmp_path / "mnt", write_back_seconds=2.0) as fuse:
        c1 = Container(image, env, volumes={str(fuse.mountpoint): "/data"})
        with c1:
            wait_form(c1, url)
            log = c1.logs()
            # The entrypoint's one line: what it found at /data and what it chose.
            assert (f"data_dir={IN_CONTAINER_DATA} persistent=false backup_mount=/data/{MOUNT_BACKUPS}" in log), log
            assert "fuse.rclone" in log and "cannot hold the live database" in log
            assert web_environ(c1).get("FEEDBACK_DATA_DIR") == IN_CONTAINER_DATA
            acked = 5
            submit(url, acked, "kept")
            # Older than the mount's cadence (plus the mount's write-back): these must survive a SIGKILL.
            for _ in range(4 * MOUNT_CADENCE_SECONDS + 2):
                assert torn_or_live_files(bucket) == []  # while the worker writes, too
                time.sleep(1)
            submit(url, 2, "maybe")  # acknowledged just before the kill: may be lost, that is the cadence
            worker_log = c1.read_file(f"{IN_CONTAINER_DATA}/logs/worker.log")
            assert f"backup_mount=/data/{MOUNT_BACKUPS} on=/data (fuse.rclone, network)" in worker_log
            assert f"live_db={IN_CONTAINER_DATA}/reviews.db" in worker_log
            c1.kill()
            c1.remove()
        assert torn_or_live_files(bucket) == []
        names = {p.name for p in bucket.rglob("*")}
        assert "reviews.db" not in names and not any(n.endswith("-wal") for n in names)  # never the live db
        assert any(n.endswith(".json") for n in names), sorted(names)

        # A new container on an empty local disk, the same bucket: it restores from the mount.
        c2 = Container(image, env, volumes={str(fuse.mountpoint): "/data"})
        with c2:
            wait_form(c2, url)
            assert acked <= total_on_first_load(url) <= acked + 2
            worker_log = c2.read_file(f"{IN_CONTAINER_DATA}/logs/worker.log")
            assert f"restored on a fresh disk from=mount:/data/{MOUNT_BACKUPS}" in worker_log, worker_log[-3000:]
            status = json.loads(c2.exec("env", f"FEEDBACK_DATA_DIR={IN_CONTAINER_DATA}",
                                        f"BACKUP_MOUNT_DIR=/data/{MOUNT_BACKUPS}", "python3", "-m", "worker",
                                        "status", "--json", check=False).stdout)
            assert [t["target"].split(":")[0] for t in status["targets"]] == ["mount", "hub"]
            c2.stop(GRACE_SECONDS)
            assert c2.exit_code() == 0, c2.logs()[-3000:]
        assert torn_or_live_files(bucket) == []
