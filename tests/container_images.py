"""Build and run the project's Dockerfile with podman on a machine without a registry.

Used by tests/test_container.py and bench/container.py. The recipe is
../shared/CONTAINERS.md: a base image made from Debian's packages (mmdebstrap +
`podman import`, bookworm's python3 is 3.11 like python:3.11-slim), `podman build
--isolation chroot` with the host's CA bundle mounted at build time only, and a
containers.conf of our own for `podman run`.

Both images are cached in podman's storage: the base by its recipe, the app by a
hash of the build context (the files .dockerignore lets in, plus the Dockerfile).
Nothing is rebuilt when nothing changed; a cold build takes minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent

# Debian's python3 with venv and CA certificates; minbase already has useradd (passwd is "required").
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_SUITE = "bookworm"
BASE_TAG = "localhost/feedback-base:" + hashlib.sha1(f"{BASE_SUITE} {BASE_PACKAGES}".encode()).hexdigest()[:12]
APP_REPO = "localhost/feedback"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# The settings CONTAINERS.md says the default runtime needs here (no setrlimit, no systemd cgroups).
CONTAINERS_CONF_TEXT = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def podman_env() -> dict[str, str]:
    """The environment for every podman command: our own containers.conf, not /etc's."""
    conf = Path(tempfile.gettempdir()) / "feedback-containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF_TEXT:
        tmp = conf.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(CONTAINERS_CONF_TEXT)
        tmp.replace(conf)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(*args: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed rc={result.returncode}: {result.stderr[-2000:]}")
    return result


def tools_missing(*extra: str) -> list[str]:
    # runc is in /usr/sbin, which a user's PATH may lack (podman finds it there itself).
    return [tool for tool in ("podman", "runc", "mmdebstrap", *extra)
            if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin") is None]


class FuseMount:
    """A FUSE mount of a local folder, as a Space's bucket volume is (hf-mount): Debian's `rclone
    mount` with a write-back cache, so a file reaches the folder (the "bucket") only after it is
    closed and the write-back delay has passed, and a file held open never does. `--allow-other`
    and uid 1000: the container's user reads and writes it through a bind mount at /data."""

    def __init__(self, backing: Path, mountpoint: Path, *, write_back_seconds: float = 2.0):
        self.backing, self.mountpoint = backing, mountpoint
        self.write_back_seconds = write_back_seconds
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "FuseMount":
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        cache = self.mountpoint.parent / f"{self.mountpoint.name}-rclone-cache"
        self.proc = subprocess.Popen(
            ["rclone", "mount", str(self.backing), str(self.mountpoint), "--config", "/dev/null",
             "--vfs-cache-mode", "writes", "--vfs-write-back", f"{self.write_back_seconds}s",
             "--dir-cache-time", "1s", "--cache-dir", str(cache), "--allow-other", "--uid", "1000",
             "--gid", "1000", "--umask", "077"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not self.mounted():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"rclone mount did not come up: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.1)
        return self

    def mounted(self) -> bool:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == str(self.mountpoint) for line in f)

    def __exit__(self, *exc) -> None:
        if self.mounted():
            subprocess.run(["fusermount", "-u", "-z", str(self.mountpoint)], capture_output=True, timeout=30)
        if self.proc is not None:
            try:
                self.proc.wait(30)  # rclone exits once unmounted, after its write-back
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def ensure_base_image() -> str:
    """The local stand-in for python:3.11-slim (about 2 minutes the first time, cached after)."""
    if image_exists(BASE_TAG):
        return BASE_TAG
    with tempfile.TemporaryDirectory(prefix="feedback-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", f"--include={BASE_PACKAGES}",
                        BASE_SUITE, str(tar)], check=True, capture_output=True, timeout=900)
        podman("import", str(tar), BASE_TAG, timeout=300)
    return BASE_TAG


def _ignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, line.lstrip("!").rstrip("/")))
    return rules


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    """.dockerignore's rule: the last pattern matching the path or one of its parents wins."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for negate, pattern in rules:
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def context_files() -> list[Path]:
    rules = _ignore_rules()
    kept = [pattern for negate, pattern in rules if negate]
    files = []
    for folder, dirs, names in os.walk(ROOT):
        here = Path(folder)
        # Do not walk an ignored folder no "!" pattern reaches into (.git, .venv, tests/node_modules...).
        for d in list(dirs):
            rel = (here / d).relative_to(ROOT).as_posix()
            if _ignored(rel, rules) and not any(p == rel or p.startswith(rel + "/") for p in kept):
                dirs.remove(d)
        for name in names:
            rel = (here / name).relative_to(ROOT).as_posix()
            if not _ignored(rel, rules):
                files.append(here / name)
    return sorted(files)


def app_tag() -> str:
    digest = hashlib.sha256()
    for path in [ROOT / "Dockerfile", ROOT / ".dockerignore", *context_files()]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
        digest.update(b"\1" if os.access(path, os.X_OK) else b"\0")
    return f"{APP_REPO}:ctx-{digest.hexdigest()[:16]}"


def build_app_image(base: str, tag: str) -> float:
    """`podman build` as CONTAINERS.md says; returns the seconds it took. Older app tags are removed."""
    started = time.monotonic()
    podman("build", "--isolation", "chroot", "--network", "host", "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
           "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(ROOT), timeout=3600)
    seconds = time.monotonic() - started
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", APP_REPO, check=False).stdout.split()
    for old in listed:
        if old.startswith(f"{APP_REPO}:ctx-") and old != tag:
            podman("rmi", old, check=False)
    return seconds


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One image build at a time on this machine: the suite runs test files in parallel, and two
    files asking for the same image would each build it (minutes of CPU) at once."""
    with open(Path(tempfile.gettempdir()) / "feedback-image-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_app_image() -> str:
    tag = app_tag()
    if image_exists(tag):
        return tag
    with _build_lock():
        if not image_exists(tag):  # another process may have built it while we waited
            build_app_image(ensure_base_image(), tag)
    return tag


class Container:
    """One `podman run -d --network host` of the app image; always removed by `remove()`."""

    def __init__(self, image: str, env: dict[str, str], *, volumes: dict[str, str] | None = None,
                 prefix: str = "feedback-test"):
        self.image = image
        self.env = env
        self.volumes = volumes or {}
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"

    def run(self) -> "Container":
        args = ["run", "-d", "--name", self.name, "--network", "host"]
        for key, value in self.env.items():
            args += ["-e", f"{key}={value}"]
        for host, inside in self.volumes.items():
            args += ["-v", f"{host}:{inside}"]
        podman(*args, self.image)
        return self

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *cmd, check=check)

    def kill(self) -> subprocess.CompletedProcess:
        """SIGKILL to every process: no final backup, as a crash or a platform's hard stop."""
        return podman("kill", "-s", "KILL", self.name)

    def stop(self, grace: int = 10) -> subprocess.CompletedProcess:
        """SIGTERM to PID 1, SIGKILL after `grace` seconds: what `docker stop` does."""
        return podman("stop", "-t", str(grace), self.name, timeout=grace + 60)

    def exit_code(self) -> int:
        return int(podman("inspect", self.name, "--format", "{{.State.ExitCode}}").stdout.strip())

    def running(self) -> bool:
        out = podman("inspect", self.name, "--format", "{{.State.Running}}", check=False).stdout.strip()
        return out == "true"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def read_file(self, path: str) -> str:
        """A file inside the container, running or stopped (`podman cp` to stdout is a tar stream)."""
        with tempfile.TemporaryDirectory() as tmp:
            podman("cp", f"{self.name}:{path}", tmp)
            return (Path(tmp) / Path(path).name).read_text(errors="replace")

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)

    def __enter__(self) -> "Container":
        try:
            return self.run()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc) -> None:
        self.remove()
