"""Tests of tests/hubserver.py with the real huggingface_hub client (no internet needed)."""

import os
import tempfile

# huggingface_hub reads these at import time: set them before importing it.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))

import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.request

import httpx2  # huggingface_hub's HTTP stack
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub_fixtures import HUB_LFS_THRESHOLD, HUB_OTHER_TOKEN, HUB_READ_TOKEN, HUB_TOKEN
from tests.hubserver import HubServer, git_blob_sha1

REPO = "alice/reviews-backup"
DS = "dataset"
BIG = b"\x00\x01reviews" * (HUB_LFS_THRESHOLD // 9 + 100)  # just above the LFS threshold
assert len(BIG) >= HUB_LFS_THRESHOLD


def _commit(api, files: dict, message="backup", **kw):
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=data) for p, data in files.items()]
    return api.create_commit(REPO, repo_type=DS, operations=ops, commit_message=message, **kw)


def _download(srv, path, tmp_path, revision=None, token=HUB_TOKEN, **kw):
    local = hf_hub_download(
        REPO, path, repo_type=DS, revision=revision, endpoint=srv.endpoint, token=token,
        cache_dir=str(tmp_path / "hf-cache"), **kw,
    )
    with open(local, "rb") as f:
        return f.read()


def _raw(srv_endpoint, method, path, body=None, headers=None):
    """A raw HTTP request (for protocol details the client never exercises). Returns (status, headers, body)."""
    req = urllib.request.Request(srv_endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def repo(hub_api):
    hub_api.create_repo(REPO, repo_type=DS, private=True)
    return hub_api


# ----------------------------------------------------------------------------------------------- repos


def test_create_repo_private_exist_ok_and_409(hub_server, hub_api):
    url = hub_api.create_repo(REPO, repo_type=DS, private=True)
    assert url == f"{hub_server.endpoint}/datasets/{REPO}"
    assert url.repo_id == REPO
    # exist_ok twice works (server answers 409 with a {"url"} body)
    assert hub_api.create_repo(REPO, repo_type=DS, private=True, exist_ok=True) == url
    assert hub_api.create_repo(REPO, repo_type=DS, private=True, exist_ok=True) == url
    with pytest.raises(HfHubHTTPError) as exc:
        hub_api.create_repo(REPO, repo_type=DS, private=True)
    assert exc.value.response.status_code == 409
    info = hub_api.dataset_info(REPO)
    assert info.private is True and info.id == REPO
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    commits = hub_api.list_repo_commits(REPO, repo_type=DS)
    assert [c.title for c in commits] == ["initial commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commits[0].commit_id) and info.sha == commits[0].commit_id
    # public when asked; datasets only
    hub_api.create_repo("alice/open", repo_type=DS, private=False)
    assert hub_server.is_private("alice/open") is False and hub_server.repo_exists("alice/open")
    with pytest.raises(HfHubHTTPError) as exc:
        hub_api.create_repo("alice/a-model")
    assert exc.value.response.status_code == 400


# ----------------------------------------------------------------------------------------------- commits


def test_commit_regular_and_lfs(hub_server, repo, tmp_path):
    hub_server.reset_stats()
    info = _commit(repo, {"reviews.db": b"small sqlite bytes", "big/blob.db": BIG}, message="first backup")
    assert re.fullmatch(r"[0-9a-f]{40}", info.oid)
    assert info.commit_url == f"{hub_server.endpoint}/datasets/{REPO}/commit/{info.oid}"
    st = hub_server.stats()
    assert (st["preupload"], st["lfs_batch"], st["lfs_put"], st["lfs_verify"], st["commit"]) == (1, 1, 1, 1, 1)

    assert sorted(repo.list_repo_files(REPO, repo_type=DS)) == [".gitattributes", "big/blob.db", "reviews.db"]
    tree = {e.path: e for e in repo.list_repo_tree(REPO, repo_type=DS, recursive=True)}
    assert set(tree) == {".gitattributes", "big", "big/blob.db", "reviews.db"}
    assert tree["reviews.db"].lfs is None and tree["reviews.db"].blob_id == git_blob_sha1(b"small sqlite bytes")
    assert tree["big/blob.db"].lfs.sha256 == hashlib.sha256(BIG).hexdigest()
    assert tree["big/blob.db"].size == len(BIG)
    top = [e.path for e in repo.list_repo_tree(REPO, repo_type=DS)]
    assert top == [".gitattributes", "big", "reviews.db"]
    paths = repo.get_paths_info(REPO, ["reviews.db", "big", "nope"], repo_type=DS)
    assert [p.path for p in paths] == ["reviews.db", "big"]

    assert _download(hub_server, "reviews.db", tmp_path) == b"small sqlite bytes"
    assert _download(hub_server, "big/blob.db", tmp_path) == BIG
    assert hub_server.read_file(REPO, "big/blob.db") == BIG
    assert repo.file_exists(REPO, "reviews.db", repo_type=DS)
    assert not repo.file_exists(REPO, "missing.db", repo_type=DS)


def test_download_main_and_older_commit(hub_server, repo, tmp_path):
    c1 = _commit(repo, {"reviews.db": b"version 1", "big.db": BIG}, message="v1")
    c2 = _commit(repo, {"reviews.db": b"version 2", "big.db": BIG[::-1]}, message="v2")
    assert _download(hub_server, "reviews.db", tmp_path) == b"version 2"
    assert _download(hub_server, "reviews.db", tmp_path, revision=c1.oid) == b"version 1"
    assert _download(hub_server, "big.db", tmp_path, revision=c1.oid) == BIG
    assert _download(hub_server, "big.db", tmp_path, revision="main") == BIG[::-1]
    assert _download(hub_server, "reviews.db", tmp_path / "other", revision=c2.oid[:7]) == b"version 2"
    with pytest.raises(RevisionNotFoundError):
        _download(hub_server, "reviews.db", tmp_path / "x", revision="f" * 40)
    with pytest.raises(RemoteEntryNotFoundError):
        _download(hub_server, "nope.db", tmp_path / "y")
    # HEAD headers as the Hub sends them
    st, h, _ = _raw(hub_server.endpoint, "HEAD", f"/datasets/{REPO}/resolve/main/big.db",
                    headers={"Authorization": f"Bearer {HUB_TOKEN}"})
    assert st == 200 and h["X-Repo-Commit"] == c2.oid and h["X-Linked-Size"] == str(len(BIG))
    assert h["X-Linked-Etag"] == f'"{hashlib.sha256(BIG[::-1]).hexdigest()}"' and "X-Xet-Hash" not in h
    st, h, body = _raw(hub_server.endpoint, "GET", f"/datasets/{REPO}/resolve/{c1.oid}/reviews.db",
                       headers={"Authorization": f"Bearer {HUB_TOKEN}", "Range": "bytes=2-5"})
    assert st == 206 and body == b"rsio" and h["Content-Range"] == "bytes 2-5/9"
    assert h["ETag"] == f'"{git_blob_sha1(b"version 1")}"'


def test_list_repo_commits_newest_first(hub_server, repo):
    oids = [_commit(repo, {"reviews.db": f"v{i}".encode()}, message=f"backup {i}").oid for i in range(3)]
    commits = repo.list_repo_commits(REPO, repo_type=DS)
    assert [c.title for c in commits] == ["backup 2", "backup 1", "backup 0", "initial commit"]
    assert [c.commit_id for c in commits[:3]] == oids[::-1]
    assert commits[0].authors == ["alice"]
    assert commits[0].created_at >= commits[1].created_at >= commits[-1].created_at
    # history at an older revision, and Link-header pagination
    assert [c.title for c in repo.list_repo_commits(REPO, repo_type=DS, revision=oids[0])] == ["backup 0", "initial commit"]
    hub_server.commits_page_size = 1
    hub_server.reset_stats()
    assert len(repo.list_repo_commits(REPO, repo_type=DS)) == 4
    assert hub_server.stats()["commits"] == 4


def test_identical_files_make_no_commit(hub_server, repo):
    first = _commit(repo, {"reviews.db": b"same bytes", "big.db": BIG})
    n = len(repo.list_repo_commits(REPO, repo_type=DS))
    hub_server.reset_stats()
    again = _commit(repo, {"reviews.db": b"same bytes", "big.db": BIG}, message="nothing changed")
    # the client compares the preupload "oid" with its local oid, skips every file and makes no commit;
    # it then returns the current head (via GET repo info).
    assert again.oid == first.oid
    assert len(repo.list_repo_commits(REPO, repo_type=DS)) == n
    st = hub_server.stats()
    assert st.get("commit", 0) == 0 and st["preupload"] == 1 and st["repo_info"] == 1
    # the unchanged LFS file still costs one LFS batch call, but the server has it: no PUT
    assert st["lfs_batch"] == 1 and st.get("lfs_put", 0) == 0
    # one changed file -> a commit with only that file
    hub_server.reset_stats()
    _commit(repo, {"reviews.db": b"new bytes", "big.db": BIG})
    assert len(repo.list_repo_commits(REPO, repo_type=DS)) == n + 1
    assert hub_server.stats()["commit"] == 1 and hub_server.stats().get("lfs_put", 0) == 0
    assert hub_server.list_commits(REPO)[0]["files"] == [".gitattributes", "big.db", "reviews.db"]


def test_delete_operations_and_parent_commit(hub_server, repo):
    c1 = _commit(repo, {"a.txt": b"a", "dir/b.txt": b"b", "dir/c.txt": b"c"})
    c2 = repo.create_commit(REPO, repo_type=DS, commit_message="rm", parent_commit=c1.oid,
                            operations=[CommitOperationDelete("a.txt"), CommitOperationDelete("dir/")])
    assert sorted(repo.list_repo_files(REPO, repo_type=DS)) == [".gitattributes"]
    with pytest.raises(HfHubHTTPError) as exc:  # stale parent commit
        _commit(repo, {"x.txt": b"x"}, parent_commit=c1.oid)
    assert exc.value.response.status_code == 412
    _commit(repo, {"x.txt": b"x"}, parent_commit=c2.oid)
    with pytest.raises(RemoteEntryNotFoundError):
        repo.create_commit(REPO, repo_type=DS, commit_message="rm", operations=[CommitOperationDelete("nope.txt")])


def test_super_squash_history(hub_server, repo, tmp_path):
    for i in range(3):
        _commit(repo, {"reviews.db": f"v{i}".encode(), "big.db": BIG}, message=f"backup {i}")
    head_before = repo.dataset_info(REPO).sha
    repo.super_squash_history(REPO, repo_type=DS, commit_message="squashed")
    commits = repo.list_repo_commits(REPO, repo_type=DS)
    assert len(commits) == 1 and commits[0].title == "squashed" and commits[0].commit_id != head_before
    assert sorted(repo.list_repo_files(REPO, repo_type=DS)) == [".gitattributes", "big.db", "reviews.db"]
    assert _download(hub_server, "reviews.db", tmp_path) == b"v2"
    assert _download(hub_server, "big.db", tmp_path) == BIG
    with pytest.raises(RevisionNotFoundError):  # old commits are gone
        repo.list_repo_commits(REPO, repo_type=DS, revision=head_before)
    # the history continues from the squashed commit
    _commit(repo, {"reviews.db": b"v3"})
    assert len(repo.list_repo_commits(REPO, repo_type=DS)) == 2


# ----------------------------------------------------------------------------------------------- auth


def test_private_repo_hidden_from_others(hub_server, repo, tmp_path):
    _commit(repo, {"reviews.db": b"secret"})
    anonymous = HfApi(endpoint=hub_server.endpoint, token=False)
    bob = HfApi(endpoint=hub_server.endpoint, token=HUB_OTHER_TOKEN)
    for api in (anonymous, bob):
        with pytest.raises(RepositoryNotFoundError):
            api.dataset_info(REPO)
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_commits(REPO, repo_type=DS)
    for token in (False, HUB_OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            _download(hub_server, "reviews.db", tmp_path / str(token), token=token)
    with pytest.raises(RepositoryNotFoundError):
        _commit(bob, {"x": b"x"})
    # public: readable by anyone, still writable only by its owner
    public = "alice/public"
    repo.create_repo(public, repo_type=DS, private=False)
    repo.create_commit(public, repo_type=DS, commit_message="open",
                       operations=[CommitOperationAdd(path_in_repo="reviews.db", path_or_fileobj=b"open")])
    local = hf_hub_download(public, "reviews.db", repo_type=DS, endpoint=hub_server.endpoint, token=False,
                            cache_dir=str(tmp_path / "anon"))
    assert open(local, "rb").read() == b"open"
    with pytest.raises(HfHubHTTPError) as exc:
        bob.create_commit(public, repo_type=DS, commit_message="x",
                          operations=[CommitOperationAdd(path_in_repo="x", path_or_fileobj=b"x")])
    assert exc.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as exc:
        bob.create_repo("alice/other", repo_type=DS)
    assert exc.value.response.status_code == 403
    assert bob.create_repo("bob/mine", repo_type=DS).repo_id == "bob/mine"


def test_read_only_token(hub_server, repo):
    ro = HfApi(endpoint=hub_server.endpoint, token=HUB_READ_TOKEN)
    assert ro.dataset_info(REPO).id == REPO
    with pytest.raises(HfHubHTTPError) as exc:
        _commit(ro, {"x": b"x"})
    assert exc.value.response.status_code == 403 and "write" in str(exc.value)


def test_bad_token_is_401(hub_server, repo, tmp_path):
    bad = HfApi(endpoint=hub_server.endpoint, token="not-a-token")
    with pytest.raises(HfHubHTTPError) as exc:
        bad.dataset_info(REPO)
    assert exc.value.response.status_code == 401
    assert not isinstance(exc.value, RepositoryNotFoundError)
    assert exc.value.response.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    with pytest.raises(HfHubHTTPError) as exc:
        _commit(bad, {"x": b"x"})
    assert exc.value.response.status_code == 401


# ----------------------------------------------------------------------------------------------- faults


def test_503_on_preupload_is_retried(hub_server, repo):
    hub_server.fail_next(1, mode="503")
    t0 = time.monotonic()
    _commit(repo, {"reviews.db": b"after 503"})
    assert 0.9 < time.monotonic() - t0 < 5  # http_backoff waits 1 s before the first retry
    assert hub_server.stats()["injected_failures"] == 1
    assert [r[2] for r in hub_server.requests if "preupload" in r[1]][-2:] == [503, 200]
    assert hub_server.read_file(REPO, "reviews.db") == b"after 503"


def test_429_is_retried_after_retry_after(hub_server, repo):
    hub_server.fail_next(1, mode="429", retry_after=0)
    t0 = time.monotonic()
    _commit(repo, {"reviews.db": b"after 429"})
    assert 0.9 < time.monotonic() - t0 < 5  # waits Retry-After + 1 s
    assert hub_server.read_file(REPO, "reviews.db") == b"after 429"


def test_dropped_connection_on_preupload_and_lfs_put_is_retried(hub_server, repo):
    hub_server.fail_next(1, mode="drop")
    _commit(repo, {"reviews.db": b"after drop"})
    hub_server.reset_stats()
    hub_server.fail_next(1, mode="drop", only="lfs_put")
    _commit(repo, {"big.db": BIG})
    assert hub_server.stats()["lfs_put"] == 2
    assert [r[2] for r in hub_server.requests if r[0] == "PUT"] == [0, 200]
    assert hub_server.read_file(REPO, "big.db") == BIG


def test_faults_on_commit_are_not_retried(hub_server, repo):
    n = len(hub_server.list_commits(REPO))
    hub_server.fail_next(1, mode="503", only="commit")
    with pytest.raises(HfHubHTTPError) as exc:
        _commit(repo, {"reviews.db": b"x"})
    assert exc.value.response.status_code == 503
    hub_server.fail_next(1, mode="429", only="commit")
    with pytest.raises(HfHubHTTPError) as exc:
        _commit(repo, {"reviews.db": b"x"})
    assert exc.value.response.status_code == 429
    # a dropped connection surfaces as the raw httpx2 exception, not an HfHubHTTPError
    hub_server.fail_next(1, mode="drop", only="commit")
    with pytest.raises(httpx2.RemoteProtocolError):
        _commit(repo, {"reviews.db": b"x"})
    assert len(hub_server.list_commits(REPO)) == n
    # "drop_after": the commit is applied but its answer is lost
    hub_server.fail_next(1, mode="drop_after", only="commit")
    with pytest.raises(httpx2.RemoteProtocolError):
        _commit(repo, {"reviews.db": b"applied"})
    assert len(hub_server.list_commits(REPO)) == n + 1
    assert hub_server.read_file(REPO, "reviews.db") == b"applied"
    hub_server.fail_next(1, mode="401")
    with pytest.raises(HfHubHTTPError) as exc:
        _commit(repo, {"reviews.db": b"y"})
    assert exc.value.response.status_code == 401
    _commit(repo, {"reviews.db": b"ok"})
    assert hub_server.pending_failures() == 0


def test_download_head_503_is_retried_but_drop_is_not(hub_server, repo, tmp_path):
    _commit(repo, {"reviews.db": b"dl"})
    hub_server.fail_next(1, mode="503")  # HEAD fails, nothing cached -> the client retries the HEAD at once
    assert _download(hub_server, "reviews.db", tmp_path / "a") == b"dl"
    hub_server.fail_next(1, mode="drop")
    with pytest.raises(httpx2.RemoteProtocolError):
        _download(hub_server, "reviews.db", tmp_path / "b")


def test_delay_and_fault_controls(hub_server, repo):
    hub_server.set_delay(0.5)
    t0 = time.monotonic()
    _commit(repo, {"reviews.db": b"slow"})
    assert time.monotonic() - t0 >= 0.5  # a lower bound the server sleeps itself: not a timing race
    hub_server.set_delay(0)
    hub_server.fail_next(2, mode="503", only="commit")
    hub_server.reset_stats()
    assert hub_server.stats() == {"total": 0}
    assert repo.dataset_info(REPO).id == REPO  # not a commit: not failed
    assert hub_server.pending_failures() == 2
    hub_server.fail_next(0)
    assert hub_server.pending_failures() == 0


def test_protocol_edges(hub_server, repo):
    auth = {"Authorization": f"Bearer {HUB_TOKEN}"}
    ep = hub_server.endpoint
    head = hub_server.list_commits(REPO)[0]["oid"]
    # an lfsFile referencing an object that was never uploaded is rejected
    oid = hashlib.sha256(b"never uploaded").hexdigest()
    lines = [{"key": "header", "value": {"summary": "bad"}},
             {"key": "lfsFile", "value": {"path": "x.bin", "algo": "sha256", "oid": oid, "size": 14}}]
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    st, _, _ = _raw(ep, "POST", f"/api/datasets/{REPO}/commit/main", body,
                    {**auth, "Content-Type": "application/x-ndjson"})
    assert st == 400
    # LFS PUT: ticket-only auth, checks sha256 and size, ticket is single-use
    batch = {"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
             "objects": [{"oid": hashlib.sha256(b"payload").hexdigest(), "size": 7}]}
    st, _, out = _raw(ep, "POST", f"/datasets/{REPO}.git/info/lfs/objects/batch", json.dumps(batch).encode(),
                      {**auth, "Content-Type": "application/vnd.git-lfs+json"})
    href = json.loads(out)["objects"][0]["actions"]["upload"]["href"]
    assert _raw(href, "PUT", "", b"PAYLOAD")[0] == 400
    assert _raw(href, "PUT", "", b"payload")[0] == 200
    assert _raw(href, "PUT", "", b"payload")[0] == 403
    st, _, out = _raw(ep, "POST", f"/datasets/{REPO}.git/info/lfs/objects/batch", json.dumps(batch).encode(), auth)
    assert "actions" not in json.loads(out)["objects"][0]  # already stored
    # a regular file committed through raw NDJSON, then visible through the client
    lines = [{"key": "header", "value": {"summary": "raw", "parentCommit": head}},
             {"key": "file", "value": {"path": "r.txt", "encoding": "base64",
                                       "content": base64.b64encode(b"raw").decode()}}]
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    st, _, out = _raw(ep, "POST", f"/api/datasets/{REPO}/commit/main", body, auth)
    assert st == 200 and "/commit/" in json.loads(out)["commitUrl"]
    assert hub_server.read_file(REPO, "r.txt") == b"raw"
    # unknown routes, and repo kinds this server does not serve
    assert _raw(ep, "GET", "/api/nothing/here")[0] == 404
    assert _raw(ep, "GET", "/api/models/alice/m")[0] == 404
    assert _raw(ep, "GET", "/alice/m/resolve/main/x")[0] == 404
    assert all("Bearer" not in str(r) for r in hub_server.requests)


# ----------------------------------------------------------------------------------------------- lifecycle


def test_in_process_context_manager(tmp_path):
    with HubServer(tokens={"t": "carol"}) as srv:
        api = HfApi(endpoint=srv.endpoint, token="t")
        assert api.create_repo("carol/x", repo_type=DS).repo_id == "carol/x"
    with pytest.raises(RuntimeError):
        srv.endpoint  # noqa: B018 - reading the property is what raises
