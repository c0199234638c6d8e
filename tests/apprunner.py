"""Start the real app: supervisord from the project's supervisord.conf, in a
temporary data folder, on a free port. Polled until the form answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port that was free a moment ago. Another process may take it before the web binds it
    (several suites share this machine): `App.start` checks who answers and retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    """Someone else got the port between free_port() and the web's bind."""


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening socket of `port` (Linux /proc)."""
    inodes = _listening_inodes(port)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[len("socket:["):-1] in inodes:
            return True
    return False


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class App:
    """The app under supervisord. `env` adds to the environment of supervisord (and so of both programs)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
        self.env.update({
            "FEEDBACK_DATA_DIR": str(self.data_dir),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "BACKUP_INTERVAL_SECONDS": "1",
            "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HOME": str(self.data_dir.parent / "hf-home"),
        })
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self._web_log_start: dict[str, int] = {}

    def start(self, timeout: float = 60.0) -> "App":
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self._web_log_start = {n: len(self.log(n)) for n in ("web", "web.err")}  # this attempt's lines only
            self.proc = subprocess.Popen(
                # As scripts/start does: supervisord through shared/supervise.py (not dumpable).
                [str(VENV_BIN / "python"), "-m", "shared.supervise", "-c", str(ROOT / "supervisord.conf")],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, umask=0o077)  # as scripts/start does
            try:
                self.wait_web(timeout)
                break
            except PortTaken:
                if attempt == 2:
                    raise
                self.stop()
                self._use_port(free_port())
        wait_until(lambda: self.ctl("status").stdout.count("RUNNING") == 2, 20, 0.3, "both programs RUNNING")
        return self

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env["GRADIO_SERVER_PORT"] = str(port)

    def web_up(self) -> bool:
        try:
            return httpx.get(self.url + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_web(self, timeout: float = 60.0) -> None:
        """Until OUR web answers: a form on the port that another process holds does not count."""
        def ready():
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited rc={self.proc.returncode}; logs: {self.logs()}")
            if any("address already in use" in self.log(n)[start:] for n, start in self._web_log_start.items()):
                raise PortTaken(self.port)
            if not self.web_up():
                return False
            pid = self.pid("web")
            if pid and listens_on(pid, self.port):
                return True
            if _listening_inodes(self.port) and pid and not listens_on(pid, self.port):
                raise PortTaken(self.port)
            return False
        wait_until(ready, timeout, 0.2, "the web form")

    def ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(ROOT / "supervisord.conf"), *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)

    def pid(self, program: str) -> int:
        out = self.ctl("pid", program).stdout.strip()
        return int(out) if out.isdigit() else 0

    def log(self, program: str) -> str:
        path = self.data_dir / "logs" / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        parts = []
        for path in sorted((self.data_dir / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def worker(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a one-shot worker command (`status`, `backup`, `restore`) as ops would."""
        return subprocess.run([sys.executable, "-m", "worker", *args], cwd=ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> "App":
        try:
            return self.start()
        except BaseException:
            self.stop()  # a start that timed out must not leave supervisord running
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
