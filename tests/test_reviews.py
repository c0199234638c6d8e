"""Every validation rule, through the same function the web handler calls."""

import pytest

from shared.reviews import MAX_COMMENTS_CHARS, MAX_NAME_CHARS, InvalidReview, Review, validate


def test_valid_review_is_trimmed_name_and_kept_comments():
    assert validate("  Ann  ", 5, "  spaced  ") == Review(name="Ann", rating=5, comments="  spaced  ")


def test_name_and_comments_are_optional():
    assert validate(None, 1, None) == Review(name="", rating=1, comments="")


@pytest.mark.parametrize("rating", [1, 2, 3, 4, 5])
def test_every_rating_from_1_to_5(rating):
    assert validate("", rating, "").rating == rating


@pytest.mark.parametrize("rating, message", [
    (None, "choose a rating"), ("", "choose a rating"), (0, "whole number from 1 to 5"),
    (6, "whole number from 1 to 5"), (-1, "whole number from 1 to 5"), (3.5, "whole number"), (3.0, "whole number"), ("3", "whole number"),
    ("abc", "whole number"), (True, "whole number"), ([3], "whole number"),
])
def test_bad_ratings_are_refused_with_a_clear_message(rating, message):
    with pytest.raises(InvalidReview, match=message):
        validate("x", rating, "y")


def test_limits_are_exact():
    validate("n" * MAX_NAME_CHARS, 3, "c" * MAX_COMMENTS_CHARS)
    with pytest.raises(InvalidReview, match="Name is too long: 101"):
        validate("n" * (MAX_NAME_CHARS + 1), 3, "")
    with pytest.raises(InvalidReview, match="Comments is too long: 5,001"):
        validate("", 3, "c" * (MAX_COMMENTS_CHARS + 1))


def test_name_limit_applies_after_trimming():
    assert validate("  " + "n" * MAX_NAME_CHARS + "  ", 3, "").name == "n" * MAX_NAME_CHARS


@pytest.mark.parametrize("field", ["name", "comments"])
def test_nul_and_lone_surrogates_are_refused(field):
    for bad, message in (("a\x00b", "NUL"), ("a\ud800b", "invalid characters")):
        args = {"name": "", "comments": ""} | {field: bad}
        with pytest.raises(InvalidReview, match=message):
            validate(args["name"], 3, args["comments"])


def test_non_text_fields_are_refused():
    with pytest.raises(InvalidReview, match="Name must be text"):
        validate(12, 3, "")
    with pytest.raises(InvalidReview, match="Comments must be text"):
        validate("", 3, {"a": 1})


def test_unicode_is_kept_exactly():
    text = "e\u0301 \u202eevil\u202c 🎉 日本"
    assert validate(text, 4, text) == Review(name=text, rating=4, comments=text)
