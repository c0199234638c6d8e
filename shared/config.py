"""Settings, read once from the environment into a frozen dataclass.

Both processes call `load_config()` at start. A bad value stops the process
with a message naming the variable and the value, so a typo in
supervisord.conf or a Space's settings fails loudly instead of running with
a surprise default.

The Hub token is deliberately *not* here: the web process loads this config
too, and it must never hold the token. Only `worker.hub` reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

DEFAULT_DATA_DIR = "./data"
DEFAULT_SERVER_NAME = "127.0.0.1"
DEFAULT_SERVER_PORT = 7860
DEFAULT_BACKUP_INTERVAL_SECONDS = 60.0
DEFAULT_BACKUP_KEEP = 10
DEFAULT_RATE_LIMIT_PER_MINUTE = 5
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024
DEFAULT_RESTORE_TIMEOUT_SECONDS = 30.0
DEFAULT_WORKER_NICE = 10
# --- Hub citizenship (commit budget, bounded history) ---------------------------------------
# The Hub refuses commits past about 128 an hour per repository (its per-action limits are not
# published). 20 leaves six times that for the squash commits, the owner's own edits and a second
# machine during a move, and still commits every 3 minutes when the form is busy.
DEFAULT_COMMITS_PER_HOUR = 20
MAX_COMMITS_PER_HOUR = 100
# main is squashed once it holds this many commits (older backups stay as tags, worker.history):
# the Hub "degrades after a few thousand commits" (storage-limits.md). 0 = never squash.
DEFAULT_SQUASH_AFTER_COMMITS = 1000
# --- end of Hub citizenship -----------------------------------------------------------------
DEFAULT_BACKOFF_CAP_SECONDS = 600.0
# The reviews are other people's words: the form's owner has not licensed
# them to anyone, so the honest default grants nothing. "unknown" is the
# Hub's own value for "no license stated"; an owner who has the right to
# open the data chooses one with HF_DATASET_LICENSE.
DEFAULT_DATASET_LICENSE = "unknown"
# License ids the Hub accepts in a dataset card that fit a table of reviews
# (the Hub's list is longer: code and model licenses are left out on purpose).
DATASET_LICENSES = ("unknown", "other", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0",
                    "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "odc-by", "odbl", "pddl",
                    "apache-2.0", "mit", "cdla-permissive-2.0", "cdla-sharing-1.0")
# The final backup on SIGTERM must end before supervisord's stopwaitsecs (60 s);
# a container's stop grace period is shorter (see the Dockerfile).
DEFAULT_FINAL_BACKUP_TIMEOUT_SECONDS = 45.0

# Shown in the worker's log at every start and on the owner's page.
REVIEWS_AT_RISK_WARNING = (
    "HF_DATASET_REPO is not set and the data folder is not persistent: every review will be LOST at the "
    "next restart. Set HF_DATASET_REPO and HF_TOKEN (or mount a storage bucket or a disk at /data) to keep them.")
# 0: no proxy in front, the socket's peer is the client (X-Forwarded-For ignored).
DEFAULT_TRUSTED_PROXY_HOPS = 0
# The owner's login: after this many refused passwords from one client, refuse it for this long.
DEFAULT_LOGIN_COOLDOWN_SECONDS = 300.0
# The owner's login lasts this long without a request (idle), and at most this long in all.
DEFAULT_OWNER_SESSION_IDLE_SECONDS = 30 * 60.0
DEFAULT_OWNER_SESSION_MAX_SECONDS = 12 * 3600.0
# A public event stream (a submit's result) ends after this long; see web/streams.py.
DEFAULT_STREAM_MAX_SECONDS = 300.0
# Storage (shared/storage.py, worker/targets.py FolderTarget): a mounted bucket is a second backup
# target, written every BACKUP_MOUNT_INTERVAL_SECONDS (a copy of the newest reviews, a few KB, read
# back and checked: cheap, so much more often than a Hub commit).
DEFAULT_BACKUP_MOUNT_INTERVAL_SECONDS = 10.0
# The worker checks that the newest backup would restore, this often (0 = never).
DEFAULT_RESTORE_DRILL_INTERVAL_SECONDS = 86400.0
# Bots kept out (web/bot_guard.py): a person needs longer than this from opening the page to
# sending it; the same comment again within the window is refused; at most this many links.
DEFAULT_MIN_SUBMIT_SECONDS = 3.0
DEFAULT_DUPLICATE_WINDOW_SECONDS = 3600.0
DEFAULT_MAX_LINKS = 2
# Word of new reviews (worker/notify.py). The webhook URL and the SMTP password are secrets:
# like the Hub token they are not here (the web loads this config too); the worker reads them.
WEBHOOK_FORMATS = ("json", "slack", "discord")
SMTP_TLS_MODES = ("starttls", "none")
DEFAULT_SMTP_PORT = 587
DEFAULT_NOTIFY_INTERVAL_SECONDS = 60.0
DEFAULT_NOTIFY_BACKOFF_CAP_SECONDS = 3600.0
DEFAULT_NOTIFY_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting in the environment has a value we cannot use."""


@dataclass(frozen=True)
class Config:
    data_dir: Path
    server_name: str
    server_port: int
    backup_interval_seconds: float
    backup_keep: int
    hf_dataset_repo: str | None
    hf_dataset_private: bool
    hf_squash_after_commits: int
    hf_dataset_license: str
    hf_dataset_publish_names: bool | None  # None: no choice made (refuse to push names to a public dataset)
    backoff_cap_seconds: float
    restore_timeout_seconds: float
    wait_for_worker: bool
    rate_limit_per_minute: int
    max_request_bytes: int
    hide_names: bool
    admin_password: str | None
    worker_nice: int
    log_level: str
    final_backup_timeout_seconds: float
    # False when the data folder is wiped at every restart (a Space without
    # persistent storage); the container's entrypoint sets it.
    data_persistent: bool
    # Storage: a folder of backups on a network or FUSE mount (None: no mount target), how often it is
    # written, and the owner's override to keep the live database on such a folder anyway.
    backup_mount_dir: Path | None
    backup_mount_interval_seconds: float
    allow_network_data_dir: bool
    trusted_proxy_hops: int
    login_cooldown_seconds: float
    restore_drill_interval_seconds: float
    # The address people open the form at (scheme, host, port). Gradio puts it in /config and
    # the page (its API calls go there): taken from here, never from a request's Host or
    # X-Forwarded-Host, which anyone can write (a shared cache would keep the forged one).
    public_url: str
    owner_session_idle_seconds: float
    owner_session_max_seconds: float
    stream_max_seconds: float
    # --- Hub citizenship ---
    hf_commits_per_hour: int = DEFAULT_COMMITS_PER_HOUR
    # --- end of Hub citizenship ---
    min_submit_seconds: float = DEFAULT_MIN_SUBMIT_SECONDS
    duplicate_window_seconds: float = DEFAULT_DUPLICATE_WINDOW_SECONDS
    max_links: int = DEFAULT_MAX_LINKS
    notify_webhook_format: str = "json"
    notify_email_to: tuple[str, ...] = ()
    notify_email_from: str | None = None
    notify_smtp_host: str | None = None
    notify_smtp_port: int = DEFAULT_SMTP_PORT
    notify_smtp_user: str | None = None
    notify_smtp_tls: str = "starttls"
    notify_smtp_ca_file: Path | None = None  # a private relay's own certificate; None: the system's CAs
    notify_include_names: bool = False  # names are personal data: off unless the owner opts in
    notify_interval_seconds: float = DEFAULT_NOTIFY_INTERVAL_SECONDS
    notify_backoff_cap_seconds: float = DEFAULT_NOTIFY_BACKOFF_CAP_SECONDS
    notify_timeout_seconds: float = DEFAULT_NOTIFY_TIMEOUT_SECONDS

    # Pre-moderation: a new review stays off the public page until the owner approves it.
    premoderation: bool = False

    @property
    def notify_state_path(self) -> Path:
        """The notifier's memory across restarts: the last review each channel announced."""
        return self.data_dir / "notify-state.json"

    @property
    def bot_guard_key_path(self) -> Path:
        """The web's key for signing the form's load-time token (0600; kept across restarts)."""
        return self.data_dir / "bot-guard.key"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "reviews.db"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def state_path(self) -> Path:
        """The worker's memory across restarts: what it last published, failures."""
        return self.data_dir / "worker-state.json"

    @property
    def ready_path(self) -> Path:
        """Written by the worker once any restore is done; the web waits for it."""
        return self.data_dir / "worker-ready"

    @property
    def hub_enabled(self) -> bool:
        return bool(self.hf_dataset_repo)

    @property
    def reviews_at_risk(self) -> bool:
        """Nothing survives a restart: no Hub backup, no backup mount and a disk that is wiped."""
        return not self.hub_enabled and not self.data_persistent and self.backup_mount_dir is None


def _get(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T],
         check: Callable[[T], bool] = lambda v: True, expect: str = "") -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not valid: expected {expect}") from None
    if not check(value):
        raise ConfigError(f"{name}={raw!r} is not valid: expected {expect}")
    return value


def _parse_bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _parse_repo(raw: str) -> str:
    parts = raw.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in raw):
        raise ValueError(raw)
    return raw


def _parse_addresses(raw: str) -> tuple[str, ...]:
    addresses = tuple(a.strip() for a in raw.split(",") if a.strip())
    if not addresses or any("@" not in a or any(c.isspace() or c in "<>\"" for c in a) for a in addresses):
        raise ValueError(raw)
    return addresses


def _parse_address(raw: str) -> str:
    (address,) = _parse_addresses(raw) or ("",)
    return address


def _parse_host(raw: str) -> str:
    if any(c.isspace() or c in "/:@" for c in raw):
        raise ValueError(raw)
    return raw


def _parse_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(raw)
    return path


def _parse_url(raw: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    # No path: Gradio's apps are mounted at / and /admin of the form's own address.
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username or parts.password):
        raise ValueError(raw)
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return raw.rstrip("/")


def default_public_url(env: Mapping[str, str], server_name: str, server_port: int) -> str:
    """A Space's own address (SPACE_HOST, set by the Hub), else where the form listens."""
    space_host = (env.get("SPACE_HOST") or "").strip()
    if space_host:
        return f"https://{space_host}"
    host = "localhost" if server_name in ("0.0.0.0", "::", "") else server_name
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{server_port}"


def _parse_abs_folder(raw: str) -> Path:
    path = Path(raw)
    if not path.is_absolute() or (path.exists() and not path.is_dir()):
        raise ValueError(raw)
    return path


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    data_dir = Path(env.get("FEEDBACK_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"FEEDBACK_DATA_DIR={str(data_dir)!r} is not valid: it exists and is not a folder")
    server_name = _get(env, "GRADIO_SERVER_NAME", DEFAULT_SERVER_NAME, str, expect="a host name or address")
    server_port = _get(env, "GRADIO_SERVER_PORT", DEFAULT_SERVER_PORT, int,
                       lambda v: 1 <= v <= 65535, "a port number from 1 to 65535")
    return Config(
        data_dir=data_dir,
        server_name=server_name,
        server_port=server_port,
        backup_interval_seconds=_get(env, "BACKUP_INTERVAL_SECONDS", DEFAULT_BACKUP_INTERVAL_SECONDS, float,
                                     lambda v: 0.1 <= v <= 86400, "seconds between 0.1 and 86400"),
        backup_keep=_get(env, "BACKUP_KEEP", DEFAULT_BACKUP_KEEP, int,
                         lambda v: 1 <= v <= 10000, "a whole number from 1 to 10000"),
        hf_dataset_repo=_get(env, "HF_DATASET_REPO", None, _parse_repo, expect="'owner/name'"),
        hf_dataset_private=_get(env, "HF_DATASET_PRIVATE", True, _parse_bool, expect="true or false"),
        hf_squash_after_commits=_get(env, "HF_SQUASH_AFTER_COMMITS", DEFAULT_SQUASH_AFTER_COMMITS, int,
                                     lambda v: v == 0 or 2 <= v <= 5000,
                                     "0 (never: the history grows without bound) or a whole number from 2 to 5000"),
        hf_dataset_license=_get(env, "HF_DATASET_LICENSE", DEFAULT_DATASET_LICENSE, str.lower,
                                lambda v: v in DATASET_LICENSES, "one of " + ", ".join(DATASET_LICENSES)),
        hf_dataset_publish_names=_get(env, "HF_DATASET_PUBLISH_NAMES", None, _parse_bool, expect="true or false"),
        backoff_cap_seconds=_get(env, "BACKUP_BACKOFF_CAP_SECONDS", DEFAULT_BACKOFF_CAP_SECONDS, float,
                                 lambda v: 0 < v <= 86400, "seconds between 0 and 86400"),
        restore_timeout_seconds=_get(env, "RESTORE_TIMEOUT_SECONDS", DEFAULT_RESTORE_TIMEOUT_SECONDS, float,
                                     lambda v: 0 <= v <= 3600, "seconds between 0 and 3600"),
        wait_for_worker=_get(env, "FEEDBACK_WAIT_FOR_WORKER", False, _parse_bool, expect="true or false"),
        rate_limit_per_minute=_get(env, "FEEDBACK_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_LIMIT_PER_MINUTE, int,
                                   lambda v: v >= 0, "a whole number, 0 for no limit"),
        max_request_bytes=_get(env, "FEEDBACK_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, int,
                               lambda v: v >= 16 * 1024, "bytes, at least 16384"),
        hide_names=_get(env, "FEEDBACK_HIDE_NAMES", False, _parse_bool, expect="true or false"),
        admin_password=env.get("ADMIN_PASSWORD") or None,
        worker_nice=_get(env, "WORKER_NICE", DEFAULT_WORKER_NICE, int,
                         lambda v: 0 <= v <= 19, "a niceness from 0 to 19"),
        log_level=_get(env, "LOG_LEVEL", "INFO", str.upper,
                       lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG, INFO, WARNING or ERROR"),
        final_backup_timeout_seconds=_get(env, "FINAL_BACKUP_TIMEOUT_SECONDS", DEFAULT_FINAL_BACKUP_TIMEOUT_SECONDS,
                                          float, lambda v: 1 <= v <= 55, "seconds from 1 to 55 (supervisord "
                                          "kills the worker after stopwaitsecs=60)"),
        data_persistent=_get(env, "FEEDBACK_DATA_PERSISTENT", True, _parse_bool, expect="true or false"),
        backup_mount_dir=_get(env, "BACKUP_MOUNT_DIR", None, _parse_abs_folder,
                              expect="an absolute path of a folder (on the mounted bucket)"),
        backup_mount_interval_seconds=_get(env, "BACKUP_MOUNT_INTERVAL_SECONDS", DEFAULT_BACKUP_MOUNT_INTERVAL_SECONDS,
                                           float, lambda v: 1 <= v <= 86400, "seconds between 1 and 86400"),
        allow_network_data_dir=_get(env, "FEEDBACK_ALLOW_NETWORK_DATA_DIR", False, _parse_bool,
                                    expect="true or false"),
        trusted_proxy_hops=_get(env, "FEEDBACK_TRUSTED_PROXY_HOPS", DEFAULT_TRUSTED_PROXY_HOPS, int,
                                lambda v: 0 <= v <= 10, "how many proxies stand in front of the app, 0 to 10"),
        login_cooldown_seconds=_get(env, "FEEDBACK_LOGIN_COOLDOWN_SECONDS", DEFAULT_LOGIN_COOLDOWN_SECONDS, float,
                                    lambda v: 1 <= v <= 86400, "seconds between 1 and 86400"),
        restore_drill_interval_seconds=_get(env, "RESTORE_DRILL_INTERVAL_SECONDS",
                                            DEFAULT_RESTORE_DRILL_INTERVAL_SECONDS, float,
                                            lambda v: v == 0 or 1 <= v <= 31 * 86400,
                                            "0 (off) or seconds between 1 and 2678400"),
        public_url=_get(env, "FEEDBACK_PUBLIC_URL", default_public_url(env, server_name, server_port), _parse_url,
                        expect="the form's address, http(s)://host[:port], e.g. https://feedback.example.org"),
        owner_session_idle_seconds=_get(env, "FEEDBACK_OWNER_SESSION_IDLE_SECONDS", DEFAULT_OWNER_SESSION_IDLE_SECONDS,
                                        float, lambda v: 1 <= v <= 86400, "seconds between 1 and 86400"),
        owner_session_max_seconds=_get(env, "FEEDBACK_OWNER_SESSION_MAX_SECONDS", DEFAULT_OWNER_SESSION_MAX_SECONDS,
                                       float, lambda v: 1 <= v <= 7 * 86400, "seconds between 1 and 604800"),
        stream_max_seconds=_get(env, "FEEDBACK_STREAM_MAX_SECONDS", DEFAULT_STREAM_MAX_SECONDS, float,
                                lambda v: 1 <= v <= 86400, "seconds between 1 and 86400"),
        # --- Hub citizenship ---
        hf_commits_per_hour=_get(env, "HF_COMMITS_PER_HOUR", DEFAULT_COMMITS_PER_HOUR, int,
                                 lambda v: 0 <= v <= MAX_COMMITS_PER_HOUR,
                                 f"a whole number from 0 (no budget) to {MAX_COMMITS_PER_HOUR} (the Hub refuses past about "
                                 "128 commits an hour per repository)"),
        # --- end of Hub citizenship ---
        min_submit_seconds=_get(env, "FEEDBACK_MIN_SUBMIT_SECONDS", DEFAULT_MIN_SUBMIT_SECONDS, float,
                                lambda v: 0 <= v <= 600, "0 (off) or seconds up to 600"),
        duplicate_window_seconds=_get(env, "FEEDBACK_DUPLICATE_WINDOW_SECONDS", DEFAULT_DUPLICATE_WINDOW_SECONDS,
                                      float, lambda v: 0 <= v <= 30 * 86400, "0 (off) or seconds up to 2592000"),
        max_links=_get(env, "FEEDBACK_MAX_LINKS", DEFAULT_MAX_LINKS, int, lambda v: 0 <= v <= 1000,
                       "a whole number of links from 0 to 1000"),
        notify_webhook_format=_get(env, "NOTIFY_WEBHOOK_FORMAT", "json", str.lower, lambda v: v in WEBHOOK_FORMATS,
                                   "one of " + ", ".join(WEBHOOK_FORMATS)),
        notify_email_to=_get(env, "NOTIFY_EMAIL_TO", (), _parse_addresses, expect="e-mail addresses, comma-separated"),
        notify_email_from=_get(env, "NOTIFY_EMAIL_FROM", None, _parse_address, expect="one e-mail address"),
        notify_smtp_host=_get(env, "NOTIFY_SMTP_HOST", None, _parse_host, expect="a host name or address"),
        notify_smtp_port=_get(env, "NOTIFY_SMTP_PORT", DEFAULT_SMTP_PORT, int, lambda v: 1 <= v <= 65535,
                              "a port number from 1 to 65535"),
        notify_smtp_user=_get(env, "NOTIFY_SMTP_USER", None, str, expect="a user name"),
        notify_smtp_tls=_get(env, "NOTIFY_SMTP_TLS", "starttls", str.lower, lambda v: v in SMTP_TLS_MODES,
                             "starttls, or none (only for a relay that takes no password)"),
        notify_smtp_ca_file=_get(env, "NOTIFY_SMTP_CA_FILE", None, _parse_file, expect="the path of a PEM file"),
        notify_include_names=_get(env, "NOTIFY_INCLUDE_NAMES", False, _parse_bool, expect="true or false"),
        notify_interval_seconds=_get(env, "NOTIFY_INTERVAL_SECONDS", DEFAULT_NOTIFY_INTERVAL_SECONDS, float,
                                     lambda v: 0.1 <= v <= 86400, "seconds between 0.1 and 86400"),
        notify_backoff_cap_seconds=_get(env, "NOTIFY_BACKOFF_CAP_SECONDS", DEFAULT_NOTIFY_BACKOFF_CAP_SECONDS, float,
                                        lambda v: 0.1 <= v <= 86400, "seconds between 0.1 and 86400"),
        notify_timeout_seconds=_get(env, "NOTIFY_TIMEOUT_SECONDS", DEFAULT_NOTIFY_TIMEOUT_SECONDS, float,
                                    lambda v: 1 <= v <= 300, "seconds between 1 and 300"),
        premoderation=_get(env, "FEEDBACK_PREMODERATION", False, _parse_bool, expect="true or false"),
    )
