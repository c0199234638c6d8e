"""The page's parts without a browser: the form's open/closed setting, the owner's exports, the
charts, the share link and QR code, the refusal message. Real SQLite files, real files on disk."""

from __future__ import annotations

import csv
import zipfile
from datetime import date

import pytest

from shared import moderation
from shared.owner_search import ReviewFilter
from shared.schema import open_store_db
from shared.store import insert_review
from shared.reviews import InvalidReview, Review, validate
from web import charts, share
from web.form_state import DEFAULT_MESSAGE, MAX_MESSAGE_CHARS, closed_html, read_form_state, set_form_state
from web.owner_export import HEADERS, write_owner_export


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "reviews.db"
    conn = open_store_db(path)
    yield path, conn
    conn.close()


def test_the_form_state_is_stored_in_sqlite_and_read_by_another_connection(db):
    path, conn = db
    assert read_form_state(conn).closed is False and read_form_state(conn).message == DEFAULT_MESSAGE
    set_form_state(conn, True, "  Back on Monday <b>!</b>  ")
    other = open_store_db(path)  # another web worker
    try:
        state = read_form_state(other)
        assert state.closed and state.message == "Back on Monday <b>!</b>"
        assert "&lt;b&gt;" in closed_html(state) and "<b>" not in closed_html(state)
        set_form_state(other, False)
        assert read_form_state(conn).closed is False
        assert read_form_state(conn).message == "Back on Monday <b>!</b>"  # kept for the next closing
        # Only meta rows, no schema change: the review counter the backups rely on is untouched.
        assert conn.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()[0] == 0
        assert len(set_form_state(conn, True, "x" * 1000).message) == MAX_MESSAGE_CHARS
    finally:
        other.close()


def test_a_refusal_names_the_field_at_fault():
    for args, field in ((("n", None, ""), "rating"), (("n", 9, ""), "rating"), (("n" * 101, 3, ""), "name"),
                        (("n", 3, "a\x00b"), "comments")):
        with pytest.raises(InvalidReview) as info:
            validate(*args)
        assert info.value.field == field, args


def _reviews(conn):
    ids = [insert_review(conn, Review(name, rating, comments)) for name, rating, comments in (
        ("=cmd()", 5, "+1 great checkout"), ("Ann", 2, "slow checkout"), ("Bo", 5, "@SUM(1) fine"),
        ("דנה", 4, "שירות מצוין"))]
    return ids


def test_the_csv_export_follows_the_search_and_shows_the_owners_zone(db, tmp_path):
    path, conn = db
    ids = _reviews(conn)
    out = write_owner_export(path, tmp_path / "exports", ReviewFilter(query="checkout", ratings=(5,)),
                             fmt="csv", zone_name_sent="America/New_York")
    assert out.stat().st_mode & 0o777 == 0o600 and out.suffix == ".csv"
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == HEADERS
    assert [int(r[0]) for r in rows[1:]] == [ids[0]]  # the search AND the rating
    row = rows[1]
    assert row[4:] == ["'=cmd()", "5", "'+1 great checkout", "public", "", ""]
    assert row[1].endswith("Z") and row[3] == "America/New_York" and row[2][-6:] in ("-05:00", "-04:00")


def test_the_exports_carry_each_reviews_status_and_the_owners_reply_guarded(db, tmp_path):
    path, conn = db
    ids = _reviews(conn)
    moderation.hide(conn, [ids[1]])
    moderation.reply(conn, ids[2], "=HYPERLINK(\"x\") thanks")
    out = write_owner_export(path, tmp_path / "exports", ReviewFilter(), fmt="csv", zone_name_sent="UTC")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = {int(r[0]): r for r in list(csv.reader(fh))[1:]}
    assert rows[ids[1]][7:] == ["hidden", "", ""]  # the owner's export holds hidden reviews, marked
    assert rows[ids[2]][7] == "public" and rows[ids[2]][8] == "'=HYPERLINK(\"x\") thanks"
    assert rows[ids[2]][9].endswith("Z") and rows[ids[0]][7:] == ["public", "", ""]


def test_an_unknown_zone_falls_back_to_utc(db, tmp_path):
    path, conn = db
    _reviews(conn)
    out = write_owner_export(path, tmp_path / "exports", ReviewFilter(), zone_name_sent="../../etc/passwd")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert {r[3] for r in rows[1:]} == {"UTC"} and all(r[2].endswith("+00:00") for r in rows[1:])


def test_the_xlsx_export_has_the_same_guard_and_no_formula(db, tmp_path):
    path, conn = db
    ids = _reviews(conn)
    out = write_owner_export(path, tmp_path / "exports", ReviewFilter(), fmt="xlsx", zone_name_sent="UTC")
    assert zipfile.is_zipfile(out)
    from openpyxl import load_workbook
    sheet = load_workbook(out, read_only=True).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == HEADERS and [r[0] for r in cells[1:]] == ids
    assert cells[1][4] == "'=cmd()" and cells[3][6] == "'@SUM(1) fine" and cells[4][4] == "דנה"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_a_single_day_is_drawn_as_a_point_with_its_numbers_as_text():
    one = charts.day_series([date(2026, 12, 1)], [3], title="Reviews per day", unit="reviews", elem_id="x")
    assert one.count("<circle") == 1 and "<polyline" not in one and "1 day from 2026-12-01" in one
    assert "<td>2026-12-01</td><td>3</td>" in one
    many = charts.day_series([date(2026, 12, d) for d in (1, 2, 3)], [1, None, 2], title="Average",
                             unit="stars", elem_id="y", digits=1)
    assert many.count("<circle") == 2 and "<polyline" in many
    assert "nothing to show" in charts.day_series([date(2026, 12, 1)], [None], title="T", unit="u", elem_id="z")
    bars = charts.rating_bars((1, 0, 0, 2, 7))
    assert bars.index('data-rating="5" data-count="7"') < bars.index('data-rating="1" data-count="1"')
    assert "7<span class=\"sr-only\"> reviews</span>" in bars and "1<span class=\"sr-only\"> review</span>" in bars


def test_the_embed_snippet_escapes_the_address_and_the_qr_code_is_png_and_svg(tmp_path):
    snippet = share.embed_snippet('http://x/"><script>')
    assert "<script>" not in snippet and snippet.startswith('<iframe src="http://x/&quot;&gt;')
    png, svg = share.write_qr_files("https://feedback.example/", tmp_path / "qr")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()
    assert share.share_html("https://feedback.example/").count("alt=\"QR code that opens https://feedback.example/\"") == 1


def test_the_html_component_modules_are_read_from_gradios_frontend(tmp_path):
    """The public page's Link header names real files of the installed Gradio, none of which every
    page loads anyway (its root Column's); without Gradio's map the page simply goes without."""
    from web.preload import _assets_dir, component_files
    files = component_files("html")
    assert files and all(f.endswith(".js") and (_assets_dir() / f).is_file() for f in files)
    assert any(f.startswith("HTML-") for f in files)  # the component itself, the big one
    assert not any(f.startswith(("index-", "core-", "src-")) for f in files)  # the page's own chunks
    assert component_files("html", assets=tmp_path) == []
