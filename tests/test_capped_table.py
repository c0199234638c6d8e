"""web.capped_table.CappedTable, and the per-client tables built on it staying bounded."""

import pytest

from web import login_throttle, ratelimit
from web.capped_table import CappedTable


def test_past_the_cap_the_entry_put_longest_ago_goes_first():
    t: CappedTable[str, int] = CappedTable(3)
    for i, key in enumerate("abc"):
        t.put(key, i)
    t.put("a", 10)  # put again: now the most recent
    assert t.get("b") == 1, "reading does not refresh"
    t.put("d", 3)
    assert list(t) == ["c", "a", "d"] and "b" not in t and len(t) == 3
    assert t.oldest() == ("c", 2)
    t.drop_oldest()
    assert t.pop("a") == 10 and t.pop("a") is None and t.get("zz") is None
    assert list(t) == ["d"]
    t.drop_oldest()
    assert t.oldest() is None and len(t) == 0


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="at least one entry, not 0"):
        CappedTable(0)


def test_the_submit_limit_forgets_the_least_recent_client_past_its_cap(monkeypatch):
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 3)
    limiter = ratelimit.RateLimiter(per_minute=1, clock=lambda: 0.0)
    assert limiter.allow("a") and not limiter.allow("a")
    for client in ("b", "c", "d"):  # "a" is now the oldest of four: forgotten
        assert limiter.allow(client)
    assert limiter.allow("a"), "forgotten past the cap: counted afresh"
    assert not limiter.allow("d"), "a recent client is still counted"


def test_the_login_throttle_forgets_the_least_recent_client_past_its_cap(monkeypatch):
    monkeypatch.setattr(login_throttle, "MAX_TRACKED_CLIENTS", 2)
    failures = login_throttle.Failures(cooldown=300, max_failures=1, clock=lambda: 0.0)
    assert failures.attempt("a")[2] and failures.blocked_for("a") == 300
    failures.attempt("b")
    assert failures.attempt("a")[0] == 300, "refused while cooling down: put again, now the most recent"
    failures.attempt("c")  # "b" goes, not "a"
    assert failures.blocked_for("a") == 300 and failures.blocked_for("b") == 0 and failures.blocked_for("c") == 300
