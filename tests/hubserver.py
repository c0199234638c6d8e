"""A small Hugging Face Hub-compatible HTTP server for the tests (standard library only).

The real ``huggingface_hub`` client (2.4.0) talks to it through ``endpoint=`` / ``HF_ENDPOINT``,
over real HTTP on 127.0.0.1. It serves dataset repos only, in memory: what the worker and the
tests use (create_repo, repo_info, preupload, commit, LFS upload, list_repo_commits,
super_squash_history, hf_hub_download), plus the generic read routes a reader of the dataset
uses (tree, paths-info, resolve). The requests and answers it emulates, and the client's
habits it relies on, are in tests/HUB_PROTOCOL.md.

Use::

    with HubServer(tokens={"tok-write": "alice"}, lfs_threshold=1_000_000) as srv:
        srv.endpoint          # "http://127.0.0.1:PORT"
        srv.fail_next(1, mode="503")   # fault injection: 503 | 429 | drop | 401 | drop_after
        srv.set_delay(2.0)             # slow commits and LFS PUTs
        srv.stats()                    # {"commit": 3, "preupload": 5, "lfs_put": 1, "total": 20, ...}
        srv.set_commit_quota(128, retry_after=True)   # the Hub's commits-per-hour limit per repo (429)

Time: ``HubServer(clock=...)`` (seconds since the epoch, ``time.time`` by default) dates the
commits and runs the commit quota's hour, so a test can drive a simulated year with a fake clock.

Refs behave as on the Hub: ``super_squash_history`` replaces ``main`` by one commit holding its
tree; tags (``create_tag``/``delete_tag``/``list_repo_refs``) are refs, cost no commit, and keep
the commits they point at (and their parents) readable after a squash, as another branch does
(huggingface_hub's own test ``test_super_squash_history_on_branch`` checks that against the Hub).
A commit no ref reaches any more is gone, as after the Hub's garbage collection.

Tokens: ``{"tok": "alice"}`` (write) or ``{"tok": ("alice", "read")}`` (read-only).
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "HubError", "git_blob_sha1", "lfs_pointer"]

# plural type in API paths -> (singular type, url prefix). Datasets only: the app backs up to one.
REPO_TYPES = {
    "datasets": ("dataset", "datasets/"),
}
SINGULAR_TO_PLURAL = {v[0]: k for k, v in REPO_TYPES.items()}
URL_PREFIX_TO_PLURAL = {v[1].rstrip("/"): k for k, v in REPO_TYPES.items() if v[1]}

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
FAIL_MODES = ("503", "429", "drop", "401", "drop_after", "card")
# What /api/validate-yaml accepts, like the Hub: the license ids it knows (a
# subset of the Hub's list) and its size buckets. Anything else is a 400 with
# {"errors": [{"message": ...}]}, which the client raises as ValueError.
CARD_LICENSES = frozenset((
    "unknown other cc0-1.0 cc-by-4.0 cc-by-sa-4.0 cc-by-nc-4.0 cc-by-nc-sa-4.0 cc-by-nd-4.0 cc-by-nc-nd-4.0 "
    "cc-by-3.0 cc-by-sa-3.0 odc-by odbl pddl apache-2.0 mit cdla-permissive-2.0 cdla-sharing-1.0 "
    "cdla-permissive-1.0 bsd-3-clause gpl-3.0 agpl-3.0 lgpl-3.0 mpl-2.0 openrail").split())
CARD_SIZES = frozenset(("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                        "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"))
GITATTRIBUTES = (
    b"*.7z filter=lfs diff=lfs merge=lfs -text\n"
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.zip filter=lfs diff=lfs merge=lfs -text\n"
)
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEXPREFIX = re.compile(r"^[0-9a-f]{7,40}$")


# --------------------------------------------------------------------------------------------------- helpers


def git_blob_sha1(data: bytes) -> str:
    """Git object id of a blob: sha1(b"blob <len>\\0" + data)."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Content of the git-lfs pointer file committed in place of an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iso(epoch: float) -> str:
    now = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _header_safe(text: str) -> str:
    text = " ".join(str(text).split())
    return text.encode("latin-1", "replace").decode("latin-1")[:1000]


class HubError(Exception):
    """An HTTP error answered by the server (status, message, X-Error-Code)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def _repo_not_found(repo_id: str) -> HubError:
    return HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")


# --------------------------------------------------------------------------------------------------- storage


class _BlobStore:
    """Content-addressed blobs (key = sha256 hex), in memory."""

    def __init__(self) -> None:
        self._mem: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self._mem[key] = data
        return key

    def has(self, key: str) -> bool:
        return key in self._mem

    def get(self, key: str) -> bytes:
        return self._mem[key]


def _file_entry(data: bytes, key: str, lfs: bool) -> dict:
    size = len(data)
    if lfs:
        pointer = lfs_pointer(key, size)
        return {"blob": key, "size": size, "lfs": True, "git_oid": git_blob_sha1(pointer), "pointer_size": len(pointer)}
    return {"blob": key, "size": size, "lfs": False, "git_oid": git_blob_sha1(data)}


def _commit_oid(parent: str | None, title: str, files: dict) -> str:
    h = hashlib.sha1()
    h.update(json.dumps([parent, title, sorted((p, e["git_oid"]) for p, e in files.items())]).encode())
    h.update(secrets.token_bytes(16))  # unique even for identical trees (like a new timestamp would be)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, hub: "HubServer"):
        self.hub = hub
        self.open_sockets: set = set()
        self.sockets_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self):
        with self.sockets_lock:
            socks = list(self.open_sockets)
            self.open_sockets.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # keep stderr quiet
        pass


class HubServer:
    """In-process Hub-compatible server. See module docstring."""

    def __init__(
        self,
        tokens: dict | None = None,
        lfs_threshold: int = 10_000_000,
        host: str = "127.0.0.1",
        port: int = 0,
        commits_page_size: int = 1000,
        xet_cas: str | os.PathLike | None = None,
        clock=time.time,
    ):
        self.clock = clock
        # The Hub's commit limit per repository: None = none; else (commits per hour, send Retry-After).
        self._commit_quota: tuple[int, bool] | None = None
        self.quota_refusals = 0  # commits refused with 429 by the quota
        self.tokens: dict[str, tuple[str, str]] = {}
        for tok, spec in (tokens or {}).items():
            self.add_token(tok, *(spec if isinstance(spec, (tuple, list)) else (spec,)))
        self.lfs_threshold = int(lfs_threshold)
        self.host = host
        self.port = int(port)
        self.commits_page_size = int(commits_page_size)
        # A folder: the Xet token route hands the client this local CAS (`local://DIR`), so that
        # the client's own upload path (hf_xet) runs. Files it stores there are kept in the CAS
        # only: a commit names them by sha256, which the CAS cannot be asked about from Python,
        # so this server cannot serve their bytes back (resolve answers 501 for them).
        self.xet_cas = os.fspath(xet_cas) if xet_cas is not None else None
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status); status 0 = connection dropped

        self._lock = threading.RLock()
        self._ctl_lock = threading.Lock()
        self._repos: dict[str, dict] = {}  # key "datasets/ns/name"
        self._lfs_objects: dict[str, int] = {}  # sha256 -> size (objects uploaded through LFS)
        self._tickets: dict[str, dict] = {}  # one-time LFS upload tickets
        self._fail_count = 0
        self._fail_mode = "503"
        self._fail_retry_after: int | None = None
        self._fail_only: set[str] | None = None
        self._delay = 0.0
        self._stats: dict[str, int] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._blobs = _BlobStore()

    # ------------------------------------------------------------------ lifecycle

    def add_token(self, token: str, user: str, access: str = "write") -> None:
        if access not in ("read", "write"):
            raise ValueError("access must be 'read' or 'write'")
        self.tokens[token] = (user, access)

    def start(self) -> "HubServer":
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"HubServer:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_open_sockets()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ test controls

    def fail_next(self, n: int, mode: str = "503", retry_after: int | None = None, only=None) -> None:
        """Make the next ``n`` non-/_test/ requests fail.

        mode: "503" (503 + X-Error-Message), "429" (Retry-After: retry_after or 1), "drop" (close the
        connection without answering, the request is NOT processed), "401" (invalid credentials),
        "drop_after" (the request IS processed, e.g. the commit is applied, then the connection is closed
        without an answer: a lost response). ``only``: a request kind or a list of kinds (see ``stats()``)
        to restrict which requests fail, e.g. ``only="commit"``.
        """
        mode = str(mode)
        if mode not in FAIL_MODES:
            raise ValueError(f"mode must be one of {FAIL_MODES}")
        if isinstance(only, str):
            only = [only]
        with self._ctl_lock:
            self._fail_count = max(0, int(n))
            self._fail_mode = mode
            self._fail_retry_after = None if retry_after is None else int(retry_after)
            self._fail_only = set(only) if only else None

    def set_commit_quota(self, per_hour: int | None, *, retry_after: bool = True) -> None:
        """Refuse a commit (429) when the repo already has ``per_hour`` commits in the last hour of
        ``clock``, as the Hub does (about 128 an hour). ``retry_after``: send ``Retry-After`` (the
        seconds until the oldest of those leaves the hour) or not. A super-squash is a commit too.
        ``None``: no quota."""
        with self._ctl_lock:
            self._commit_quota = None if per_hour is None else (int(per_hour), bool(retry_after))

    def set_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` in each commit and LFS PUT request (to make pushes slow)."""
        with self._ctl_lock:
            self._delay = max(0.0, float(seconds))

    def stats(self) -> dict:
        """Counts of non-/_test/ requests by kind, plus "total" and "injected_failures".

        Kinds: create_repo, validate_yaml, repo_info,
        preupload, commit, commits, tree, paths_info, super_squash, refs, create_tag, delete_tag,
        lfs_batch, lfs_put, lfs_verify, resolve_head, resolve_get, other. A kind appears only once it has been requested.
        """
        with self._ctl_lock:
            out = dict(self._stats)
        out.setdefault("total", 0)
        return out

    def reset_stats(self) -> None:
        with self._ctl_lock:
            self._stats = {}
            self.requests.clear()

    def pending_failures(self) -> int:
        with self._ctl_lock:
            return self._fail_count

    # ------------------------------------------------------------------ state inspection helpers (for tests)

    def repo_exists(self, repo_id: str, repo_type: str = "dataset") -> bool:
        with self._lock:
            return self._key(repo_type, repo_id) in self._repos

    def list_commits(self, repo_id: str, repo_type: str = "dataset") -> list[dict]:
        """Commits of ``main``, newest first: dicts with oid, title, message, date, author, files (path list)."""
        with self._lock:
            repo = self._repos.get(self._key(repo_type, repo_id))
            if repo is None:
                raise KeyError(repo_id)
            return [
                {k: c[k] for k in ("oid", "title", "message", "date", "author")} | {"files": sorted(c["files"])}
                for c in reversed(repo["commits"])
            ]

    def read_file(self, repo_id: str, path: str, repo_type: str = "dataset", revision: str = "main") -> bytes:
        with self._lock:
            repo = self._repos.get(self._key(repo_type, repo_id))
            if repo is None:
                raise KeyError(repo_id)
            commit = self._resolve_rev(repo, revision)
            entry = commit["files"][path]
        return self._blobs.get(entry["blob"])

    def is_private(self, repo_id: str, repo_type: str = "dataset") -> bool:
        with self._lock:
            return bool(self._repos[self._key(repo_type, repo_id)]["private"])

    # ------------------------------------------------------------------ model helpers

    def _now_iso(self) -> str:
        return _iso(self.clock())

    def list_tags(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        """Tag name -> commit oid."""
        with self._lock:
            return dict(self._repos[self._key(repo_type, repo_id)]["tags"])

    def commit_times(self, repo_id: str, repo_type: str = "dataset") -> list[float]:
        """When each commit (squash commits included) was made, by ``clock``, oldest first; also
        the commits a squash removed from ``main``: what the quota counted."""
        with self._lock:
            return list(self._repos[self._key(repo_type, repo_id)]["commit_times"])

    @staticmethod
    def _ancestry(repo: dict, commit: dict) -> list[dict]:
        """``commit`` and its parents, newest first."""
        out = []
        while commit is not None:
            out.append(commit)
            commit = repo["objects"].get(commit.get("parent"))
        return out

    @staticmethod
    def _add_commit(repo: dict, commit: dict) -> None:
        repo["objects"][commit["oid"]] = commit

    def _collect_garbage(self, repo: dict) -> None:
        """Forget commits no ref reaches (main's history, or a tag's commit and its parents)."""
        live = {c["oid"] for c in repo["commits"]}
        for oid in repo["tags"].values():
            live |= {c["oid"] for c in self._ancestry(repo, repo["objects"][oid])}
        repo["objects"] = {oid: c for oid, c in repo["objects"].items() if oid in live}

    def _check_commit_quota(self, repo: dict) -> None:
        with self._ctl_lock:
            quota = self._commit_quota
        if quota is None:
            return
        per_hour, send_retry_after = quota
        now = self.clock()
        recent = [t for t in repo["commit_times"] if now - t < 3600]
        if len(recent) >= per_hour:
            self.quota_refusals += 1
            headers = {"Retry-After": str(max(1, int(min(recent) + 3600 - now + 0.999)))} if send_retry_after else {}
            raise HubError(429, f"You have exceeded the rate limit for repository commits ({per_hour} per hour). "
                                "Please wait before committing again.", headers=headers)

    @staticmethod
    def _key(repo_type: str, repo_id: str) -> str:
        plural = repo_type if repo_type in REPO_TYPES else SINGULAR_TO_PLURAL.get(repo_type or "dataset")
        if plural is None:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        return f"{plural}/{repo_id}"

    def _repo_url(self, repo: dict) -> str:
        return f"{self.endpoint}/{REPO_TYPES[repo['type']][1]}{repo['id']}"

    @staticmethod
    def _resolve_rev(repo: dict, rev: str) -> dict:
        rev = rev or "main"  # already URL-unquoted
        if rev in ("main", "refs/heads/main", "HEAD"):
            return repo["commits"][-1]
        tag = rev.removeprefix("refs/tags/")
        if tag in repo["tags"]:
            return repo["objects"][repo["tags"][tag]]
        if _HEXPREFIX.match(rev):
            found = [c for oid, c in repo["objects"].items() if oid.startswith(rev)]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    @staticmethod
    def _require_branch(rev: str) -> None:
        if (rev or "main") not in ("main", "refs/heads/main"):
            raise HubError(404, f"Invalid rev id: {rev} (only branch 'main' can be written)", "RevisionNotFound")

    def _new_repo(self, plural: str, repo_id: str, owner: str, private: bool) -> dict:
        key = self._blobs.put(GITATTRIBUTES)
        files = {".gitattributes": _file_entry(GITATTRIBUTES, key, False)}
        now = self._now_iso()
        commit = {
            "oid": _commit_oid(None, "initial commit", files),
            "parent": None,
            "title": "initial commit",
            "message": "",
            "date": now,
            "author": owner,
            "files": files,
        }
        return {
            "objects": {commit["oid"]: commit},  # every commit some ref reaches, by oid
            "tags": {},  # name -> oid
            "commit_times": [self.clock()],
            "type": plural,
            "id": repo_id,
            "private": private,
            "owner": owner,
            "created_at": now,
            "gated": False,
            "commits": [commit],
            "_uid": secrets.token_hex(12),
        }

    # ------------------------------------------------------------------ auth

    def _auth(self, headers) -> tuple[str, str] | None:
        """(user, access) for a valid token, None if no token; raises 401 for an unknown token."""
        value = headers.get("Authorization")
        if not value:
            return None
        parts = value.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise HubError(401, INVALID_CREDENTIALS)
        ident = self.tokens.get(parts[1].strip())
        if ident is None:
            raise HubError(401, INVALID_CREDENTIALS)
        return ident

    @staticmethod
    def _can_read(repo: dict, ident) -> bool:
        return not repo["private"] or (ident is not None and ident[0] == repo["owner"])

    def _get_repo_for_read(self, plural: str, repo_id: str, ident) -> dict:
        repo = self._repos.get(f"{plural}/{repo_id}")
        if repo is None or not self._can_read(repo, ident):
            raise _repo_not_found(repo_id)
        return repo

    def _get_repo_for_write(self, plural: str, repo_id: str, ident) -> dict:
        repo = self._repos.get(f"{plural}/{repo_id}")
        if repo is None or not self._can_read(repo, ident):
            if ident is None:
                raise HubError(401, "You must be authenticated to access this resource")
            raise _repo_not_found(repo_id)
        self._check_write(repo_id.split("/")[0], ident)
        return repo

    @staticmethod
    def _check_write(namespace: str, ident) -> None:
        if ident is None:
            raise HubError(401, "You must be authenticated to perform this action")
        user, access = ident
        if access != "write":
            raise HubError(403, "This token is read-only: write access is required for this action")
        if user != namespace:
            raise HubError(403, f"You don't have the rights to write in the namespace '{namespace}'")


# --------------------------------------------------------------------------------------------------- handler


def _kind(method: str, segs: list[str]) -> str:
    """Classify a request for stats / fault filtering."""
    if not segs:
        return "other"
    if segs[0] == "api":
        if segs[1:3] == ["repos", "create"]:
            return "create_repo"
        if segs[1:2] == ["validate-yaml"]:
            return "validate_yaml"
        if len(segs) >= 4 and segs[1] in REPO_TYPES:
            if len(segs) == 4:
                return "repo_info"
            action = segs[4]
            return {
                "revision": "repo_info",
                "preupload": "preupload",
                "commit": "commit",
                "commits": "commits",
                "tree": "tree",
                "paths-info": "paths_info",
                "super-squash": "super_squash",
                "refs": "refs",
                "tag": "delete_tag" if method == "DELETE" else "create_tag",
                "xet-write-token": "xet_write_token",
            }.get(action, "other")
        return "other"
    if segs[0] == "lfs-upload":
        return "lfs_put"
    if len(segs) >= 2 and segs[-2:] == ["objects", "batch"]:
        return "lfs_batch"
    if len(segs) >= 2 and segs[-2:] == ["objects", "verify"]:
        return "lfs_verify"
    if "resolve" in segs[:4]:
        return "resolve_head" if method == "HEAD" else "resolve_get"
    return "other"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubTestServer/1.0"
    disable_nagle_algorithm = True  # avoid 40 ms Nagle/delayed-ACK stalls on keep-alive connections
    timeout = 120  # idle keep-alive connections

    # quiet logging; requests are recorded in hub.requests
    def log_message(self, format, *args):
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if getattr(self, "_body", None) is not None:
            return self._body
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        self._body = body
        return body

    def _json_body(self):
        raw = self._read_body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise HubError(400, "Invalid JSON body")

    def _log(self, status: int) -> None:
        """Record (method, path, status) once, *before* the answer reaches the client (no race in tests)."""
        if self._logged:
            return
        self._logged = True
        hub = self.hub
        with hub._ctl_lock:
            hub.requests.append((self.command, self.path.split("?", 1)[0], status))
            if len(hub.requests) > 10000:
                del hub.requests[:5000]

    def _send(self, status: int, body=b"", headers: dict | None = None, content_type: str | None = None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json; charset=utf-8"
        elif isinstance(body, str):
            body = body.encode()
        if self._body is None:  # always consume the request body: keeps keep-alive connections in sync
            self._read_body()
        if self._drop_response:  # fault "drop_after": the request was processed, the answer is lost
            self._drop()
            return
        self._log(status)
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        hdrs = dict(headers or {})
        if "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_error(self, err: HubError):
        headers = {"X-Error-Message": _header_safe(err.message)}
        if err.code:
            headers["X-Error-Code"] = err.code
        headers.update(err.headers)
        self._send(err.status, {"error": err.message}, headers)

    def _drop(self):
        """Close the connection without any answer."""
        try:
            self._read_body()
        except Exception:  # noqa: BLE001 - closing without an answer whatever the body was
            pass
        self._log(0)
        self.close_connection = True
        try:
            self.wfile.flush()
        except Exception:  # noqa: BLE001 - the client may be gone already
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str):
        self._body = None
        self._logged = False
        self._drop_response = False
        split = urlsplit(self.path)
        raw_segs = [s for s in split.path.split("/") if s != ""]
        segs = [unquote(s) for s in raw_segs]
        self.query = {k: v for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        hub = self.hub
        try:
            kind = _kind(method, segs)
            with hub._ctl_lock:
                hub._stats[kind] = hub._stats.get(kind, 0) + 1
                hub._stats["total"] = hub._stats.get("total", 0) + 1
                fail = None
                if hub._fail_count > 0 and (hub._fail_only is None or kind in hub._fail_only):
                    hub._fail_count -= 1
                    hub._stats["injected_failures"] = hub._stats.get("injected_failures", 0) + 1
                    fail = (hub._fail_mode, hub._fail_retry_after)
                delay = hub._delay if kind in ("commit", "lfs_put") else 0.0
            if fail is not None and fail[0] != "drop_after":
                self._inject(*fail)
                return
            self._drop_response = fail is not None
            if delay:
                time.sleep(delay)
            self._route(method, segs, raw_segs)
        except HubError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - never let a handler crash without an answer
            try:
                self._send_error(HubError(500, f"Internal server error: {type(exc).__name__}: {exc}"))
            except Exception:  # noqa: BLE001 - the answer itself failed: drop the connection
                self.close_connection = True
        finally:
            self._log(0)  # only if nothing was recorded (connection lost before an answer)

    def _inject(self, mode: str, retry_after):
        if mode == "drop":
            self._drop()
            return
        self._read_body()
        if mode == "429":
            ra = 1 if retry_after is None else retry_after
            raise HubError(429, "Too Many Requests (injected)", headers={"Retry-After": str(ra)})
        if mode == "401":
            raise HubError(401, INVALID_CREDENTIALS)
        if mode == "card":  # the Hub refuses a README.md's metadata (meant for only="validate_yaml")
            return self._send(400, {"errors": [{"message": "injected: the card's metadata is invalid"}],
                                    "warnings": []})
        raise HubError(503, "Service Unavailable (injected)")

    # ------------------------------------------------------------------ routing

    def _route(self, method: str, segs: list[str], raw_segs: list[str]):
        hub = self.hub
        # The LFS PUT is authorised by its ticket only (the client sends no Authorization header).
        if segs and segs[0] == "lfs-upload" and len(segs) == 2 and method == "PUT":
            return self._lfs_put(segs[1])
        ident = hub._auth(self.headers)
        n = len(segs)
        if n >= 1 and segs[0] == "api":
            if n == 2 and segs[1] == "validate-yaml" and method == "POST":
                return self._validate_yaml()
            if n == 3 and segs[1] == "repos" and segs[2] == "create" and method == "POST":
                return self._create_repo(ident)
            if n >= 4 and segs[1] in REPO_TYPES:
                plural, repo_id = segs[1], f"{segs[2]}/{segs[3]}"
                rest = segs[4:]
                if not rest and method == "GET":
                    return self._repo_info(plural, repo_id, ident, "main")
                action = rest[0] if rest else ""
                rev = rest[1] if len(rest) > 1 else "main"
                if action == "revision" and len(rest) == 2 and method == "GET":
                    return self._repo_info(plural, repo_id, ident, rev)
                if action == "preupload" and len(rest) == 2 and method == "POST":
                    return self._preupload(plural, repo_id, ident, rev)
                if action == "commit" and len(rest) == 2 and method == "POST":
                    return self._commit(plural, repo_id, ident, rev)
                if action == "commits" and len(rest) in (1, 2) and method == "GET":
                    return self._commits(plural, repo_id, ident, rev)
                if action == "tree" and len(rest) >= 1 and method == "GET":
                    return self._tree(plural, repo_id, ident, rev, "/".join(rest[2:]))
                if action == "xet-write-token" and len(rest) == 2 and method == "GET" and hub.xet_cas:
                    hub._get_repo_for_write(plural, repo_id, ident)
                    return self._send(200, {"accessToken": "xet-local", "exp": int(time.time()) + 3600,
                                            "casUrl": f"local://{hub.xet_cas}"})
                if action == "paths-info" and len(rest) == 2 and method == "POST":
                    return self._paths_info(plural, repo_id, ident, rev)
                if action == "super-squash" and len(rest) == 2 and method == "POST":
                    return self._super_squash(plural, repo_id, ident, rev)
                if action == "refs" and len(rest) == 1 and method == "GET":
                    return self._refs(plural, repo_id, ident)
                if action == "tag" and len(rest) == 2 and method == "POST":
                    return self._create_tag(plural, repo_id, ident, rev)
                if action == "tag" and len(rest) == 2 and method == "DELETE":
                    return self._delete_tag(plural, repo_id, ident, rev)
            raise HubError(404, f"Not found: {method} {self.path.split('?')[0]}")
        # /{P}{ns}/{name}.git/info/lfs/objects/{batch|verify}
        if not segs or segs[0] not in URL_PREFIX_TO_PLURAL:
            raise HubError(404, f"Not found: {method} {self.path.split('?')[0]} (this server serves datasets only)")
        plural, s = URL_PREFIX_TO_PLURAL[segs[0]], segs[1:]
        if len(s) == 6 and s[1].endswith(".git") and s[2:5] == ["info", "lfs", "objects"] and method == "POST":
            repo_id = f"{s[0]}/{s[1][:-4]}"
            if s[5] == "batch":
                return self._lfs_batch(plural, repo_id, ident)
            if s[5] == "verify":
                return self._lfs_verify(plural, repo_id, ident)
        # /{P}{ns}/{name}/resolve/{rev}/{path}
        if len(s) >= 5 and s[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(plural, f"{s[0]}/{s[1]}", ident, s[3], "/".join(s[4:]))
        raise HubError(404, f"Not found: {method} {self.path.split('?')[0]}")

    # ------------------------------------------------------------------ endpoints

    def _validate_yaml(self):
        """The card check the client makes before a commit with a README.md."""
        import yaml

        content = str((self._json_body() or {}).get("content") or "")
        errors = []
        if content.startswith("---"):
            block = content[3:].split("\n---", 1)[0]
            try:
                meta = yaml.safe_load(block)
            except yaml.YAMLError as exc:
                meta = None
                errors.append(f"Invalid YAML in README.md metadata: {' '.join(str(exc).split())}")
            if meta is not None and not isinstance(meta, dict):
                errors.append("README.md metadata must be a YAML mapping")
            elif isinstance(meta, dict):
                lic = meta.get("license")
                for value in (lic if isinstance(lic, list) else [lic] if lic is not None else []):
                    if value not in CARD_LICENSES:
                        errors.append(f'"license" must be one of the Hub\'s license identifiers, got {value!r}')
                sizes = meta.get("size_categories")
                if sizes is not None and (not isinstance(sizes, list) or not set(sizes) <= CARD_SIZES):
                    errors.append(f'"size_categories" must be a list of {sorted(CARD_SIZES)}, got {sizes!r}')
                configs = meta.get("configs")
                if configs is not None and not (isinstance(configs, list) and all(
                        isinstance(c, dict) and "config_name" in c for c in configs)):
                    errors.append('"configs" must be a list of mappings with a "config_name"')
        if errors:
            return self._send(400, {"errors": [{"message": e} for e in errors], "warnings": []})
        return self._send(200, {"errors": [], "warnings": []})

    def _create_repo(self, ident):
        hub = self.hub
        data = self._json_body()
        name = data.get("name")
        if not name or not isinstance(name, str) or "/" in name:
            raise HubError(400, "Invalid repo name")
        if ident is None:
            raise HubError(401, "You must be authenticated to create a repo")
        ns = data.get("organization") or ident[0]
        repo_type = data.get("type") or "model"  # the client's default; refused below: datasets only
        plural = SINGULAR_TO_PLURAL.get(repo_type)
        if plural is None:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if "visibility" in data:
            private = data["visibility"] == "private"
        else:
            private = bool(data.get("private", False))
        repo_id = f"{ns}/{name}"
        hub._check_write(ns, ident)
        with hub._lock:
            key = f"{plural}/{repo_id}"
            if key in hub._repos:
                repo = hub._repos[key]
                return self._send(
                    409,
                    {"error": f"You already created this {repo_type} repo", "url": hub._repo_url(repo)},
                    {"X-Error-Message": f"You already created this {repo_type} repo"},
                )
            repo = hub._new_repo(plural, repo_id, ns, private)
            hub._repos[key] = repo
            url = hub._repo_url(repo)
        self._send(200, {"url": url, "name": repo_id, "id": repo["_uid"]})

    def _repo_info(self, plural, repo_id, ident, rev):
        hub = self.hub
        blobs = (self.query.get("blobs") or ["false"])[-1].lower() in ("1", "true")
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            siblings = []
            for path in sorted(commit["files"]):
                e = commit["files"][path]
                sib: dict = {"rfilename": path}
                if blobs:
                    sib["size"] = e["size"]
                    sib["blobId"] = e["git_oid"]
                    if e["lfs"]:
                        sib["lfs"] = {"size": e["size"], "sha256": e["blob"], "pointerSize": e["pointer_size"]}
                siblings.append(sib)
            info = {
                "_id": repo["_uid"],
                "id": repo_id,
                "author": repo["owner"],
                "sha": commit["oid"],
                "lastModified": commit["date"],
                "createdAt": repo["created_at"],
                "private": repo["private"],
                "gated": repo["gated"],
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        self._send(200, info)

    def _preupload(self, plural, repo_id, ident, rev):
        hub = self.hub
        data = self._json_body()
        files = data.get("files")
        if not isinstance(files, list):
            raise HubError(400, "Invalid preupload payload: 'files' must be a list")
        if self.query.get("create_pr"):
            raise HubError(400, "Pull requests are not supported by this test server")
        with hub._lock:
            repo = hub._get_repo_for_write(plural, repo_id, ident)
            hub._require_branch(rev)
            head = hub._resolve_rev(repo, rev)
            out = []
            for f in files:
                path, size = f.get("path"), f.get("size")
                if not isinstance(path, str) or not isinstance(size, int):
                    raise HubError(400, "Invalid preupload payload: each file needs 'path' and 'size'")
                entry = head["files"].get(path)
                oid = None
                if entry is not None:
                    oid = entry["blob"] if entry["lfs"] else entry["git_oid"]
                out.append(
                    {
                        "path": path,
                        "uploadMode": "lfs" if size >= hub.lfs_threshold else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
        self._send(200, {"files": out, "commitOid": head["oid"]})

    @staticmethod
    def _check_path(path) -> str:
        if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
            raise HubError(400, f"Invalid path in repo: {path!r}")
        if any(p in ("", ".", "..") for p in path.split("/")) or path.startswith(".git/"):
            raise HubError(400, f"Invalid path in repo: {path!r}")
        return path

    def _commit(self, plural, repo_id, ident, rev):
        hub = self.hub
        raw = self._read_body()
        if self.query.get("create_pr"):
            raise HubError(400, "Pull requests are not supported by this test server")
        try:
            items = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "Invalid NDJSON commit payload")
        if not items or items[0].get("key") != "header":
            raise HubError(400, "Commit payload must start with a header line")
        header = items[0].get("value") or {}
        title = header.get("summary")
        if not title:
            raise HubError(400, "Commit summary (title) is required")
        description = header.get("description") or ""
        parent = header.get("parentCommit")
        # decode file contents outside the lock
        ops = []
        for item in items[1:]:
            key, value = item.get("key"), item.get("value") or {}
            if key == "file":
                path = self._check_path(value.get("path"))
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, "Only base64 encoding is supported")
                try:
                    content = base64.b64decode(value.get("content", ""), validate=True)
                except ValueError:
                    raise HubError(400, f"Invalid base64 content for {path}")
                ops.append(("file", path, content))
            elif key == "lfsFile":
                path = self._check_path(value.get("path"))
                oid = str(value.get("oid", ""))
                if value.get("algo", "sha256") != "sha256" or not _HEX64.match(oid):
                    raise HubError(400, f"Invalid LFS pointer for {path}")
                ops.append(("lfsFile", path, (oid, value.get("size"))))
            elif key in ("deletedFile", "deletedFolder"):
                path = str(value.get("path", "")).strip("/")
                if not path:
                    raise HubError(400, "Invalid path to delete")
                ops.append((key, path, None))
            else:
                raise HubError(400, f"Unsupported commit operation: {key!r}")
        blob_keys = {}
        for kind, path, content in ops:
            if kind == "file":
                blob_keys[id(content)] = hub._blobs.put(content)
        with hub._lock:
            repo = hub._get_repo_for_write(plural, repo_id, ident)
            hub._require_branch(rev)
            head = repo["commits"][-1]
            if parent is not None and parent != head["oid"]:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = copy.deepcopy(head["files"])
            for kind, path, content in ops:
                if kind == "file":
                    files[path] = _file_entry(content, blob_keys[id(content)], False)
                elif kind == "lfsFile":
                    oid, size = content
                    stored = hub._lfs_objects.get(oid)
                    if stored is None and hub.xet_cas and size is not None:
                        stored = hub._lfs_objects[oid] = int(size)  # uploaded through Xet, to the CAS
                    if stored is None or not (hub._blobs.has(oid) or hub.xet_cas):
                        raise HubError(400, f"LFS object {oid} for {path} was never uploaded (missing LFS file)")
                    if size is not None and int(size) != stored:
                        raise HubError(400, f"LFS object {oid} has size {stored}, not {size}")
                    pointer = lfs_pointer(oid, stored)
                    files[path] = {
                        "blob": oid,
                        "size": stored,
                        "lfs": True,
                        "git_oid": git_blob_sha1(pointer),
                        "pointer_size": len(pointer),
                    }
                elif kind == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                else:  # deletedFolder
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
            hub._check_commit_quota(repo)
            commit = {
                "oid": _commit_oid(head["oid"], title, files),
                "parent": head["oid"],
                "title": title,
                "message": description,
                "date": hub._now_iso(),
                "author": ident[0],
                "files": files,
            }
            repo["commits"].append(commit)
            hub._add_commit(repo, commit)
            repo["commit_times"].append(hub.clock())
            url = f"{hub._repo_url(repo)}/commit/{commit['oid']}"
        self._send(200, {"success": True, "commitOid": commit["oid"], "commitUrl": url, "pullRequestUrl": None})

    def _commits(self, plural, repo_id, ident, rev):
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            history = hub._ancestry(repo, commit)
        try:
            page = int((self.query.get("p") or ["0"])[-1])
            limit = int((self.query.get("limit") or [str(hub.commits_page_size)])[-1])
        except ValueError:
            raise HubError(400, "Invalid pagination parameters")
        limit = max(1, limit)
        chunk = history[page * limit : (page + 1) * limit]
        items = [
            {
                "id": c["oid"],
                "title": c["title"],
                "message": c["message"],
                "date": c["date"],
                "authors": [{"user": c["author"], "avatar": None}],
            }
            for c in chunk
        ]
        headers = {"X-Total-Count": str(len(history))}
        if (page + 1) * limit < len(history):
            base = self.path.split("?")[0]
            headers["Link"] = f'<{hub.endpoint}{base}?p={page + 1}&limit={limit}>; rel="next"'
        self._send(200, items, headers)

    @staticmethod
    def _dirs(files: dict) -> dict[str, list[str]]:
        """directory path -> list of file paths below it (recursively)."""
        dirs: dict[str, list[str]] = {}
        for p in files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.setdefault("/".join(parts[:i]), []).append(p)
        return dirs

    @staticmethod
    def _tree_oid(files: dict, paths: list[str]) -> str:
        return hashlib.sha1(json.dumps(sorted((p, files[p]["git_oid"]) for p in paths)).encode()).hexdigest()

    def _last_commit(self, repo, commit, path, is_dir):
        commits = list(reversed(self.hub._ancestry(repo, commit)))
        idx = len(commits) - 1

        def sig(c):
            if is_dir:
                return sorted((p, e["git_oid"]) for p, e in c["files"].items() if p.startswith(path + "/"))
            e = c["files"].get(path)
            return e and e["git_oid"]

        cur = sig(commits[idx])
        last = commits[idx]
        for j in range(idx - 1, -1, -1):
            if sig(commits[j]) != cur:
                break
            last = commits[j]
        return {"id": last["oid"], "title": last["title"], "date": last["date"]}

    def _item(self, repo, commit, path, dirs, expand):
        files = commit["files"]
        if path in files:
            e = files[path]
            item = {"type": "file", "oid": e["git_oid"], "size": e["size"], "path": path}
            if e["lfs"]:
                item["lfs"] = {"oid": e["blob"], "size": e["size"], "pointerSize": e["pointer_size"]}
        else:
            item = {"type": "directory", "oid": self._tree_oid(files, dirs[path]), "size": 0, "path": path}
        if expand:
            item["lastCommit"] = self._last_commit(repo, commit, path, item["type"] == "directory")
        return item

    @staticmethod
    def _flag(values, default=False) -> bool:
        if not values:
            return default
        return values[-1].lower() in ("1", "true", "yes")

    def _tree(self, plural, repo_id, ident, rev, path):
        hub = self.hub
        recursive = self._flag(self.query.get("recursive"))
        expand = self._flag(self.query.get("expand"))
        path = path.strip("/")
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            files = commit["files"]
            dirs = self._dirs(files)
            if path and path not in dirs:
                raise HubError(404, f"Directory not found: {path}", "EntryNotFound")
            prefix = path + "/" if path else ""
            entries = set()
            for p in files:
                if not p.startswith(prefix):
                    continue
                rel = p[len(prefix) :].split("/")
                if recursive:
                    for i in range(1, len(rel)):
                        entries.add(prefix + "/".join(rel[:i]))
                    entries.add(p)
                else:
                    entries.add(prefix + rel[0])
            items = [self._item(repo, commit, p, dirs, expand) for p in sorted(entries)]
        self._send(200, items)

    def _paths_info(self, plural, repo_id, ident, rev):
        hub = self.hub
        raw = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            data = json.loads(raw or b"{}")
            paths = data.get("paths") or []
            expand = bool(data.get("expand"))
        else:
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = self._flag(form.get("expand"))
        if isinstance(paths, str):
            paths = [paths]
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            dirs = self._dirs(commit["files"])
            items = []
            for p in paths:
                p = str(p).strip("/")
                if p in commit["files"] or p in dirs:
                    items.append(self._item(repo, commit, p, dirs, expand))
        self._send(200, items)

    def _super_squash(self, plural, repo_id, ident, branch):
        hub = self.hub
        data = self._json_body()
        with hub._lock:
            repo = hub._get_repo_for_write(plural, repo_id, ident)
            hub._require_branch(branch)
            head = repo["commits"][-1]
            message = data.get("message") or "Super-squash"
            hub._check_commit_quota(repo)
            title, _, body = message.partition("\n")
            commit = {
                "oid": _commit_oid(None, message, head["files"]),
                "parent": None,
                "title": title,
                "message": body.strip(),
                "date": hub._now_iso(),
                "author": ident[0],
                "files": copy.deepcopy(head["files"]),
            }
            repo["commits"] = [commit]
            hub._add_commit(repo, commit)
            repo["commit_times"].append(hub.clock())
            hub._collect_garbage(repo)  # what only main reached is gone; what a tag reaches stays
        self._send(200, {"commitOid": commit["oid"]})

    # ------------------------------------------------------------------ refs

    def _refs(self, plural, repo_id, ident):
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            data = {
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo["commits"][-1]["oid"]}],
                "converts": [],
                "tags": [{"name": name, "ref": f"refs/tags/{name}", "targetCommit": oid}
                         for name, oid in sorted(repo["tags"].items())],
                "pullRequests": [],
            }
        self._send(200, data)

    _TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

    def _create_tag(self, plural, repo_id, ident, rev):
        """A tag is a ref, not a commit: it costs no commit and does not count in the commit quota."""
        hub = self.hub
        data = self._json_body()
        name = data.get("tag")
        if not isinstance(name, str) or not self._TAG_NAME.match(name):
            raise HubError(400, f"Invalid tag name: {name!r}")
        with hub._lock:
            repo = hub._get_repo_for_write(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            if name in repo["tags"]:
                raise HubError(409, f"Tag {name} already exists")
            repo["tags"][name] = commit["oid"]
        self._send(200, {"success": True})

    def _delete_tag(self, plural, repo_id, ident, name):
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo_for_write(plural, repo_id, ident)
            if name not in repo["tags"]:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            del repo["tags"][name]
            hub._collect_garbage(repo)
        self._send(200, {"success": True})

    # ------------------------------------------------------------------ LFS

    def _lfs_batch(self, plural, repo_id, ident):
        hub = self.hub
        data = self._json_body()
        operation = data.get("operation", "upload")
        objects = data.get("objects")
        if not isinstance(objects, list):
            raise HubError(400, "Invalid LFS batch payload")
        out = []
        with hub._lock:
            if operation == "upload":
                repo = hub._get_repo_for_write(plural, repo_id, ident)
            else:
                raise HubError(400, f"Unsupported LFS operation: {operation}")
            repo_url = hub._repo_url(repo)
            for obj in objects:
                oid, size = obj.get("oid"), obj.get("size")
                if not isinstance(oid, str) or not _HEX64.match(oid) or not isinstance(size, int) or size < 0:
                    out.append(
                        {"oid": str(oid), "size": size if isinstance(size, int) else 0,
                         "error": {"code": 422, "message": "Invalid oid or size"}}
                    )
                    continue
                stored = hub._lfs_objects.get(oid) == size and hub._blobs.has(oid)
                if stored:
                    out.append({"oid": oid, "size": size})
                    continue
                ticket = secrets.token_urlsafe(24)
                hub._tickets[ticket] = {"oid": oid, "size": size, "repo": f"{plural}/{repo_id}"}
                out.append(
                    {
                        "oid": oid,
                        "size": size,
                        "authenticated": True,
                        "actions": {
                            "upload": {"href": f"{hub.endpoint}/lfs-upload/{ticket}", "expires_in": 3600},
                            "verify": {"href": f"{repo_url}.git/info/lfs/objects/verify", "expires_in": 3600},
                        },
                    }
                )
        self._send(200, {"transfer": "basic", "objects": out, "hash_algo": "sha256"},
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, ticket):
        hub = self.hub
        body = self._read_body()
        with hub._lock:
            info = hub._tickets.get(ticket)
        if info is None:
            raise HubError(403, "Invalid or already used LFS upload ticket")
        if len(body) != info["size"]:
            raise HubError(400, f"Size mismatch: expected {info['size']} bytes, got {len(body)}")
        if hashlib.sha256(body).hexdigest() != info["oid"]:
            raise HubError(400, "sha256 mismatch: uploaded content does not match the announced oid")
        hub._blobs.put(body)
        with hub._lock:
            hub._lfs_objects[info["oid"]] = info["size"]
            hub._tickets.pop(ticket, None)
        self._send(200, b"")

    def _lfs_verify(self, plural, repo_id, ident):
        hub = self.hub
        data = self._json_body()
        with hub._lock:
            hub._get_repo_for_read(plural, repo_id, ident)
            oid, size = data.get("oid"), data.get("size")
            if hub._lfs_objects.get(oid) != size or not hub._blobs.has(str(oid)):
                raise HubError(404, f"LFS object {oid} not found")
        self._send(200, {"oid": oid, "size": size})

    # ------------------------------------------------------------------ downloads

    def _resolve(self, plural, repo_id, ident, rev, path):
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo_for_read(plural, repo_id, ident)
            commit = hub._resolve_rev(repo, rev)
            entry = commit["files"].get(path)
            if entry is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", headers={"X-Repo-Commit": commit["oid"]})
            entry = dict(entry)
            commit_oid = commit["oid"]
        headers = {
            "X-Repo-Commit": commit_oid,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{os.path.basename(path)}"',
        }
        if entry["lfs"]:
            headers["ETag"] = f'"{entry["blob"]}"'
            headers["X-Linked-Etag"] = f'"{entry["blob"]}"'
            headers["X-Linked-Size"] = str(entry["size"])
        else:
            headers["ETag"] = f'"{entry["git_oid"]}"'
        size = entry["size"]
        status = 200
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng and size > 0:
            m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                if start > end or start >= size:
                    raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1 if size else 0
        headers["Content-Length"] = str(length)
        if self.command == "HEAD":
            return self._send(status, b"", headers, content_type="application/octet-stream")
        if not hub._blobs.has(entry["blob"]):
            raise HubError(501, f"{path} was uploaded through Xet: its bytes are in the local CAS only")
        data = hub._blobs.get(entry["blob"])
        self._send(status, data[start : end + 1] if status == 206 else data, headers, content_type="application/octet-stream")
