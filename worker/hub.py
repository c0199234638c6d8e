"""The Hugging Face dataset as a backup target.

Each backup is ONE commit (`HfApi.create_commit`) holding the files that
changed (the db's base and delta, CSV and Parquet shards: worker/tree.py) and
the README.md dataset card, so the files on the Hub always belong together
(`upload_folder` may split a large upload into several commits). The card carries a machine-readable line with what the
backup holds (rows, highest id, fingerprint), so the worker can learn what
the Hub has from one small file instead of downloading the database.

Only this module (and so only the worker) reads the token: `HF_TOKEN`, the
Hub's own variable, or the client's saved login.

A good citizen of the Hub at any age:
- a commit budget per repository (`worker.budget`): `wait_seconds()` tells the
  loop when the dataset takes its next commit; a cycle that finds the budget
  spent makes none, and the next commit carries everything since;
- a 429 (the Hub's commit quota or its API limit) blocks every request to the
  Hub until its Retry-After, or QUOTA_BACKOFF_SECONDS without one;
- a bounded history (`worker.history`): `main` is squashed at
  HF_SQUASH_AFTER_COMMITS commits, and older backups stay restorable at a
  coarser grain as tags (hourly for 2 days, daily for 90, monthly after).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from shared import utc
from shared.config import Config
from shared.db import Summary
from worker import history as ladder
from worker.budget import CommitBudget
from worker.card import CARD_FILE, DB_FILE, render_card
from worker.errors import WorkerError, retry_after_seconds
from worker.manifest import BackupManifest
from worker.privacy import names_rule
from worker.targets import BackupEntry, commit_title
from worker.tree import DELTA_FILE, Tree, verify_base

log = logging.getLogger("worker.hub")

REPO_TYPE = "dataset"
_MARKER = re.compile(r"<!--\s*feedback-backup\s+(\{.*?\})\s*-->")

# wait_seconds() could not reach the Hub: it asks again after this long (a publish asks at once).
SEED_RETRY_SECONDS = 300.0

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

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.status = status  # the Hub's HTTP status, when it answered


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
        # One wording whatever the wait, so a quota streak is logged once (worker.loop compares causes).
        return HubError(f"the Hub is rate limiting {repo_id} (429 Too Many Requests): no request to the Hub "
                        "until it accepts again (HF_COMMITS_PER_HOUR budgets our commits)",
                        retry_after=retry_after_seconds(exc), status=429)
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


def _fields(text: str) -> dict[str, str]:
    """The `key=value` words of a commit's title and message (rows=, max_id=, at=, ...)."""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


class HubTarget:
    def __init__(self, api, repo_id: str, *, private: bool = True, squash_after: int = 0,
                 has_token: bool = True, license_id: str = "unknown", publish_names: bool | None = None,
                 commits_per_hour: int = 0, clock: Callable[[], float] = time.time):
        """`commits_per_hour`: the budget `wait_seconds()` enforces (0: none); `squash_after`: squash
        `main` once it holds that many commits, keeping older backups as tags (0: never, no tags);
        `clock`: seconds since the epoch (the Hub dates commits by it too), injected by tests."""
        self.api = api
        self.clock = clock
        self.budget = CommitBudget(commits_per_hour, clock=clock)
        self._seeded = False  # the budget's hour, main's length and the kept points, learnt from the Hub
        self._seed_retry_at = 0.0
        self._main_commits = 0
        self._points: list[ladder.Point] = []
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
                   license_id=config.hf_dataset_license, publish_names=config.hf_dataset_publish_names,
                   commits_per_hour=config.hf_commits_per_hour)

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
            error = translate(exc, self.repo_id, self.endpoint)
            if error.status == 429:
                # The loop waits at least this long too (worker.errors.retry_after_seconds), and
                # wait_seconds() keeps the target skipped meanwhile: never a tight retry.
                error.retry_after = self.budget.block(error.retry_after)
                log.debug("hub quota block repo=%s wait_s=%.0f", self.repo_id, error.retry_after)
            raise error from exc

    def wait_seconds(self) -> float:
        """Seconds until the dataset takes its next commit (0.0: now): the commit budget's hour,
        or a 429's wait. The first call learns the last hour's commits from the Hub (one request);
        it never raises (an unreachable Hub shows in the publish that follows)."""
        if not self._seeded and self.clock() >= self._seed_retry_at:
            try:
                self._seed()
            except Exception as exc:  # noqa: BLE001 - a check, not a backup: the publish reports the cause
                # Not at every cycle: an unreachable Hub would hold each one for a connect timeout.
                self._seed_retry_at = self.clock() + SEED_RETRY_SECONDS
                log.debug("could not learn the commit budget from the Hub yet error=%s", exc)
        return self.budget.wait_seconds()

    def _commits_or_none(self):
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            return self.api.list_repo_commits(self.repo_id, repo_type=REPO_TYPE)
        except RepositoryNotFoundError:
            return None

    def _seed(self) -> None:
        """Learn from the Hub what a restart (or a wiped disk) must not forget: the commits of the
        last hour (a squash commit says how many it replaced), main's length and the kept points."""
        commits = self._call(self._commits_or_none) or []
        now = self.clock()
        times: list[float] = []
        for c in commits:
            made = c.created_at.timestamp()
            if now - made < 3600:
                times.append(made)
                replaced = _fields(f"{c.title} {c.message or ''}").get("commits_last_hour", "")
                times += [made] * (int(replaced) if replaced.isdigit() else 0)
        self.budget.seed(times)
        self._main_commits = max(1, len(commits))  # a repo about to be created starts with one commit
        self._points = self.points() if (self.squash_after and commits) else []
        self._seeded = True
        log.debug("hub budget learnt repo=%s commits_last_hour=%d main_commits=%d points=%d", self.repo_id,
                  self.budget.used(), self._main_commits, len(self._points))

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
        if not self._seeded:
            self._seed()
        # Made now, by the clock the budget and the kept points use (the snapshot is seconds older).
        info = replace(manifest.placed(location=f"{self.endpoint}/datasets/{self.repo_id}"),
                       at=utc.iso(self.clock()))
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
        self.budget.record()
        self._main_commits += 1
        if self.squash_after:
            try:
                self._keep_point(info)
                if self._main_commits >= self.squash_after:
                    self._squash(info)
            except HubError as exc:
                # The backup is on the Hub; the point or the squash is tried again at the next publish.
                log.warning("backup published, history upkeep postponed repo=%s cause=%s", self.repo_id, exc)
        return info

    def squash_history(self, message: str) -> str | None:
        """Squash `main` into one commit holding its head's files (worker.erase_history): every
        older commit stops being reachable. Returns the new head."""
        self._call(self.api.super_squash_history, self.repo_id, repo_type=REPO_TYPE, commit_message=message,
                   write=True)
        self._known = None  # the head moved: the next publish learns it (newest())
        self._main_commits = 1
        head = self._call(self._head)
        log.warning("dataset history squashed repo=%s head=%s", self.repo_id, head)
        return head

    def replace_points(self, new: list[ladder.Point]) -> None:
        """Make `new` the kept points (worker.erase_history): every tag of ours not among them is
        deleted (with it, the last reference to its commit), each of `new` is created."""
        keep = {p.tag: p for p in new}
        for old in self.points():
            if keep.get(old.tag) is None or keep[old.tag].revision != old.revision:
                self._call(self.api.delete_tag, self.repo_id, tag=old.tag, repo_type=REPO_TYPE, write=True)
        for p in new:
            self._call(self.api.create_tag, self.repo_id, tag=p.tag, revision=p.revision, repo_type=REPO_TYPE,
                       exist_ok=True, write=True)
        self._points = sorted(new, key=lambda p: p.at)

    def points(self) -> list[ladder.Point]:
        """The kept points (tags), oldest first: each with its commit, time and rows. The one place
        that enumerates them: `history()` lists them, and a rewrite of the history (erasing a review)
        regenerates them from here."""
        refs = self._call(self.api.list_repo_refs, self.repo_id, repo_type=REPO_TYPE)
        found = (ladder.parse_tag(t.name, t.target_commit) for t in refs.tags)
        return sorted((p for p in found if p is not None), key=lambda p: p.at)

    def manifest_at(self, revision: str) -> BackupManifest | None:
        """What the backup at `revision` (a commit id or a tag) holds, from its card (one download)."""
        return self._call(self._card_at, revision)

    def _keep_point(self, info: BackupManifest) -> None:
        """Tag the first backup of each UTC hour, then drop the tags no rule keeps (worker.history)."""
        now = utc.parse_iso(info.at)
        if not ladder.due(self._points, now):
            return
        name = ladder.tag_name(now, info.rows)
        self._call(self.api.create_tag, self.repo_id, tag=name, revision=info.revision, repo_type=REPO_TYPE,
                   exist_ok=True, write=True)
        self._points.append(ladder.Point(tag=name, revision=str(info.revision), at=now, rows=info.rows))
        for old in ladder.expired(self._points, now):
            self._call(self.api.delete_tag, self.repo_id, tag=old.tag, repo_type=REPO_TYPE, write=True)
            self._points.remove(old)
            log.debug("kept point dropped repo=%s tag=%s", self.repo_id, old.tag)

    def _adopt_points(self) -> None:
        """Before a squash: every backup on `main` that the ladder keeps gets its tag. Normally each
        hour's first backup has one already; this is for a history made before the ladder (a
        dataset with thousands of commits, squashed for the first time) or an hour whose tag
        failed. Costs one listing of main, and a tag per point found."""
        commits = self._call(self.api.list_repo_commits, self.repo_id, repo_type=REPO_TYPE)
        hours = {ladder.hour_of(p.at) for p in self._points}
        found: list[ladder.Point] = []
        for c in reversed(commits):  # oldest first: the first backup of an hour is its point
            fields = _fields(f"{c.title} {c.message or ''}")
            if not fields.get("rows", "").isdigit() or "at" not in fields:
                continue  # not a backup of ours
            try:
                at = utc.parse_iso(fields["at"])
            except ValueError:
                continue
            if ladder.hour_of(at) in hours:
                continue
            hours.add(ladder.hour_of(at))
            rows = int(fields["rows"])
            found.append(ladder.Point(tag=ladder.tag_name(at, rows), revision=c.commit_id, at=at, rows=rows))
        gone = set(ladder.expired(self._points + found, self.clock()))
        adopted = [p for p in found if p not in gone]
        for p in adopted:
            self._call(self.api.create_tag, self.repo_id, tag=p.tag, revision=p.revision, repo_type=REPO_TYPE,
                       exist_ok=True, write=True)
            self._points.append(p)
        if adopted:
            self._points.sort(key=lambda p: p.at)
            log.info("kept points adopted from main before a squash repo=%s points=%d", self.repo_id, len(adopted))

    def _squash(self, info: BackupManifest) -> None:
        """One commit for `main`, holding the newest backup; its title carries what history() and a
        restarted budget need (the backup's fields, and how many commits the last hour had)."""
        self._adopt_points()  # first: a squash must not take a point the ladder keeps
        before, used = self._main_commits, self.budget.used()
        self._call(self.api.super_squash_history, self.repo_id, repo_type=REPO_TYPE,
                   commit_message=f"Squashed {before} backups into the newest: rows={info.rows} "
                                  f"max_id={info.max_id} at={info.at} commits_last_hour={used}", write=True)
        self.budget.record()
        self._main_commits = 1
        head = self._call(self._head)
        if self._known is not None and head:
            self._known = self._known.placed(revision=head)
        log.info("squashed dataset history repo=%s commits_before=%d kept_points=%d", self.repo_id, before,
                 len(self._points))

    def history(self, *, every_commit: bool = False) -> list[BackupEntry]:
        """Every backup the dataset holds, newest first: `main`'s commits and the kept points (two
        requests). `every_commit`: also commits that are not the worker's (restore's walk-back
        tries those too: the head may be someone else's commit)."""
        commits = self._call(self.api.list_repo_commits, self.repo_id, repo_type=REPO_TYPE)
        entries = []
        for c in commits:
            fields = _fields(f"{c.title} {c.message or ''}")
            rows = int(fields["rows"]) if fields.get("rows", "").isdigit() else None
            at = fields.get("at") or utc.iso(c.created_at)
            if rows is None and not every_commit and not c.title.startswith(("Backup ", "Squashed ")):
                continue  # not a backup (e.g. the repo's initial commit)
            entries.append(BackupEntry(revision=c.commit_id, at=at, rows=rows, title=c.title))
        on_main = {e.revision: i for i, e in enumerate(entries)}
        for p in self.points():
            if p.revision in on_main:  # not squashed yet: the commit is on main too
                i = on_main[p.revision]
                entries[i] = replace(entries[i], tag=p.tag)
            else:
                entries.append(BackupEntry(revision=p.revision, at=p.at_iso, rows=p.rows, title=p.tag, tag=p.tag))
        entries.sort(key=lambda e: e.at, reverse=True)  # stable: same-second commits keep main's order
        return entries

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
