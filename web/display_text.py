"""What people typed, as the pages show it: without the controls that reorder text.

A name "\u202eevil.com\u202c" showed as "moc.live": U+202E (RIGHT-TO-LEFT OVERRIDE)
and its kin force a direction on the characters after them, so a reviewer can make
their name or comment read as something else. The pages drop the explicit bidi
embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069) when they
show a text; the database, the CSV and the backups keep it exactly as sent.

Why strip rather than only isolate (`<bdi>`, `dir="auto"`): isolation keeps an
override from spilling onto the text around it (the stars, the date), but inside
the isolated text the override still reverses the characters. Arabic and Hebrew
names need none of these controls (the Unicode bidi algorithm orders them from
their letters), so nothing a real name needs is lost. The public list isolates
each name and comment as well (`dir="auto"` in web/review_list.py), so a
right-to-left name does not reorder its neighbours either.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = {ord(c): None for c in BIDI_CONTROLS}


def without_bidi_controls(text: str | None) -> str | None:
    return text.translate(_DROP) if isinstance(text, str) else text
