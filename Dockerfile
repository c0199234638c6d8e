# The feedback form and its backup worker, as a Hugging Face Docker Space builds it (or any Docker host):
#   docker build -t feedback .
#   docker run -p 7860:7860 -e HF_DATASET_REPO=me/feedback -e HF_TOKEN=hf_... -e ADMIN_PASSWORD=... feedback
# Secrets (HF_TOKEN, ADMIN_PASSWORD) are given at run time only: none is an ARG or ENV here, and
# .dockerignore keeps data/ and .env files out of the build context, so no layer holds one.

# The tests build FROM a local Debian image (no registry is reachable there): see tests/container_images.py.
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: the venv. pip's downloads and any build leftovers stay in this stage. `python3 -m venv`
# works on both bases (the official image has python3 in /usr/local, Debian's in /usr).
FROM ${BASE_IMAGE} AS venv
# constraints.txt pins every package requirements.txt pulls in (scripts/lock): the image runs what the tests ran.
COPY requirements.txt constraints.txt /tmp/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --prefer-binary \
      -c /tmp/constraints.txt -r /tmp/requirements.txt

# Stage 2: what runs. No compiler, no pip cache, no apt lists.
FROM ${BASE_IMAGE}
# uid 1000 with a home: what a Space runs as (the same on any Docker host, so files on /data match).
# No /data here: the entrypoint looks at what is mounted there (a disk holds the data, a bucket the
# backups: scripts/container-start), and an empty folder made by the image would pass for a disk.
RUN useradd --create-home --uid 1000 --shell /bin/sh user
COPY --from=venv /opt/venv /opt/venv
# The code stays owned by root, read-only for the app: a compromised form cannot rewrite it.
COPY . /home/user/app
RUN python3 -m compileall -q /home/user/app/shared /home/user/app/web /home/user/app/worker

USER user
# FEEDBACK_TRUSTED_PROXY_HOPS: a Space has exactly one proxy in front, so the visitor is the address
# 1 hop from the right of X-Forwarded-For; whatever a visitor puts to its left is ignored.
#
# FINAL_BACKUP_TIMEOUT_SECONDS: a stop sends SIGTERM, then SIGKILL after a grace period. The Space
# card (space/README.md) asks for one minute (`termination_grace_period: 1m`, not in the current
# config reference: see the README, "Stopping"); elsewhere give it with `docker stop -t 60`.
# supervisord stops the web first (priority 20 before 10) and waits for it to exit: no review is
# acknowledged after that, so every acknowledged review is in the worker's final snapshot. The web
# exits in ~0.2 s (at most 5 s: uvicorn's graceful-shutdown bound), then the final backup gets 45 s,
# its watchdog 4 s more and the log copier 1 s: 55 s, inside the minute. A kill before that (Docker's
# default 10 s, or a platform that does not honour the key) ends like a timeout: the previous backup
# stays the newest (a Hub commit is all or nothing); with a bucket at /data, the mount target
# still holds every review older than its cadence. tests/test_config.py checks the sum.
ENV HOME=/home/user \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    FEEDBACK_TRUSTED_PROXY_HOPS=1 \
    FINAL_BACKUP_TIMEOUT_SECONDS=45
WORKDIR /home/user/app
EXPOSE 7860
# PID 1 is supervisord itself (the script execs it), with no extra init: supervisord installs handlers
# for SIGTERM/SIGINT/SIGQUIT (stop the programs in order, then exit) and reaps every child with
# waitpid(-1), orphans re-parented to it included ("reaped unknown pid" in its log). An init such as
# tini would add a binary and one more process, and would only forward the same SIGTERM.
CMD ["sh", "/home/user/app/scripts/container-start"]
