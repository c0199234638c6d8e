"""shared/utc.py: every UTC spelling the project writes, read back; bad text refused by name."""

from datetime import datetime, timedelta, timezone

import pytest

from shared import utc
from shared.db import insert_review, open_store_db
from shared.reviews import Review

AT = 1763632800.0  # 2025-11-20T10:00:00Z
AT_MS = AT + 0.535


def test_iso_and_its_parser_round_trip_with_the_z_suffix():
    assert utc.iso(AT) == "2025-11-20T10:00:00Z"
    assert utc.parse_iso("2025-11-20T10:00:00Z") == AT
    assert utc.parse_iso(utc.iso(AT + 59.9)) == AT + 59, "whole seconds, rounded down"
    assert utc.iso().endswith("Z") and abs(utc.parse_iso(utc.iso()) - datetime.now(timezone.utc).timestamp()) < 5


def test_stamps_round_trip_and_sort_as_text_in_time_order():
    assert utc.stamp(AT) == "20251120T100000Z"
    assert utc.parse_stamp("20251120T100000Z") == AT
    assert utc.stamp(AT_MS, micro=True) == "20251120T100000535000Z"
    times = [AT, AT + 0.000001, AT + 0.5, AT + 1, AT + 86400 * 40]
    assert sorted(utc.stamp(t, micro=True) for t in times) == [utc.stamp(t, micro=True) for t in times]
    # The ladder's buckets are prefixes of the stamp.
    assert utc.stamp(AT)[:utc.HOUR_CHARS] == "20251120T10"
    assert utc.stamp(AT)[:utc.DAY_CHARS] == "20251120" and utc.stamp(AT)[:utc.MONTH_CHARS] == "202511"


def test_db_time_is_what_the_schema_writes_and_parses_back(tmp_path):
    conn = open_store_db(tmp_path / "reviews.db")
    try:
        insert_review(conn, Review("a", 3, ""))
        stored = conn.execute("SELECT created_at FROM reviews").fetchone()[0]
        now_sql = conn.execute(f"SELECT {utc.SQL_NOW}").fetchone()[0]
    finally:
        conn.close()
    for text in (stored, now_sql):
        assert len(text) == len(utc.db_time(AT)), (text, "the same shape as db_time writes")
        assert abs(utc.parse_db(text) - datetime.now(timezone.utc).timestamp()) < 60
        assert utc.db_time(utc.parse_db(text)) == text
    assert utc.db_time(AT_MS) == "2025-11-20T10:00:00.535Z"
    assert utc.parse_db("2025-11-20T10:00:00.535Z") == pytest.approx(AT_MS, abs=1e-6)
    assert utc.parse_db("2025-11-20T10:00:00Z") == AT, "a stored time in whole seconds still reads"
    assert utc.db_time(AT + 0.9999) == "2025-11-20T10:00:01.000Z", "rounded to the millisecond, carried"


def test_aware_datetimes_are_converted_to_utc_and_naive_ones_refused():
    berlin = timezone(timedelta(hours=1))
    assert utc.iso(datetime(2025, 11, 20, 11, 0, tzinfo=berlin)) == "2025-11-20T10:00:00Z"
    assert utc.iso(datetime(2025, 11, 20, 10, 0, tzinfo=timezone.utc)) == "2025-11-20T10:00:00Z"
    with pytest.raises(TypeError, match="naive datetime 2025-11-20T10:00:00: give its zone"):
        utc.iso(datetime(2025, 11, 20, 10, 0))
    with pytest.raises(TypeError, match="naive"):
        utc.stamp(datetime(2025, 11, 20, 10, 0))


def test_readable_for_people():
    assert utc.readable(AT) == "20 Nov 2025, 10:00 UTC"
    assert utc.readable(datetime(2025, 3, 1, 9, 5, tzinfo=timezone.utc)) == "1 Mar 2025, 09:05 UTC"


@pytest.mark.parametrize("text", ["2025-11-20T10:00Z", "2025-11-20t10:00z", "2025-11-20 10:00", " 2025-11-20T10:00:00Z "])
def test_loose_parser_takes_what_people_type(text):
    assert utc.parse_loose(text) == AT


def test_loose_parser_takes_a_day_and_seconds():
    assert utc.parse_loose("2025-11-20") == AT - 10 * 3600
    assert utc.parse_loose("2025-11-20T10:00:30Z") == AT + 30


@pytest.mark.parametrize("parse, text, shape", [
    (utc.parse_iso, "2025-11-20 10:00:00", "2026-11-20T10:00:00Z"),
    (utc.parse_iso, "2025-11-20T10:00:00.535Z", "2026-11-20T10:00:00Z"),
    (utc.parse_iso, "", "2026-11-20T10:00:00Z"),
    (utc.parse_stamp, "2025-11-20T10:00:00Z", "20261120T100000Z"),
    (utc.parse_db, "yesterday", "2026-11-20T10:00:00.535Z"),
    (utc.parse_db, "2025-13-20T10:00:00.535Z", "2026-11-20T10:00:00.535Z"),
    (utc.parse_db, None, "2026-11-20T10:00:00.535Z"),
    (utc.parse_loose, "yesterday", "2026-11-20T10:00Z"),
    (utc.parse_loose, "2025-11-20T25:00Z", "2026-11-20T10:00Z"),
])
def test_bad_text_is_refused_naming_the_text_and_the_shape(parse, text, shape):
    with pytest.raises(utc.TimeFormatError) as caught:
        parse(text)
    assert repr(text) in str(caught.value) and shape in str(caught.value)
    assert isinstance(caught.value, ValueError), "callers that catch ValueError keep working"


def test_sql_now_is_the_schemas_default(tmp_path):
    """The migrations keep their own copy of the expression (history); it must stay the same text."""
    conn = open_store_db(tmp_path / "reviews.db")
    try:
        table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'reviews'").fetchone()[0]
    finally:
        conn.close()
    assert f"DEFAULT ({utc.SQL_NOW})" in table
