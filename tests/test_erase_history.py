"""The Hub history rewritten without erased reviews, on the owner's request, against the
tests' Hub server through the real huggingface_hub client: afterwards no commit of the
dataset holds a byte of the text, the old commits are gone, and point-in-time restore
works from the rebuilt points."""

from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RevisionNotFoundError

from shared import moderation as mod
from shared import utc
from shared.db import connect, insert_review, open_store_db
from shared.reviews import Review
from tests.hub_fixtures import HUB_TOKEN, hub_api, hub_server  # noqa: F401
from tests.test_erasure import SECRET, holds
from tests.test_hub_sync import REPO, hub_config, target_for
from worker import erase_history
from worker.__main__ import backup_at
from worker.backup import Backup
from worker.restore import restore


def add(config, n, tag):
    conn = open_store_db(config.db_path)
    try:
        return [insert_review(conn, Review(f"{tag} {i}", 1 + i % 5, f"{tag} comment {i}")) for i in range(n)]
    finally:
        conn.close()


def every_file_of_every_commit(srv, tmp_path) -> dict[str, list[str]]:
    api = HfApi(endpoint=srv.endpoint, token=HUB_TOKEN)
    out = {}
    revisions = [c.commit_id for c in api.list_repo_commits(REPO, repo_type="dataset")]
    revisions += [t.target_commit for t in api.list_repo_refs(REPO, repo_type="dataset").tags]  # the kept points
    for rev in revisions:
        held = []
        for name in api.list_repo_files(REPO, repo_type="dataset", revision=rev):
            path = Path(hf_hub_download(REPO, name, repo_type="dataset", revision=rev,
                                        endpoint=srv.endpoint, token=HUB_TOKEN, local_dir=tmp_path / rev[:10]))
            if holds(path):
                held.append(name)
        out[rev] = held
    return out


def test_history_rewrite_leaves_no_commit_holding_the_text(hub_server, tmp_path):  # noqa: F811
    config = hub_config(tmp_path / "data")
    clock = {"now": "2026-11-01T10:00:00Z"}
    target = target_for(hub_server, clock=lambda: utc.parse_iso(clock["now"]))
    add(config, 2, "early")
    conn = open_store_db(config.db_path)
    victim = insert_review(conn, Review(f"Name {SECRET}", 1, f"my number {SECRET}"))
    conn.close()
    add(config, 7, "day1")
    old_revisions = [Backup(config, target).run().published.revision]
    for at, n in (("2026-11-02T09:00:00Z", 5), ("2026-11-02T15:00:00Z", 2), ("2026-11-03T08:00:00Z", 3)):
        clock["now"] = at
        add(config, n, at[:13])
        old_revisions.append(Backup(config, target).run().published.revision)
    conn = open_store_db(config.db_path)
    mod.hide(conn, [1])
    mod.delete(conn, [victim])
    clock["now"] = "2026-11-03T18:00:00Z"
    Backup(config, target).run()
    held = every_file_of_every_commit(hub_server, tmp_path / "before")
    assert sum(1 for files in held.values() if files) == 4, "every backup before the delete holds the text"

    # The owner's button records a request; the worker's loop carries it out.
    mod.request_history_rewrite(conn)
    conn.close()
    result = erase_history.maybe_run(config, target)
    assert result is not None and result.points == 3 and result.removed_rows == 3 and result.skipped == 0

    held = every_file_of_every_commit(hub_server, tmp_path / "after")
    assert held and all(files == [] for files in held.values()), held
    api = HfApi(endpoint=hub_server.endpoint, token=HUB_TOKEN)
    for revision in old_revisions:
        with pytest.raises(RevisionNotFoundError):
            api.list_repo_files(REPO, repo_type="dataset", revision=revision)
    # Point-in-time restore from what remains: the rebuilt points keep their times, lack the review.
    history = target.history()
    assert [e.at for e in history][-3:] == ["2026-11-03T08:00:00Z", "2026-11-02T09:00:00Z", "2026-11-01T10:00:00Z"]
    assert [e.rows for e in history][-3:] == [19, 14, 9]
    fresh = hub_config(tmp_path / "fresh")
    chosen = backup_at(target, "2026-11-02T23:00:00Z")
    restore(fresh, target, revision=chosen.revision)
    conn = connect(fresh.db_path, readonly=True)
    try:
        assert conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 14
        assert conn.execute("SELECT review_id FROM tombstones").fetchall() == [(victim,)]
        assert conn.execute("SELECT status FROM reviews WHERE id = 1").fetchone()[0] == "public", \
            "the point as it was then (the hide came later)"
    finally:
        conn.close()
    # The newest is the live database's, and the request is closed and logged.
    newest = target.newest()
    assert newest.rows == 19
    conn = connect(config.db_path, readonly=True)
    try:
        assert mod.open_history_request(conn) is None
        assert "3 older backups rebuilt" in mod.last_history_rewrite(conn)[1]
        assert mod.log_entries(conn, 1)[0].action == "history-rewritten"
    finally:
        conn.close()
    assert not any(holds(p) for p in config.data_dir.rglob("*") if p.is_file())
