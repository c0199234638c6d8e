"""The real image, built from the Dockerfile and run with podman, as a Space runs it.

Against the tests' Hub server on the host's loopback (`--network host`):
1. container 1, empty disk: reviews through the HTTP API, `podman stop` (SIGTERM)
   -> the final backup is on the Hub, and the stop fitted in the grace period;
2. container 2, empty disk: the first page load shows every review; a new one
   reaches the Hub;
3. a host folder at /data: a restart keeps the database (no restore), and the
   ready file of the previous container does not count.
Plus what must hold inside: uid 1000, no token in any layer or in the web's
environment, logs where the README says.

The images are cached (tests/container_images.py): a warm run is a few
container starts; a cold one builds for several minutes first.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import httpx
import pytest

from tests import gradio_api
from tests.apprunner import free_port, wait_until
from tests.container_images import ROOT, Container, ensure_app_image, podman, tools_missing
from tests.hub_fixtures import HUB_TOKENS, HUB_USER
from tests.hubserver import HubServer
from tests.required import need

# A cold cache builds both images inside the first test (about 4-5 minutes on 2 busy cores).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

GRACE_SECONDS = 10  # docker's default stop timeout: what the Dockerfile says it relies on
IN_CONTAINER_DATA = "/home/user/data"
PERSISTENT_DATA = "/data/feedback"


@pytest.fixture(scope="module")
def image():
    missing = tools_missing()  # scripts/test installs them; a bare `pytest` on a machine without them says so
    need(not missing, f"needs {', '.join(missing)} (bash scripts/test installs them)")
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
