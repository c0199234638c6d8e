"""The CSV formula guard by character class (shared/csv_export.py): SQL and Python agree.

Real SQLite files and the real export (shared/csv_export.py, through tests/store_support.exported_comments)."""

from __future__ import annotations

import unicodedata

from shared.csv_export import LEADING_IGNORED, guard_cell
from tests.store_support import exported_comments

# What a probe got through before: each in front of = and @.
PROBED = ["\x0b", "\x0c", "\x1f", "\u0085", "\u2003", "\u2028", "\u200e", "\u202a", "\u00ad", "\u3164"]
# Their kin: one of each kind the class covers.
KIN = ["\x01", "\x7f", "\u2009", "\u2029", "\u202e", "\u2066", "\u061c", "\u180e", "\ufeff", "\U000e0041",
       "\u115f", "\uffa0", "\u034f", "\ufe0f", "\u2800"]


def test_the_class_is_every_control_format_and_separator_character():
    for c in map(chr, range(1, 0x110000)):  # NUL never reaches the database (shared/reviews.py)
        if not 0xD800 <= ord(c) <= 0xDFFF and unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            assert c in LEADING_IGNORED, hex(ord(c))
    assert all(c in LEADING_IGNORED for c in PROBED + KIN)
    assert not any(c.isalnum() and unicodedata.category(c) != "Lo" for c in LEADING_IGNORED)


def test_formulas_behind_any_invisible_character_are_guarded_and_sql_agrees_with_python(tmp_path):
    hostile = [f"{c}{start}cmd|' /C calc'!A0" for c in PROBED + KIN for start in ("=", "@")]
    hostile += [c * 3 + "\u00a0=1+1" for c in PROBED]  # several in a row, mixed
    harmless = ["\u202eevil.com\u202c", "\u200bhello", "\x0bline", "a=1", "\u3164", ""]
    exported = exported_comments(tmp_path, hostile + harmless)
    assert exported == ["'" + t for t in hostile] + harmless
    assert exported == [guard_cell(t) for t in hostile + harmless]  # the Python rule says the same
