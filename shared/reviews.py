"""What a valid review is. The web handler and the HTTP API both go through `validate`."""

from __future__ import annotations

from dataclasses import dataclass

MAX_NAME_CHARS = 100
MAX_COMMENTS_CHARS = 5000
# A name withheld from a public dataset (worker/privacy.py decides when), as the SQL that stands for the
# name column, here for every file that carries it. NULL in the databases and the Parquet files (read
# through the database): "no value", which nobody can take for a name typed as "". The CSV has no NULL,
# so there it is the empty text, which csv.writer writes quoted (""): the bytes the CSV shards have
# always held, so a withheld name never changes a shard's hash. The dataset card says it in words.
WITHHELD_NAME_SQL = "NULL"
WITHHELD_NAME_CSV_SQL = "''"
WITHHELD_NAME_TEXT = "NULL in the database and the Parquet files, an empty cell in the CSV"
# The ratings people give, 1 (not at all satisfied) to 5 (very): the form, the API's description, the
# checks, the charts, the owner's filter and the dataset card are built from these. The database's
# migrations spell 1-5 in their own SQL (review_stats' seed rows): a migration is history, it keeps its text.
RATINGS = (1, 2, 3, 4, 5)
LOWEST, HIGHEST = RATINGS[0], RATINGS[-1]
RANGE_TEXT = f"{LOWEST} to {HIGHEST}"


class InvalidReview(ValueError):
    """The input cannot be stored; the message is shown to the person as is.

    `field` names the input at fault ("name", "rating", "comments"), so the page can mark it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Review:
    name: str
    rating: int
    comments: str


def _text(value: object, field: str, limit: int, *, strip: bool) -> str:
    key = field.lower()
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidReview(f"{field} must be text.", key)
    if strip:
        value = value.strip()
    if len(value) > limit:
        raise InvalidReview(f"{field} is too long: {len(value):,} characters, at most {limit:,} allowed.", key)
    if "\x00" in value:
        raise InvalidReview(f"{field} contains a NUL character, which cannot be stored.", key)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be stored as UTF-8 text in SQLite or exported.
        raise InvalidReview(f"{field} contains invalid characters (unpaired surrogates).", key) from None
    return value


def _rating(value: object) -> int:
    if value is None or value == "":
        raise InvalidReview(f"Please choose a rating from {RANGE_TEXT}.", "rating")
    # bool is an int in Python; True is not a rating.
    if isinstance(value, bool) or not isinstance(value, int):
        # The bad value is not echoed: the message is shown on the page.
        raise InvalidReview(f"The rating must be a whole number from {RANGE_TEXT}.", "rating")
    if value not in RATINGS:
        raise InvalidReview(f"The rating must be a whole number from {RANGE_TEXT}.", "rating")
    return value


def validate(name: object, rating: object, comments: object) -> Review:
    """Return the review to store, or raise InvalidReview with a message for people."""
    return Review(
        name=_text(name, "Name", MAX_NAME_CHARS, strip=True),
        rating=_rating(rating),
        comments=_text(comments, "Comments", MAX_COMMENTS_CHARS, strip=False),
    )
