"""The Space image under podman: size, build time, cold start with a restore, stop -> final backup on the Hub.

    .venv/bin/python bench/container.py [--sizes 1000 100000] [--cold-build]

- image size (`podman image inspect`) and build time: the cached build as the tests see it, and with
  `--cold-build` a `podman build --no-cache` (pip install included; several minutes on 2 cores);
- cold start: from `podman run` to the form answering (`/` is 200) and to the first page load showing
  every restored review, on an empty disk, after the worker restored a backup of N reviews from the
  tests' Hub server (in this process, on 127.0.0.1; the container shares the loopback);
- stop: one more review, then `podman stop -t 10` (SIGTERM, SIGKILL after 10 s): time until the
  final backup's commit lands on the Hub, time until the container is gone, and its exit code
  (0 = supervisord stopped both programs before the SIGKILL).

Images come from tests/container_images.py (cached between runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Before huggingface_hub is imported: the tests' Hub server speaks LFS, not Xet.
os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")

import httpx
from huggingface_hub import HfApi

from bench.make_db import cached_db
from shared.config import load_config
from tests import gradio_api
from tests.apprunner import free_port, wait_until
from tests.container_images import (
    APP_REPO, Container, app_tag, build_app_image, ensure_base_image, image_exists, podman)
from tests.hubserver import HubServer
from worker.backup import Backup
from worker.hub import HubTarget

TOKEN = "hf_bench_container_token"
GRACE = 10


def seed(srv: HubServer, repo: str, rows: int, work: Path) -> None:
    """One backup of a `bench/make_db.py` database, pushed with the worker's own code."""
    origin = work / f"origin-{rows}"
    origin.mkdir()
    shutil.copyfile(cached_db(rows), origin / "reviews.db")
    config = load_config({"FEEDBACK_DATA_DIR": str(origin), "HF_DATASET_REPO": repo})
    Backup(config, HubTarget(HfApi(endpoint=srv.endpoint, token=TOKEN), repo)).run()


def one_size(image: str, srv: HubServer, rows: int, work: Path) -> dict:
    repo = f"bench/feedback-{rows}"
    seed(srv, repo, rows, work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "HF_ENDPOINT": srv.endpoint,
           "HF_DATASET_REPO": repo, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
           "BACKUP_INTERVAL_SECONDS": "3600"}  # only the final backup publishes the extra review
    container = Container(image, env, prefix="feedback-bench")
    try:
        started = time.monotonic()
        container.run()

        def answers() -> bool:
            try:
                return httpx.get(url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(answers, 600, 0.1, "the form")
        form_s = time.monotonic() - started
        first = gradio_api.overview(url)
        assert first.ok and int(first.data[1]) == rows, first
        shown_s = time.monotonic() - started

        assert gradio_api.add_review(url, "bench", 5, "the last one").ok
        commits_before = len(srv.list_commits(repo))
        landed: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if len(srv.list_commits(repo)) > commits_before:
                    landed.append(time.monotonic())
                    return
                time.sleep(0.02)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        stop_started = time.monotonic()
        container.stop(GRACE)
        stopped_s = time.monotonic() - stop_started
        time.sleep(0.2)
        done.set()
        watcher.join()
        exit_code = container.exit_code()
    finally:
        container.remove()
    return {"rows": rows, "form_s": form_s, "shown_s": shown_s,
            "landed_s": (landed[0] - stop_started) if landed else float("nan"),
            "stopped_s": stopped_s, "exit": exit_code}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--cold-build", action="store_true", help="also time `podman build --no-cache`")
    args = parser.parse_args()

    tag = app_tag()
    base = ensure_base_image()
    started = time.monotonic()
    cached = image_exists(tag)
    build_s = build_app_image(base, tag) if not cached else time.monotonic() - started
    cold_s = None
    if args.cold_build:
        started = time.monotonic()
        podman("build", "--no-cache", "--isolation", "chroot", "--network", "host", "-v",
               "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
               "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(Path(__file__).resolve().parent.parent),
               timeout=3600)
        cold_s = time.monotonic() - started
    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    base_size = int(podman("image", "inspect", "--format", "{{.Size}}", base).stdout.strip())

    work = Path(tempfile.mkdtemp(prefix="bench-container-"))
    srv = HubServer(tokens={TOKEN: "bench"}, lfs_threshold=10_000_000)
    srv.start()
    results = []
    try:
        for rows in args.sizes:
            results.append(one_size(tag, srv, rows, work))
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nImage {tag} ({APP_REPO}), base {base} (Debian bookworm python3 3.11, stands in for python:3.11-slim)\n")
    print("| what | value |")
    print("|---|---|")
    print(f"| image size | {size / 1e6:.0f} MB (base {base_size / 1e6:.0f} MB, app + venv {(size - base_size) / 1e6:.0f} MB) |")
    print(f"| build, {'cache hit' if cached else 'changed context (venv layer cached)'} | {build_s:.1f} s |")
    if cold_s is not None:
        print(f"| build, --no-cache (pip install included) | {cold_s:.1f} s |")
    print(f"\nCold start on an empty disk with a restore, and stop (podman stop -t {GRACE})\n")
    print("| reviews restored | run -> form answers | run -> first load shows all | stop -> final backup on Hub "
          "| stop -> container gone | exit code |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['form_s']:.1f} s | {r['shown_s']:.1f} s | {r['landed_s']:.2f} s "
              f"| {r['stopped_s']:.2f} s | {r['exit']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
