"""The Hugging Face dataset as a backup target.

Each backup is ONE commit (`HfApi.create_commit`) holding reviews.db,
reviews.csv and a README.md dataset card, so the db and the csv on the Hub
always belong together (`upload_folder` may split a large upload into
several commits). The card carries a machine-readable line with what the
backup holds (rows, highest id, fingerprint), so the worker can learn what
the Hub has from one small file instead of downloading the database.

Only this module (and so only the worker) reads the token: `HF_TOKEN`, the
Hub's own variable, or the client's saved login.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path

from shared.config import Config
from shared.db import Summary
from worker.card import CARD_FILE, DB_FILE, render_card
from worker.errors import WorkerError, retry_after_seconds
from worker.manifest import BackupManifest
from worker.privacy import names_rule
from worker.targets import BackupEntry, commit_title
from worker.tree import DELTA_FILE, Tree, verify_base

log = logging.getLogger("worker.hub")

REPO_TYPE = "dataset"
_MARKER = re.compile(r"<!--\s*feedback-backup\s+(\{.*?\})\s*-->")

# huggingface_hub's HTTP client has no timeout by default: one stalled
# connection would hang the worker (and its SIGTERM) for ever.
HTTP_TIMEOUT = {"connect": 15.0, "read": 120.0, "write": 120.0, "pool": 15.0}


def _install_http_timeouts() -> None:
    """Give the client's shared HTTP session our timeouts, through the public API only.

    `set_client_factory` and `get_session` are exported by huggingface_hub; the
    library's own request hooks (user agent, auth handling) are read from the
    default session instead of importing them from the private `utils._http`.
    tests/test_hub_client.py fails loudly if an upgrade changes any of this."""
    import httpx2
    from huggingface_hub import get_session, set_client_factory

    hooks = {name: list(fns) for name, fns in get_session().event_hooks.items()}

    def client_factory() -> "httpx2.Client":
        return httpx2.Client(event_hooks=hooks, follow_redirects=True, timeout=httpx2.Timeout(**HTTP_TIMEOUT))

    set_client_factory(client_factory)


class HubError(WorkerError):
    """A Hub failure with one line that names the cause and what to do."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def translate(exc: BaseException, repo_id: str, endpoint: str) -> HubError:
    """Turn a client error into one clear line. Never includes the token."""
    from huggingface_hub.errors import RepositoryNotFoundError

    status = _status(exc)
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid metadata in README.md"):
        # The client checks the card with the Hub before committing; keep the
        # Hub's own words. Not permanent: the snapshot stays staged and the
        # loop retries (a fixed worker or a fixed Hub then publishes it).
        reasons = "; ".join(line.lstrip("- ").strip() for line in str(exc).splitlines()[1:] if line.strip())
        return HubError(f"the Hub refused the dataset card (README.md) of {repo_id}: {reasons or str(exc)[:200]}")
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return HubError(f"dataset {repo_id} not found at {endpoint}, or this token cannot see it: check "
                        "HF_DATASET_REPO and that HF_TOKEN belongs to its owner", permanent=True)
    if status == 401:
        return HubError(f"the Hub rejected the token (401 Unauthorized) for {repo_id}: set HF_TOKEN to a valid "
                        "token with write access", permanent=True)
    if status == 403:
        return HubError(f"the token has no write access to {repo_id} (403 Forbidden): use a token with "
                        "write permission for that namespace", permanent=True)
    if status == 429:
        wait = retry_after_seconds(exc)
        return HubError(f"the Hub is rate limiting us (429){f', retry after {wait:.0f}s' if wait else ''}",
                        retry_after=wait)
    if status is not None and status >= 500:
        return HubError(f"the Hub answered {status} (server error) for {repo_id}", retry_after=retry_after_seconds(exc))
    if status in (409, 412):
        return HubError(f"the dataset {repo_id} changed while we were pushing ({status}); will retry")
    if status is not None:
        return HubError(f"the Hub answered {status} for {repo_id}: {str(exc).splitlines()[0][:200]}")
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    return HubError(f"cannot reach the Hub at {endpoint}: {type(exc).__name__}: {detail}".rstrip(": "))


def parse_card(text: str, revision: str, location: str) -> BackupManifest | None:
    match = _MARKER.search(text)
    if not match:
        return None
    data = json.loads(match.group(1))
    data["revision"] = revision
    data["location"] = location
    return BackupManifest.from_json(data)


class HubTarget:
    def __init__(self, api, repo_id: str, *, private: bool = True, squash_after: int = 0,
                 has_token: bool = True, license_id: str = "unknown", publish_names: bool | None = None):
        self.api = api
        self.license_id = license_id
        self.publish_names = publish_names
        self._remote_private: bool | None = None  # as the Hub last said; None: not known (or no repo yet)
        self._remote_files: set[str] | None = None  # the head's files, from the same repo_info call
        self.repo_id = repo_id
        self.private = private
        self.squash_after = squash_after
        self.has_token = has_token
        self.name = f"hub:{repo_id}"
        self._repo_ready = False
        self._known: BackupManifest | None = None  # newest backup we read or wrote, and its commit

    @classmethod
    def from_env(cls, config: Config) -> "HubTarget":
        from huggingface_hub import HfApi, get_token

        _install_http_timeouts()
        token = get_token()
        assert config.hf_dataset_repo
        return cls(HfApi(token=token or False), config.hf_dataset_repo, private=config.hf_dataset_private,
                   squash_after=config.hf_squash_after_commits, has_token=bool(token),
                   license_id=config.hf_dataset_license, publish_names=config.hf_dataset_publish_names)

    @property
    def endpoint(self) -> str:
        return self.api.endpoint

    def _call(self, fn, *args, write: bool = False, **kwargs):
        if write and not self.has_token:
            raise HubError(f"HF_TOKEN is not set: set it to a token with write access to {self.repo_id}, "
                           "or unset HF_DATASET_REPO to back up to the local folder only", permanent=True)
        try:
            return fn(*args, **kwargs)
        except HubError:
            raise
        except Exception as exc:  # every client error becomes one clear HubError
            raise translate(exc, self.repo_id, self.endpoint) from exc

    def wait_seconds(self) -> float:
        """Seconds until the dataset takes its next commit (0.0: now). The commit budget belongs here
        (the Hub half of the work, branch `hubcite`): until it lands, every cycle may commit."""
        return 0.0

    def _ensure_repo(self) -> None:
        if self._repo_ready:
            return
        url = self._call(self.api.create_repo, self.repo_id, repo_type=REPO_TYPE, private=self.private,
                         exist_ok=True, write=True)
        log.info("dataset ready repo=%s private=%s url=%s", self.repo_id, self.private, url)
        self._repo_ready = True

    def _head(self) -> str | None:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            info = self.api.repo_info(self.repo_id, repo_type=REPO_TYPE)
        except RepositoryNotFoundError:
            return None
        self._remote_private = getattr(info, "private", None)
        self._remote_files = {s.rfilename for s in (info.siblings or [])}
        return info.sha

    def _card_at(self, revision: str) -> BackupManifest | None:
        from huggingface_hub.errors import EntryNotFoundError
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.api.hf_hub_download(self.repo_id, CARD_FILE, repo_type=REPO_TYPE,
                                                revision=revision, local_dir=tmp)
            except EntryNotFoundError:
                return None
            text = Path(path).read_text(encoding="utf-8")
        return parse_card(text, revision, f"{self.endpoint}/datasets/{self.repo_id}")

    def newest(self) -> BackupManifest | None:
        """What the newest backup on the Hub holds: one repo_info call, and the
        card only when the head moved since we last looked."""
        head = self._call(self._head)
        if head is None:
            return None
        if self._known is not None and self._known.revision == head:
            return self._known
        self._known = self._call(self._card_at, head)
        return self._known

    def names_policy(self) -> str:
        """KEEP or BLANK for the names in this push; raises NamesChoiceMissing when a
        public dataset has no explicit choice. Uses what `newest()` learnt from the Hub."""
        why = ("HF_DATASET_PRIVATE=false" if not self.private
               else "the existing repo is public" if self._remote_private is False else "")
        return names_rule(public=bool(why), publish_names=self.publish_names, repo_id=self.repo_id, why_public=why)

    def publish(self, tree: Tree, manifest: BackupManifest, summary: Summary, *, names: str = "keep",
                previous_rows: int | None = None) -> BackupManifest:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        self._ensure_repo()
        info = manifest.placed(location=f"{self.endpoint}/datasets/{self.repo_id}")
        public = not self.private or self._remote_private is False
        card = render_card(self.repo_id, info, summary, license_id=self.license_id, private=not public, names=names)
        # Only what the Hub's newest backup lacks (normally the delta and the last shard of
        # each format); the files not in this commit stay as they are in the repo. Files by
        # path, never in-memory buffers for large files: a commit that holds a buffer falls
        # back from Xet to plain HTTP for every file.
        send, complete = tree.to_send(self._known)
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(tree.folder / rel)) for rel in send]
        operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
        stale: list[str] = []
        if complete:
            # A whole new backup: the files of the one before that it does not have (a stale
            # shard after fewer reviews, the single reviews.csv of an older layout) go.
            keep = set(send) | {CARD_FILE, ".gitattributes"}
            stale = sorted(f for f in (self._remote_files or ()) if f not in keep)
            operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
        # parent_commit: if another machine pushed since we looked, the Hub
        # refuses this commit instead of silently stacking ours on top.
        parent = self._known.revision if self._known is not None else None
        if previous_rows is None and self._known is not None:
            previous_rows = self._known.rows
        commit = self._call(self.api.create_commit, self.repo_id, operations, repo_type=REPO_TYPE,
                            commit_message=commit_title(info.at, summary.total, previous_rows),
                            commit_description=f"rows={summary.total} max_id={summary.max_id} at={info.at} "
                                               f"files={len(send)}",
                            parent_commit=parent, write=True)
        info = info.placed(revision=commit.oid)
        self._known = info
        self._remote_files = ((self._remote_files or set()) - set(stale)) | set(send) | {CARD_FILE}
        if self.squash_after:
            self._maybe_squash()
        return info

    def squash_history(self, message: str) -> str | None:
        """Squash `main` into one commit holding its head's files (worker.erase_history): every
        older commit stops being reachable. Returns the new head."""
        self._call(self.api.super_squash_history, self.repo_id, repo_type=REPO_TYPE, commit_message=message,
                   write=True)
        self._known = None  # the head moved: the next publish learns it (newest())
        head = self._call(self._head)
        log.warning("dataset history squashed repo=%s head=%s", self.repo_id, head)
        return head

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        """Every backup in the dataset's history, newest first (one paginated request).
        `every_commit`: also commits that are not the worker's (restore's walk-back
        tries those too: the head may be someone else's commit)."""
        commits = self._call(self.api.list_repo_commits, self.repo_id, repo_type=REPO_TYPE)
        entries = []
        for c in commits:
            fields = dict(part.split("=", 1) for part in (c.message or "").split() if "=" in part)
            rows = int(fields["rows"]) if fields.get("rows", "").isdigit() else None
            at = fields.get("at") or c.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if rows is None and not every_commit and not c.title.startswith(("Backup ", "Squashed ")):
                continue  # not a backup (e.g. the repo's initial commit)
            entries.append(BackupEntry(revision=c.commit_id, at=at, rows=rows, title=c.title))
        return entries

    def _maybe_squash(self) -> None:
        commits = self._call(self.api.list_repo_commits, self.repo_id, repo_type=REPO_TYPE, write=True)
        if len(commits) <= self.squash_after:
            return
        self._call(self.api.super_squash_history, self.repo_id, repo_type=REPO_TYPE,
                   commit_message=f"Squashed {len(commits)} backups into the newest one", write=True)
        head = self._call(self._head)
        if self._known is not None and head:
            self._known = self._known.placed(revision=head)
        log.info("squashed dataset history repo=%s commits_before=%d", self.repo_id, len(commits))

    def fetch(self, dest_dir: Path, revision: str | None = None) -> tuple[Path, BackupManifest]:
        from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

        head = revision or self._call(self._head)
        if head is None:
            raise FileNotFoundError(f"dataset {self.repo_id} does not exist yet")
        try:
            path = self._call(self.api.hf_hub_download, self.repo_id, DB_FILE, repo_type=REPO_TYPE,
                              revision=head, local_dir=dest_dir)
        except HubError as exc:
            if isinstance(exc.__cause__, (EntryNotFoundError, RevisionNotFoundError)):
                raise FileNotFoundError(f"no backup at {self.repo_id}@{head}") from exc
            raise
        info = self._call(self._card_at, head) or BackupManifest(
            fingerprint="", rows=-1, max_id=-1, at="", location=f"{self.endpoint}/datasets/{self.repo_id}",
            revision=head)
        verify_base(Path(path), info)
        if info.base_max_id is not None and info.max_id > info.base_max_id:
            # Beside the db, as dest_dir/DELTA_FILE: restore applies it (worker.restore.fetch_checked).
            self._call(self.api.hf_hub_download, self.repo_id, DELTA_FILE, repo_type=REPO_TYPE, revision=head,
                       local_dir=dest_dir)
        return Path(path), info
